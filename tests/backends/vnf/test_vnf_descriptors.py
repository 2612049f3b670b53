"""Heat stacks and OSM descriptors: schema-valid, accepted by openstacksdk's template
parser, and saying what the program says (flavours, classifiers, chains, PNF, matches)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from openstack.orchestration.util import template_format, template_utils
from vnf_support import PROGRAMS, SOURCES, source_id, vnf_files

from mosaico_dsl.backends.vnf.schema import SCHEMAS, errors, load_yaml, schema

YAMLS = [(s, p) for s in SOURCES for p in vnf_files(s) if p.endswith(".yaml")]
KIND = {"stack": "heat", "vnfd": "sol006-vnfd", "pnfd": "sol006-pnfd", "nsd": "sol006-nsd"}


def kind_of(path: str) -> str:
    return KIND[path.rsplit("/", 1)[-1].split("-", 1)[0].removesuffix(".yaml")]


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_valid_json_schema(name: str) -> None:
    assert schema(name)["$schema"].endswith("2020-12/schema")


def test_sol006_schemas_cite_the_version() -> None:
    for name in ("sol006-vnfd", "sol006-pnfd", "sol006-nsd"):
        assert "revision 2019-04-25" in schema(name)["description"]


@pytest.mark.parametrize(("source", "path"), YAMLS,
                         ids=[f"{source_id(s)}:{p}" for s, p in YAMLS])
def test_every_descriptor_matches_its_schema(source: Path, path: str) -> None:
    assert errors(kind_of(path), load_yaml(vnf_files(source)[path])) == []


def _stack(name: str, host: str) -> dict:
    return load_yaml(vnf_files(PROGRAMS / f"{name}.mosaico")[f"{host}/stack.yaml"])


def test_openstacksdk_reads_the_stack_as_a_hot_template(tmp_path: Path) -> None:
    text = vnf_files(PROGRAMS / "vnf_chain.mosaico")["nfvi1/stack.yaml"]
    parsed = template_format.parse(text)
    assert str(parsed["heat_template_version"]) == "2018-08-31"
    f = tmp_path / "stack.yaml"
    f.write_text(text)
    files, template = template_utils.get_template_contents(template_file=str(f))
    assert files == {} and set(template["resources"]) == set(parsed["resources"])


def test_schema_rejects_what_heat_would_reject() -> None:
    doc = _stack("vnf_chain", "nfvi1")
    bad = copy.deepcopy(doc)
    fc = next(r for r in bad["resources"].values() if r["type"] == "OS::Neutron::FlowClassifier")
    fc["properties"]["protocol"] = "sctp"  # Heat allows tcp, udp, icmp only
    assert any("sctp" in e for e in errors("heat", bad))
    bad = copy.deepcopy(doc)
    del next(r for r in bad["resources"].values()
             if r["type"] == "OS::Neutron::PortChain")["properties"]["port_pair_groups"]
    assert errors("heat", bad)


def test_stack_wires_the_chain_through_networking_sfc() -> None:
    res = _stack("vnf_chain", "nfvi1")["resources"]
    types = {n: r["type"] for n, r in res.items()}
    servers = sorted(n for n, t in types.items() if t == "OS::Nova::Server")
    assert servers == ["web_ll_0_blocklist", "web_ll_1_ratelimit"]
    chain = next(r["properties"] for r in res.values() if r["type"] == "OS::Neutron::PortChain")
    assert chain["port_pair_groups"] == [{"get_resource": "web_ll_0_blocklist_group"},
                                         {"get_resource": "web_ll_1_ratelimit_group"}]
    classifiers = [res[c["get_resource"]]["properties"] for c in chain["flow_classifiers"]]
    # `ipv4.dst == server and tcp.dport in {80, 443}`: one classifier per port, from s1.
    assert sorted((c["protocol"], c["destination_ip_prefix"], c["destination_port_range_min"],
                   c["destination_port_range_max"]) for c in classifiers) == [
        ("tcp", "10.0.2.1/32", 80, 80), ("tcp", "10.0.2.1/32", 443, 443)]
    assert all(c["logical_source_port"] == {"get_resource": "s1_uplink"} for c in classifiers)
    # Transit traffic carries foreign addresses: port security off on the data path.
    for n, r in res.items():
        if r["type"] == "OS::Neutron::Port" and n.endswith(("_data", "_uplink")):
            assert r["properties"]["port_security_enabled"] is False
    pair = res["web_ll_0_blocklist_pair"]["properties"]
    assert pair["ingress"] == pair["egress"] == {"get_resource": "web_ll_0_blocklist_data"}


def test_flavours_come_from_the_vnf_cost() -> None:
    doc = _stack("mixed", "vnf_b")
    flavors = {n: r["properties"] for n, r in doc["resources"].items()
               if r["type"] == "OS::Nova::Flavor"}
    # RateLimit/Allowlist cost 1 vCPU + 256 MiB, Mirror/Fifo/Forward 1 vCPU + 128 MiB.
    assert {(f["vcpus"], f["ram"]) for f in flavors.values()} == {(1, 128), (1, 256)}
    server = doc["resources"]["api_tcp_3_mirror"]["properties"]
    assert server["flavor"]["if"][2] == {"get_param": "flavor_1c_128m"}


def test_user_data_installs_and_loads_the_vnf_configuration() -> None:
    files = vnf_files(PROGRAMS / "mixed.mosaico")
    server = _stack("mixed", "vnf_b")["resources"]["api_tcp_4_fifo"]["properties"]
    cloud = load_yaml(server["user_data"]["str_replace"]["template"])
    written = {f["path"]: f["content"] for f in cloud["write_files"]}
    assert set(cloud["packages"]) >= {"nftables", "iproute2"}
    assert written["/etc/mosaico/api_tcp-4-fifo.nft"] == files["vnf_b/api_tcp-4-fifo.nft"]
    assert written["/usr/local/sbin/mosaico-tc.sh"] == files["vnf_b/tc.sh"]
    up = written["/usr/local/sbin/mosaico-vnf-up"]
    assert "nft -f /etc/mosaico/api_tcp-4-fifo.nft" in up
    assert 'mosaico-tc.sh api_tcp-4-fifo "$DEV"' in up
    assert server["user_data"]["str_replace"]["params"] == {
        "__MOSAICO_DATA_MAC__": {"get_attr": ["api_tcp_4_fifo_data", "mac_address"]}}


def test_nsd_has_the_vnfs_their_addresses_and_the_switch_as_pnf() -> None:
    files = vnf_files(PROGRAMS / "vnf_chain.mosaico")
    nsd = load_yaml(files["nfvi1/nsd-web_ll.yaml"])["nsd"]["nsd"][0]
    assert nsd["vnfd-id"] == ["web_ll-0-blocklist", "web_ll-1-ratelimit"]
    assert nsd["pnfd-id"] == ["mosaico-lab-s1"]
    pnfd = load_yaml(files["nfvi1/pnfd-s1.yaml"])["pnfd"]
    assert pnfd["id"] == "mosaico-lab-s1" and {"id": "port4"} in [
        {"id": c["id"]} for c in pnfd["ext-cpd"]]
    # No forwarding graph (OSM cannot instantiate one its model accepts); the chain is
    # in the description, in order, for the operator who steers it.
    assert "vnffgd" not in nsd
    assert nsd["description"].endswith(
        "chain from s1: web_ll-0-blocklist -> web_ll-1-ratelimit")
    df = nsd["df"][0]
    assert df["pnf-profile"][0]["pnfd-id"] == "mosaico-lab-s1"
    stack = _stack("vnf_chain", "nfvi1")["resources"]
    for vp in df["vnf-profile"]:
        data = vp["virtual-link-connectivity"][1]["constituent-cpd-id"][0]
        heat_ip = stack[vp["id"].replace("-", "_") + "_data"]["properties"]["fixed_ips"][0]
        assert data["ip-address"] == [heat_ip["ip_address"]]  # the same address as in Heat
    vnfd = load_yaml(files["nfvi1/vnfd-web_ll-0-blocklist.yaml"])["vnfd"]
    assert vnfd["virtual-compute-desc"][0]["virtual-cpu"]["num-virtual-cpu"] == 1
    assert float(vnfd["virtual-compute-desc"][0]["virtual-memory"]["size"]) == 0.25
    cloud_init = vnfd["vdu"][0]["cloud-init-file"]
    config = load_yaml(files[f"nfvi1/cloud_init/{cloud_init}"])
    written = {f["path"]: f["content"] for f in config["write_files"]}
    assert written["/etc/mosaico/web_ll-0-blocklist.nft"] == files[
        "nfvi1/web_ll-0-blocklist.nft"]


def test_sfc_and_port_properties_are_what_openstacksdk_network_proxy_sends() -> None:
    """Heat passes these properties to Neutron unchanged (networking-sfc's API); each is a
    body field of the matching openstacksdk network resource, so the same values drive
    ``conn.network.create_sfc_*`` where Heat is not available."""
    from openstack.network.v2 import (
        port,
        sfc_flow_classifier,
        sfc_port_chain,
        sfc_port_pair,
        sfc_port_pair_group,
    )

    resources = {"OS::Neutron::FlowClassifier": sfc_flow_classifier.SfcFlowClassifier,
                 "OS::Neutron::PortPair": sfc_port_pair.SfcPortPair,
                 "OS::Neutron::PortPairGroup": sfc_port_pair_group.SfcPortPairGroup,
                 "OS::Neutron::PortChain": sfc_port_chain.SfcPortChain}
    # Heat's names that differ from Neutron's: `network` resolves to `network_id`.
    heat_only = {"OS::Neutron::Port": {"network"}}
    seen = set()
    for source in SOURCES:
        for path, text in vnf_files(source).items():
            if not path.endswith("/stack.yaml"):
                continue
            for name, res in load_yaml(text)["resources"].items():
                cls = resources.get(res["type"]) or (
                    port.Port if res["type"] == "OS::Neutron::Port" else None)
                if cls is None:
                    continue
                seen.add(res["type"])
                props = set(res["properties"]) - heat_only.get(res["type"], set())
                assert props <= set(cls._body_mapping()), (path, name, props)
                if res["type"] == "OS::Neutron::FlowClassifier":
                    p = res["properties"]
                    ports = [k for k in p if k.endswith(("range_min", "range_max"))]
                    assert all(1 <= p[k] <= 65535 for k in ports), (path, name)
                    if ports:  # networking-sfc refuses port ranges without tcp or udp
                        assert p.get("protocol") in ("tcp", "udp"), (path, name)
    assert seen == {*resources, "OS::Neutron::Port"}
