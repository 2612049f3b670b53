"""The cross-reference rules OSM's NBI applies when a descriptor is onboarded, after the
information model has loaded it (``osm_nbi/descriptor_topics.py``: ``VnfdTopic`` and
``NsdTopic._validate_input_new`` and ``_check_descriptor_dependencies``; ``osm_im``'s
``validate_vdu_profile_in_descriptor``/``validate_instantiation_level_descriptor``).
Re-stated here rule by rule, each returning the NBI's complaint; the NBI itself is not on
PyPI. The forwarding-graph rule keeps the NBI's behaviour on the IM's own shape: it reads
``nfp-position-element-id[0]`` of every position, which SOL006 v2.6.1 has no such leaf for,
so a position without it is refused (the NBI fails with a ``TypeError`` there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["vnfd_problems", "nsd_problems"]


def _it(value) -> list:
    return list(value or [])


def vnfd_problems(vnfd: dict, package_files: Iterable[str] = ()) -> list[str]:
    """``package_files``: paths inside the VNF package (``cloud_init/<file>`` ...)."""
    out: list[str] = []
    ext = [c.get("id") for c in _it(vnfd.get("ext-cpd"))]
    if vnfd.get("vdu"):
        if not vnfd.get("mgmt-cp"):
            out.append("'mgmt-cp' is a mandatory field and it is not defined")
        elif vnfd["mgmt-cp"] not in ext:
            out.append(f"mgmt-cp='{vnfd['mgmt-cp']}' must match an existing ext-cpd")
    vdu_cpds = set()
    for vdu in _it(vnfd.get("vdu")):
        ids = [c.get("id") for c in _it(vdu.get("int-cpd"))]
        out += [f"vdu[id='{vdu['id']}']:int-cpd[id='{i}'] is already used by other int-cpd"
                for i in {i for i in ids if ids.count(i) > 1}]
        vdu_cpds |= {(vdu.get("id"), i) for i in ids}
        f = vdu.get("cloud-init-file")
        if f and f"cloud_init/{f}" not in set(package_files):
            out.append(f"Cloud-init defined in vnf[id={vnfd['id']}]:vdu[id={vdu['id']}] but "
                       "not present in package")
    out += [f"ext-cpd[id='{i}'] is already used by other ext-cpd"
            for i in {i for i in ext if ext.count(i) > 1}]
    for cpd in _it(vnfd.get("ext-cpd")):
        ic = cpd.get("int-cpd")
        if ic and (ic.get("vdu-id"), ic.get("cpd")) not in vdu_cpds:
            out.append(f"ext-cpd[id='{cpd['id']}']:int-cpd must match an existing vdu int-cpd")
    ivlds = {v.get("id") for v in _it(vnfd.get("int-virtual-link-desc"))}
    vsds = {v.get("id") for v in _it(vnfd.get("virtual-storage-desc"))}
    vcds = {v.get("id") for v in _it(vnfd.get("virtual-compute-desc"))}
    vdus = {v.get("id") for v in _it(vnfd.get("vdu"))}
    for vdu in _it(vnfd.get("vdu")):
        for c in _it(vdu.get("int-cpd")):
            if c.get("int-virtual-link-desc") and c["int-virtual-link-desc"] not in ivlds:
                out.append(f"vdu[id='{vdu['id']}']:int-cpd[id='{c['id']}']:"
                           "int-virtual-link-desc must match an existing int-virtual-link-desc")
        out += [f"vdu[virtual-storage-desc='{r}']not defined in vnfd"
                for r in _it(vdu.get("virtual-storage-desc")) if r not in vsds]
        if vdu.get("virtual-compute-desc") and vdu["virtual-compute-desc"] not in vcds:
            out.append(f"vdu[virtual-compute-desc='{vdu['virtual-compute-desc']}']not defined "
                       "in vnfd")
    for df in _it(vnfd.get("df")):
        out += [f"df[id='{df['id']}']:vdu-profile[id='{p['id']}'] is not a vdu"
                for p in _it(df.get("vdu-profile")) if p.get("id") not in vdus]
        for il in _it(df.get("instantiation-level")):
            out += [f"df[id='{df['id']}']:instantiation-level[id='{il['id']}']:vdu-level "
                    f"vdu-id='{lv.get('vdu-id')}' is not a vdu"
                    for lv in _it(il.get("vdu-level")) if lv.get("vdu-id") not in vdus]
    return out


def nsd_problems(nsd: dict, vnfds: Callable[[str], dict | None]) -> list[str]:
    """``nsd``: one entry of ``nsd: {nsd: [...]}``; ``vnfds(id)``: the onboarded VNFD with
    that id (None if none is: the NBI answers 409)."""
    out: list[str] = []
    for vld in _it(nsd.get("virtual-link-desc")):
        if not vld.get("mgmt-network"):
            continue
        for df in _it(nsd.get("df")):
            for vlp in _it(df.get("virtual-link-profile")):
                if vlp.get("virtual-link-desc-id") == vld.get("id") and \
                        vlp.get("virtual-link-protocol-data"):
                    out.append(f"df[id='{df['id']}']:virtual-link-profile[id='{vlp['id']}']:"
                               "virtual-link-protocol-data You cannot set a "
                               "virtual-link-protocol-data when mgmt-network is True")
    for fg in _it(nsd.get("vnffgd")):
        out += _vnffgd_problems(fg, nsd)
    vnfd_ids = set(_it(nsd.get("vnfd-id")))
    for df in _it(nsd.get("df")):
        for vp in _it(df.get("vnf-profile")):
            if vp.get("vnfd-id") not in vnfd_ids:
                out.append(f"df[id='{df['id']}']:vnf_profile[id='{vp['id']}']:"
                           f"vnfd-id='{vp.get('vnfd-id')}' does not match any vnfd-id")
    for vnfd_id in vnfd_ids:
        if vnfds(vnfd_id) is None:
            out.append(f"Descriptor error at 'vnfd-id'='{vnfd_id}' references a non existing "
                       "vnfd")
    for df in _it(nsd.get("df")):
        for vp in _it(df.get("vnf-profile")):
            vnfd = vnfds(vp.get("vnfd-id")) or {}
            ext = {c.get("id") for c in _it(vnfd.get("ext-cpd"))}
            for vlc in _it(vp.get("virtual-link-connectivity")):
                for c in _it(vlc.get("constituent-cpd-id")):
                    if c.get("constituent-cpd-id") and c["constituent-cpd-id"] not in ext:
                        out.append(
                            f"Error at df[id='{df['id']}']:vnf-profile[id='{vp['id']}']:"
                            "virtual-link-connectivity[virtual-link-profile-id="
                            f"'{vlc['virtual-link-profile-id']}']:constituent-cpd-id="
                            f"'{c['constituent-cpd-id']}' references a non existing ext-cpd:id "
                            f"inside vnfd '{vnfd.get('id')}'")
    return out


def _vnffgd_problems(fg: dict, nsd: dict) -> list[str]:
    out = []
    positions = {p.get("id") for p in _it(fg.get("nfp-position-element"))}
    members = set(_it(fg.get("vnf-profile-id")))
    addresses = {}
    for df in _it(nsd.get("df")):
        for vp in _it(df.get("vnf-profile")):
            for vlc in _it(vp.get("virtual-link-connectivity")):
                for c in _it(vlc.get("constituent-cpd-id")):
                    for ip in _it(c.get("ip-address")) if isinstance(
                            c.get("ip-address"), list) else [c.get("ip-address")]:
                        addresses.setdefault(ip, vp.get("id"))
    for nfpd in _it(fg.get("nfpd")):
        for pos in _it(nfpd.get("position-desc-id")):
            ref = _it(pos.get("nfp-position-element-id"))
            if not ref:
                out.append(f"vnffgd nfpd[id='{nfpd['id']}'] position '{pos.get('id')}' has no "
                           "nfp-position-element-id (the NBI fails: TypeError)")
            elif ref[0] not in positions:
                out.append(f"Error at vnffgd nfpd[id='{nfpd['id']}']:nfp-position-element-id="
                           f"'{ref[0]}' does not match any nfp-position-element")
            for cp in _it(pos.get("cp-profile-id")):
                for e in _it(cp.get("constituent-profile-elements")):
                    base = e.get("constituent-base-element-id")
                    if base and base not in members:
                        out.append(f"Error at vnffgd constituent_profile[id='{e['id']}']:"
                                   f"vnfd-id='{base}' does not match any "
                                   "constituent-base-element-id")
            for ma in _it(pos.get("match-attributes")):
                src, dst = ma.get("source-ip-address"), ma.get("destination-ip-address")
                if src and src == dst:
                    out.append("Error at vnffgd match-attributes:source-ip-address and "
                               "destination-ip-address should not match")
                for what, ip in (("source", src), ("destination", dst)):
                    if ip not in addresses:
                        out.append(f"Error at vnffgd match-attributes:{what}-ip-address="
                                   f"'{ip}' does not match any ip-address")
                base = ma.get("constituent-base-element-id")
                if base and base not in (addresses.get(src) or ""):
                    out.append(f"Error at vnffgd match-attributes:vnfd-id='{base}' does not "
                               "match source constituent-base-element-id")
    return out
