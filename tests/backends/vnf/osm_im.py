"""OSM's information model, built from its YANG as OSM builds it, and OSM's loader.

OSM's IM repository (``osm/IM``, Makefile targets ``sol006_deps`` and ``%.py``) clones ETSI
SOL006 v2.6.1, applies its two patches with ``patch -p2`` and runs
``pyang -Werror --plugindir <pyangbind>/plugin -f pybind`` over OSM's augmentations plus
``etsi-nfv-vnfd.yang`` / ``etsi-nfv-nsd.yang``; the NBI loads each onboarded descriptor into
those bindings with ``pybindJSONDecoder.load_ietf_json(..., skip_unknown=False)`` and keeps
what pyangbind serialises back (``osm_nbi/descriptor_topics.py``,
``VnfdTopic``/``NsdTopic.pyangbind_validation``). This module does the same from the YANG
in ``shared/osm-im/`` (see its README for where each file comes from) into a directory of
the caller's (the test session's temporary directory): the generated bindings are never
committed. The PNFD is built the same way from ``etsi-nfv-pnfd.yang`` (OSM has no PNFD
loader of its own; SOL006 has the module).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

__all__ = ["find_osm_im", "build", "load", "OsmIm"]

_MODULES = {"vnfd": "etsi-nfv-vnfd", "nsd": "etsi-nfv-nsd", "pnfd": "etsi-nfv-pnfd"}
_ENVELOPE = {"vnfd": "etsi-nfv-vnfd:vnfd", "nsd": "nsd", "pnfd": "etsi-nfv-pnfd:pnfd"}


def find_osm_im() -> Path | None:
    """``$MOSAICO_OSM_IM``, else the first ``shared/osm-im`` beside the checkout or above it
    (CI clones the repository next to ``shared/``)."""
    env = os.environ.get("MOSAICO_OSM_IM")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "osm-im"
        if (candidate / "sol006-v2.6.1").is_dir():
            return candidate
    return None


class OsmIm:
    """The generated bindings: one Python module per descriptor kind."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.modules = modules

    def load(self, kind: str, descriptor: dict) -> dict:
        """Load ``descriptor`` (the document under its ``vnfd``/``nsd``/``pnfd`` key) as the
        NBI does; return what pyangbind serialises back. Raises what pyangbind raises."""
        from pyangbind.lib import pybindJSON
        from pyangbind.lib.serialise import pybindJSONDecoder

        module = self.modules[kind]
        obj = getattr(module, _MODULES[kind].replace("-", "_"))()
        data = {"nsd": descriptor["nsd"]} if kind == "nsd" else \
            {_ENVELOPE[kind]: descriptor[kind]}
        pybindJSONDecoder.load_ietf_json(data, None, None, obj=obj, path_helper=True,
                                         skip_unknown=False)
        return yaml.safe_load(pybindJSON.dumps(obj, mode="ietf"))


def build(osm_im: Path, out: Path) -> OsmIm:
    """Patch SOL006 as OSM does and generate the bindings into ``out``."""
    import pyangbind

    model = out / "sol006_model" / "src" / "yang"
    model.mkdir(parents=True, exist_ok=True)
    for f in sorted((osm_im / "sol006-v2.6.1").glob("*.yang")):
        shutil.copyfile(f, model / f.name)
    for patch in sorted((osm_im / "osm-im-ef549b0" / "patch").glob("*.patch")):
        # The patches name /tmp/sol006_model/src/yang/...: -p2 leaves sol006_model/...
        subprocess.run(["patch", "-p2", "--quiet", "-i", str(patch)], cwd=out, check=True)
    plugin = Path(pyangbind.__file__).parent / "plugin"
    ietf = _ietf_modules()
    augments = sorted(str(p) for p in (osm_im / "osm-im-ef549b0" / "augments").glob("*.yang"))
    modules = {}
    for kind, name in _MODULES.items():
        target = out / f"{name.replace('-', '_')}.py"
        subprocess.run([sys.executable, "-m", "pyang", "-Werror", "--path",
                        f"{model}{os.pathsep}{ietf}", "--plugindir", str(plugin),
                        "-f", "pybind", "-o", str(target),
                        *(augments if kind != "pnfd" else []), str(model / f"{name}.yang")],
                       check=True, capture_output=True, text=True)
        modules[kind] = _import(target)
    return OsmIm(modules)


def _ietf_modules() -> Path:
    """pyang ships RFC 6991's ``ietf-inet-types``/``ietf-yang-types`` (2013-07-15, the
    revisions OSM's Makefile downloads)."""
    root = Path(sys.prefix) / "share" / "yang" / "modules" / "ietf"
    if not (root / "ietf-inet-types.yang").is_file():
        raise FileNotFoundError(f"pyang's IETF modules are not in {root}")
    return root


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"osm_im_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(kind: str, text: str, im: OsmIm) -> dict:
    return im.load(kind, yaml.safe_load(text))
