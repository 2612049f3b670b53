"""VNF and NS packages for OSM, built from a build directory's descriptors.

A package is a gzipped tar of one directory, as OSM's NBI reads it
(``osm_nbi/descriptor_topics.py``, ``upload_content``): every file inside the directory, the
descriptor the only ``.yaml`` at its top level, the VDUs' cloud-init files in
``cloud_init/`` (where the NBI looks for a ``cloud-init-file``), and ``checksums.txt`` (the
MD5 of every file, as ``osm package-build`` writes it). It carries ETSI SOL004's metadata
too — ``TOSCA-Metadata/TOSCA.meta`` naming the descriptor as its entry definitions and a
manifest (``<name>.mf``) with the SHA-256 of every file — so its content is checked the
SOL004 way wherever it goes. The manifest has no release date: packages are deterministic
(same build, same bytes: sorted members, owner root, mode 0644/0755, times 0, gzip time 0),
and their digest is what the state store compares.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from ..backends.vnf._templates import render

__all__ = ["Package", "vnf_package", "ns_package", "descriptor_files"]


@dataclass(frozen=True, slots=True)
class Package:
    kind: str  # vnf | ns
    descriptor_id: str  # the VNFD's or NSD's id
    name: str  # the package directory (and file) name
    data: bytes  # the .tar.gz

    @property
    def filename(self) -> str:
        return f"{self.name}.tar.gz"

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()  # OSM checks Content-File-MD5

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def descriptor_files(nsd_text: str, host_files: Mapping[str, str]) -> dict[str, str]:
    """The files an NSD's packages need, from its host directory (``{relative path:
    text}``): the NSD, each VNFD it lists and each VNFD's cloud-init file."""
    nsd = yaml.safe_load(nsd_text)["nsd"]["nsd"][0]
    out: dict[str, str] = {}
    for vnfd_id in nsd.get("vnfd-id", []):
        path = f"vnfd-{vnfd_id}.yaml"
        if path not in host_files:
            raise KeyError(path)
        out[path] = host_files[path]
        for vdu in yaml.safe_load(host_files[path])["vnfd"].get("vdu", []):
            f = vdu.get("cloud-init-file")
            if f:
                out[f"cloud_init/{f}"] = host_files[f"cloud_init/{f}"]
    return out


def vnf_package(vnfd_text: str, cloud_init: Mapping[str, str]) -> Package:
    """``cloud_init``: ``{file name: text}`` of the VDUs' ``cloud-init-file``s."""
    vnfd = yaml.safe_load(vnfd_text)["vnfd"]
    name = vnfd["id"]
    files = {f"{name}.yaml": vnfd_text,
             **{f"cloud_init/{f}": t for f, t in sorted(cloud_init.items())}}
    metadata = [("vnf_provider_id", vnfd.get("provider", "")),
                ("vnf_product_name", vnfd.get("product-name", "")),
                ("vnf_package_version", vnfd.get("version", "")),
                ("vnfd_id", name),
                ("compatible_specification_versions", "2.6.1")]
    return Package("vnf", name, name, _tar(name, files, metadata))


def ns_package(nsd_text: str) -> Package:
    nsd = yaml.safe_load(nsd_text)["nsd"]["nsd"][0]
    name = nsd["id"]
    metadata = [("nsd_designer", nsd.get("designer", "")),
                ("nsd_invariant_id", name),
                ("nsd_name", nsd.get("name", "")),
                ("nsd_file_structure_version", nsd.get("version", "")),
                ("compatible_specification_versions", "2.6.1")]
    return Package("ns", name, name, _tar(name, {f"{name}.yaml": nsd_text}, metadata))


def _tar(name: str, files: Mapping[str, str], metadata: list[tuple[str, str]]) -> bytes:
    entry = f"{name}.yaml"
    manifest = f"{name}.mf"
    content = {p: t.encode() for p, t in files.items()}
    content["TOSCA-Metadata/TOSCA.meta"] = render(
        "osm/package/TOSCA.meta.j2", entry=entry, manifest=manifest).encode()
    content[manifest] = render(
        "osm/package/manifest.mf.j2", metadata=metadata,
        digests=[(p, hashlib.sha256(b).hexdigest()) for p, b in sorted(content.items())]
    ).encode()
    content["checksums.txt"] = render(
        "osm/package/checksums.txt.j2",
        digests=[(p, hashlib.md5(b).hexdigest())  # osmclient's format
                 for p, b in sorted(content.items())]).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"/".join(p.split("/")[:i]) for p in content
                       for i in range(1, p.count("/") + 1)})
        tar.addfile(_info(name, directory=True))
        for d in dirs:
            tar.addfile(_info(f"{name}/{d}", directory=True))
        for path, data in sorted(content.items()):
            tar.addfile(_info(f"{name}/{path}", size=len(data)), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _info(path: str, *, directory: bool = False, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
