"""The OSM target, tested at the HTTP boundary (OSM's NBI, played by ``osm_fake.FakeNbi``
behind requests_mock, which loads every package into OSM's information model built from
its YANG). The build is a real compile of a program that puts a chain on an OpenStack
host."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
import tarfile
from pathlib import Path

import pytest
import requests_mock
from click.testing import CliRunner
from osm_fake import PASSWORD, PROJECT, URL, USER, VIM, FakeNbi
from runtime_helpers import ROOT

import mosaico_dsl as mo
from mosaico_dsl.cli import cli
from mosaico_dsl.diagnostics import CompileError
from mosaico_dsl.runtime import deployment as rt
from mosaico_dsl.runtime.build import load_build
from mosaico_dsl.runtime.osm import OsmTarget, _packages
from mosaico_dsl.runtime.osm_nbi import load_credentials
from mosaico_dsl.runtime.state import StateStore

sys.path.insert(0, str(ROOT / "tests" / "backends" / "vnf"))
from osm_im import build as build_im
from osm_im import find_osm_im

PROGRAM = ROOT / "tests" / "backends" / "vnf" / "programs" / "vnf_chain.mosaico"
UNIT = "nfvi1/web_ll"
NS = "mosaico-vnf-chain-web-ll-nfvi1"


@pytest.fixture(scope="module")
def im(tmp_path_factory):
    root = find_osm_im()
    if root is None:
        message = "OSM's YANG (shared/osm-im) is not beside this checkout (MOSAICO_OSM_IM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return build_im(root, tmp_path_factory.mktemp("osm-im"))


@pytest.fixture
def nbi(im, monkeypatch):
    for var in ("OSM_HOSTNAME", "OSM_USER", "OSM_PASSWORD", "OSM_PROJECT",
                "MOSAICO_OSM_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OSM_HOSTNAME", URL)
    monkeypatch.setenv("OSM_USER", USER)
    monkeypatch.setenv("OSM_PASSWORD", PASSWORD)
    monkeypatch.setenv("OSM_PROJECT", PROJECT)
    monkeypatch.setenv("HOME", "/nonexistent")
    fake = FakeNbi(im)
    with requests_mock.Mocker() as m:
        m.register_uri(requests_mock.ANY, requests_mock.ANY, status_code=599,
                       json={"detail": "unexpected request"})
        m.register_uri(requests_mock.ANY, re.compile(re.escape(URL) + "/osm/.*"),
                       json=fake.handle)
        yield fake


def _build(tmp_path: Path, name: str = "b", source: str | None = None) -> Path:
    src = PROGRAM.read_text(encoding="utf-8") if source is None else source
    path = tmp_path / f"{name}-src" / "vnf_chain.mosaico"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(src, encoding="utf-8")
    r = mo.compile(path, emit=["ir", "placement", "vnf"])
    return r.write(tmp_path / name)


def targets(build: Path | None, **kw) -> list[OsmTarget]:
    return [OsmTarget(load_build(build) if build else None, poll=0, **kw)]


def _ns_of(fake: FakeNbi) -> list[dict]:
    return list(fake.nsrs.values())


def _refused(state_path: Path, run) -> str:
    """The diagnostics of ``run(store)`` (a plan or deploy coroutine), which must fail."""
    with StateStore(state_path) as store, pytest.raises(CompileError) as info:
        asyncio.run(run(store))
    return str(info.value)


def test_deploy_onboards_instantiates_waits_and_then_changes_nothing(nbi, tmp_path,
                                                                     state_path):
    b = _build(tmp_path)
    with StateStore(state_path) as store:
        progress: list[str] = []
        result = asyncio.run(rt.deploy(targets(b), store, progress=progress.append))
        assert result.changed
        assert "+ NS mosaico-vnf-chain-web-ll-nfvi1 (2 VNF package(s) and an NS package) on " \
               "VIM account mosaico" in result.plan.render()
        assert sorted(r["id"] for r in nbi.vnfds.values()) == [
            "web_ll-0-blocklist", "web_ll-1-ratelimit"]
        (nsd,) = nbi.nsds.values()
        assert nsd["id"] == "mosaico-lab-web_ll-nfvi1"
        (ns,) = _ns_of(nbi)
        assert (ns["name"], ns["nsState"]) == (NS, "READY")
        body = nbi.bodies[-1]
        assert (body["nsdId"], body["vimAccountId"]) == (nsd["_id"], VIM["_id"])
        posts = [p for m, p in nbi.calls() if m == "POST"]
        assert posts == ["/osm/admin/v1/tokens", "/osm/vnfpkgm/v1/vnf_packages_content",
                         "/osm/vnfpkgm/v1/vnf_packages_content",
                         "/osm/nsd/v1/ns_descriptors_content",
                         "/osm/nslcm/v1/ns_instances_content"]
        assert f"{UNIT}: instantiation of NS {NS}: PROCESSING (Deploying VDUs)" in progress
        assert f"{UNIT}: instantiation of NS {NS}: COMPLETED (Done)" in progress
        rec = store.unit("osm", UNIT)
        assert rec.data["nsr_id"] == ns["_id"] and rec.data["vim_account"] == "mosaico"
        n = len(nbi.log)
        again = asyncio.run(rt.deploy(targets(b), store))
        assert not again.changed
        assert {p for m, p in nbi.log[n:] if m != "GET"} == {"/osm/admin/v1/tokens"}


def test_packages_are_what_osm_reads_and_sol004_checks(nbi, tmp_path) -> None:
    """One directory per package, the descriptor the only YAML at its top, the VDU's
    cloud-init in cloud_init/, MD5s in checksums.txt, SHA-256 in the SOL004 manifest, and
    the same bytes every time."""
    import hashlib

    b = _build(tmp_path)
    (target,) = targets(b)
    (w,) = target._wanted().values()
    vnfs, ns = _packages(w.files)
    assert _packages(w.files) == (vnfs, ns)  # deterministic
    with tarfile.open(fileobj=io.BytesIO(vnfs[0].data), mode="r:gz") as tar:
        names = tar.getnames()
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    top = "web_ll-0-blocklist"
    assert sorted(files) == [f"{top}/TOSCA-Metadata/TOSCA.meta", f"{top}/checksums.txt",
                             f"{top}/cloud_init/web_ll-0-blocklist.cfg",
                             f"{top}/web_ll-0-blocklist.mf",
                             f"{top}/web_ll-0-blocklist.yaml"]
    assert names[0] == top
    assert files[f"{top}/web_ll-0-blocklist.yaml"] == \
        (b / "nfvi1" / "vnfd-web_ll-0-blocklist.yaml").read_bytes()
    assert files[f"{top}/cloud_init/web_ll-0-blocklist.cfg"] == \
        (b / "nfvi1" / "cloud_init" / "web_ll-0-blocklist.cfg").read_bytes()
    sums = dict(reversed(line.split("  ")) for line in
                files[f"{top}/checksums.txt"].decode().splitlines())
    for path, digest in sums.items():
        assert hashlib.md5(files[f"{top}/{path}"]).hexdigest() == digest
    manifest = files[f"{top}/web_ll-0-blocklist.mf"].decode()
    for block in manifest.split("\n\n")[1:]:
        source, algorithm, digest = (line.split(": ", 1)[1] for line in block.splitlines())
        assert algorithm == "SHA-256"
        assert hashlib.sha256(files[f"{top}/{source}"]).hexdigest() == digest
    assert "Entry-Definitions: web_ll-0-blocklist.yaml" in \
        files[f"{top}/TOSCA-Metadata/TOSCA.meta"].decode()


def test_failure_mid_instantiation_rolls_everything_back(nbi, tmp_path, state_path):
    nbi.fail_instantiation = ("Deploying at VIM: Error creating server: Quota exceeded for "
                              "cores: Requested 1, but already used 20 of 20 cores")
    with StateStore(state_path) as store:
        progress: list[str] = []
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(targets(_build(tmp_path)), store, progress=progress.append))
        text = str(info.value)
        assert f"error[E1219]: OSM {UNIT}: instantiation of NS {NS} is FAILED: Deploying at " \
               "VIM: Error creating server: Quota exceeded for cores" in text
        assert "error[E1212]: deploy failed and was rolled back" in text
        undone = [line.split("undone: ", 1)[1] for line in text.splitlines()
                  if "= note: undone:" in line]
        assert [u.split(" (")[0] for u in undone] == [
            f"osm {UNIT}: terminate and delete NS {NS}",
            f"osm {UNIT}: delete NS package mosaico-lab-web_ll-nfvi1",
            f"osm {UNIT}: delete VNF package web_ll-1-ratelimit",
            f"osm {UNIT}: delete VNF package web_ll-0-blocklist"]
        assert nbi.nsrs == {} and nbi.nsds == {} and nbi.vnfds == {}
        assert store.units() == [] and store.history()[0][4] == "rolled back"
        assert PASSWORD not in text and not any(PASSWORD in p for p in progress)
        assert not any(t in text for t in nbi.tokens)


def test_http_500_while_onboarding_rolls_back(nbi, tmp_path, state_path):
    """token, VIMs, NS lookup, 2 package lookups + NSD lookup (plan), then POST VNF 1, POST
    VNF 2 answers 500: the first package is deleted again."""
    nbi.fail_at = 8
    text = _refused(state_path, lambda store: rt.deploy(targets(_build(tmp_path)), store))
    assert "onboarding VNF package web_ll-1-ratelimit failed: POST " \
           "/osm/vnfpkgm/v1/vnf_packages_content: HTTP 500: Internal Server Error" in text
    assert "undone: osm nfvi1/web_ll: delete VNF package web_ll-0-blocklist" in text
    assert nbi.vnfds == {}


def test_destroy_from_the_state_store_alone(nbi, tmp_path, state_path):
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(_build(tmp_path)), store))
        result = asyncio.run(rt.destroy(targets(None), store))
        assert f"- NS {NS}" in result.plan.render()
        assert nbi.nsrs == {} and nbi.nsds == {} and nbi.vnfds == {}
        assert store.units("osm") == []
        deletes = [p for m, p in nbi.calls() if m == "DELETE"]
        assert [d.rsplit("/", 1)[0] for d in deletes] == [
            "/osm/nslcm/v1/ns_instances_content", "/osm/nsd/v1/ns_descriptors",
            "/osm/vnfpkgm/v1/vnf_packages", "/osm/vnfpkgm/v1/vnf_packages"]


def test_changed_build_replaces_the_ns_and_a_failure_brings_the_old_one_back(
        nbi, tmp_path, state_path):
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(_build(tmp_path)), store))
        (old_ns,) = _ns_of(nbi)
        changed = PROGRAM.read_text().replace("burst: 200", "burst: 300")
        b2 = _build(tmp_path, "b2", changed)
        p = asyncio.run(rt.plan(targets(b2), store))
        assert f"~ NS {NS} (2 VNF package(s) and an NS package) on VIM account mosaico: " \
               "removed and deployed again" in p.render()
        nbi.fail_instantiation, nbi.fail_times = "Deploying at VIM: no valid host was found", 1
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(targets(b2), store))
        assert "= note: undone: osm nfvi1/web_ll: deploy NS mosaico-vnf-chain-web-ll-nfvi1 " \
               "again from its recorded packages" in str(info.value)
        assert "error[E1212]" in str(info.value)
        (restored,) = _ns_of(nbi)
        assert restored["nsState"] == "READY" and restored["_id"] != old_ns["_id"]
        vnfd = next(r for r in nbi.vnfds.values() if r["id"] == "web_ll-1-ratelimit")
        cloud_init = vnfd["_admin"]["files"]["web_ll-1-ratelimit/cloud_init/"
                                             "web_ll-1-ratelimit.cfg"]
        assert "burst 200 packets" in cloud_init  # the old package, from the record
        # the store still names the old deployment; plan finds the restored NS by name
        b3 = _build(tmp_path, "b3")
        assert asyncio.run(rt.plan(targets(b3), store)).empty
        asyncio.run(rt.deploy(targets(b3), store))  # ... and the record follows it
        assert store.unit("osm", UNIT).data["nsr_id"] == restored["_id"]
        asyncio.run(rt.deploy(targets(b2), store))
        (new_ns,) = _ns_of(nbi)
        assert new_ns["nsState"] == "READY"
        assert store.unit("osm", UNIT).data["nsr_id"] == new_ns["_id"]


def test_drift_ns_deleted_out_of_band(nbi, tmp_path, state_path):
    b = _build(tmp_path)
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(b), store))
        nbi.nsrs.clear()
        p = asyncio.run(rt.plan(targets(b), store))
        assert "drift: deleted out of band" in p.render()
        asyncio.run(rt.deploy(targets(b), store))
        (ns,) = _ns_of(nbi)
        assert ns["nsState"] == "READY" and len(nbi.vnfds) == 2


def test_descriptors_mosaico_did_not_onboard_stop_the_plan(nbi, tmp_path, state_path):
    nbi.vnfds["f00"] = {"_id": "f00", "id": "web_ll-1-ratelimit"}
    text = _refused(state_path, lambda store: rt.deploy(targets(_build(tmp_path)), store))
    assert "error[E1222]: OSM nfvi1/web_ll: a VNF descriptor with id web_ll-1-ratelimit is " \
           "onboarded already (f00) and mosaico did not onboard it" in text
    assert [m for m, _ in nbi.log if m != "GET"] == ["POST"]  # the token, nothing else
    assert list(nbi.vnfds) == ["f00"]


def test_vim_account_and_vld_mapping(nbi, tmp_path, state_path):
    b = _build(tmp_path)
    with StateStore(state_path) as store:
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.plan(targets(b, vim_account="elsewhere"), store))
        assert "error[E1221]: OSM nfvi1/web_ll: no VIM account 'elsewhere' in OSM" in \
            str(info.value) and "known: mosaico" in str(info.value)
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.plan(targets(b, vlds={"transit-s9": "x"}), store))
        assert "error[E1221]: --osm-vld transit-s9: no NSD of this build has that virtual " \
               "link" in str(info.value)
        asyncio.run(rt.deploy(targets(b, vlds={"transit-s1": "provider-s1"}), store))
        assert nbi.bodies[-1]["vld"] == [{"name": "transit-s1",
                                          "vim-network-name": "provider-s1"}]


def test_timeout(nbi, tmp_path, state_path):
    nbi.stuck = True
    text = _refused(state_path,
                    lambda store: rt.deploy(targets(_build(tmp_path), timeout=0), store))
    assert f"error[E1220]: OSM {UNIT}: instantiation of NS {NS} did not complete within 0s " \
           "(still PROCESSING)" in text


def test_credentials(tmp_path, monkeypatch):
    for var in ("OSM_HOSTNAME", "OSM_USER", "OSM_PASSWORD", "OSM_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(CompileError) as info:
        load_credentials(None, {})
    assert "error[E1221]: OSM credentials incomplete: no url, user, password" in \
        str(info.value)
    cfg = tmp_path / "osm.yaml"
    cfg.write_text("url: nbi.example.net\nuser: ops\npassword: pw\nvim_account: lab\n")
    c = load_credentials(cfg, {"OSM_PROJECT": "p7"})
    assert (c.url, c.user, c.project, c.vim_account) == (
        "https://nbi.example.net:9999", "ops", "p7", "lab")
    assert "pw" not in repr(c)
    cfg.write_text("url: x\nuser: u\npassword: p\nvim: lab\n")
    with pytest.raises(CompileError, match="unknown setting"):
        load_credentials(cfg, {})


def test_wrong_password_is_reported_without_it(nbi, tmp_path, state_path, monkeypatch):
    monkeypatch.setenv("OSM_PASSWORD", "wrong-" + PASSWORD)
    text = _refused(state_path, lambda store: rt.plan(targets(_build(tmp_path)), store))
    assert "error[E1219]: OSM NBI: listing VIM accounts failed: POST /osm/admin/v1/tokens: " \
           "HTTP 401: Invalid username or password" in text
    assert PASSWORD not in text


def test_cli_deploy_status_destroy_never_print_credentials(nbi, tmp_path, state_path):
    b = _build(tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["deploy", str(b), "--target", "osm", "--state", str(state_path),
                            "--stack-poll", "0"])
    assert r.exit_code == 0, r.output
    assert f"NS {NS}" in r.output and PASSWORD not in r.output
    r = runner.invoke(cli, ["status", "--target", "osm", "--state", str(state_path),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert (row["service"], row["node"], row["state"]) == ("web_ll", "nfvi1", "READY")
    r = runner.invoke(cli, ["destroy", "--target", "osm", "--state", str(state_path),
                            "--stack-poll", "0"])
    assert r.exit_code == 0, r.output
    assert nbi.nsrs == {} and PASSWORD not in r.output
    r = runner.invoke(cli, ["deploy", str(tmp_path / "nothing"), "--target", "osm",
                            "--state", str(state_path)])
    assert r.exit_code == 1


def test_cli_refuses_a_build_without_osm_descriptors(tmp_path, state_path):
    r = mo.compile(ROOT / "examples" / "secure_l4s.mosaico", emit=["ir", "placement", "vnf"])
    b = r.write(tmp_path / "flagship")
    out = CliRunner().invoke(cli, ["deploy", str(b), "--target", "osm", "--state",
                                   str(state_path)])
    assert out.exit_code == 1
    assert "error[E1215]" in out.output and "has no OSM descriptors" in out.output


# --------------------------------------------------------------------------- killed clients
# The HTTP-boundary part of the fault-injection suite (tests/runtime/test_runtime_recovery.py):
# the client is a forked copy of this process, killed (SIGKILL) once the NBI answered its
# k-th request — the request took effect, the client never learnt its answer. The NBI's
# state outlives it.


def _deploy_in(state_path: Path, build: Path):
    def work():
        with StateStore(state_path) as store:
            asyncio.run(rt.deploy(targets(build), store))
    return work


def _requests_of(nbi: FakeNbi, work) -> int:
    """How many requests ``work`` makes (run once, then undone by the caller)."""
    start = nbi.count
    work()
    return nbi.count - start


def test_killed_at_each_request_of_a_first_deploy(nbi, tmp_path):
    """At every request: destroy removes every package and NS the killed client onboarded
    or instantiated — also one whose id it never learnt (found by descriptor id or name) —
    so that the next deploy is not refused as "not mosaico's" (E1222)."""
    from fault_support import killed_client

    b = _build(tmp_path)
    total = _requests_of(nbi, _deploy_in(tmp_path / "probe.db", b))
    with StateStore(tmp_path / "probe.db") as store:
        asyncio.run(rt.destroy(targets(None), store))
    assert total > 10
    for k in range(1, total + 1):
        state = tmp_path / f"state-{k}.db"
        start = nbi.count
        assert killed_client(nbi, start + k, _deploy_in(state, b), tmp_path) == -9, k
        with StateStore(state) as store:
            assert store.units() == [], k
            asyncio.run(rt.destroy(targets(None), store))
            assert store.intents() == [], k
        assert (nbi.vnfds, nbi.nsds, nbi.nsrs) == ({}, {}, {}), k
    with StateStore(tmp_path / "last.db") as store:
        asyncio.run(rt.deploy(targets(b), store))
    assert [n["nsState"] for n in nbi.nsrs.values()] == ["READY"]


def test_killed_at_each_request_of_a_replacement(nbi, tmp_path, state_path):
    """The NS of build A runs; deploying B (which replaces it) is killed at every request;
    the next deploy of A first undoes B's steps and brings A's NS back from the record,
    and then has nothing to change."""
    from fault_support import killed_client

    a = _build(tmp_path)
    b = _build(tmp_path, "b2", PROGRAM.read_text().replace("burst: 200", "burst: 300"))
    _deploy_in(state_path, a)()
    total = _requests_of(nbi, _deploy_in(state_path, b))  # what a replacement costs
    _deploy_in(state_path, a)()  # and back
    for k in range(1, total + 1):
        start = nbi.count
        assert killed_client(nbi, start + k, _deploy_in(state_path, b), tmp_path) == -9, k
        with StateStore(state_path) as store:
            again = asyncio.run(rt.deploy(targets(a), store))
            assert store.intents() == [], k
        (ns,) = _ns_of(nbi)
        assert ns["nsState"] == "READY", k
        vnfd = next(r for r in nbi.vnfds.values() if r["id"] == "web_ll-1-ratelimit")
        assert "burst 200 packets" in vnfd["_admin"]["files"][
            "web_ll-1-ratelimit/cloud_init/web_ll-1-ratelimit.cfg"], k
        assert not again.changed, k


def test_a_refused_upload_is_not_undone(nbi, tmp_path, state_path):
    """A package with the build's descriptor id appears between the plan and the upload
    (another OSM user): OSM refuses the upload (409), and the rollback — which finds a
    package whose id it never learnt by its descriptor id — must not delete theirs."""
    b = _build(tmp_path)
    with StateStore(state_path) as store:
        the_plan = asyncio.run(rt.plan(targets(b), store))
        nbi.vnfds["theirs"] = {"_id": "theirs", "id": "web_ll-0-blocklist"}
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.apply(the_plan, targets(b), store))
        assert "already exists" in str(info.value)
        assert store.intents() == []
    assert list(nbi.vnfds) == ["theirs"] and nbi.nsds == {} and nbi.nsrs == {}


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_while_an_ns_instantiates_rolls_back(nbi, tmp_path, state_path, sig):
    """A signal once the NBI took the instantiation: the client stops following the
    operation, terminates the NS, deletes its packages and exits with 128 + the signal."""
    import signal

    from fault_support import killed_client

    b = _build(tmp_path)
    start = nbi.count
    total = _requests_of(nbi, _deploy_in(tmp_path / "probe.db", b))
    (k,) = [i + 1 for i, (m, p) in enumerate(nbi.log[start:start + total])
            if m == "POST" and p.endswith("ns_instances_content")]
    with StateStore(tmp_path / "probe.db") as store:
        asyncio.run(rt.destroy(targets(None), store))
    at = nbi.count + k  # the instantiation request of the next deploy

    def work():
        cli.main(["deploy", str(b), "--target", "osm", "--state", str(state_path),
                  "--stack-poll", "0.01"], prog_name="mosaico")
    signum = getattr(signal, sig)
    assert killed_client(nbi, at, work, tmp_path, sig=signum) == 128 + signum
    assert (nbi.vnfds, nbi.nsds, nbi.nsrs) == ({}, {}, {})
    with StateStore(state_path) as store:
        assert store.intents() == [] and store.units() == []
