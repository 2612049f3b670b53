"""The OpenStack target, tested at the HTTP boundary as openstacksdk's own tests are.

No cloud can run here, so Keystone and Heat are played by ``requests_mock`` behind the real
openstacksdk: credentials come from a real ``clouds.yaml`` (``OS_CLIENT_CONFIG_FILE``), the
token and service catalog from openstacksdk's :class:`ConnectionFixture`, and a small Heat
(an in-memory stack registry answering the REST API) moves stacks through their states.
Faults are injected by request number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from dataclasses import dataclass, field

import pytest
import requests_mock
from click.testing import CliRunner
from fault_support import after_request
from openstack.fixture.connection import ConnectionFixture
from openstack.orchestration.util import template_format
from runtime_helpers import ROOT, insert, lab_entries, make_build, route_entry

from mosaico_dsl.cli import cli
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.diagnostics import CompileError
from mosaico_dsl.runtime import deployment as rt
from mosaico_dsl.runtime.build import load_build
from mosaico_dsl.runtime.openstack import OpenStackTarget
from mosaico_dsl.runtime.state import StateStore
from mosaico_dsl.runtime.switches import P4RuntimeTarget

PROJECT = "p1"
HEAT = f"https://orchestration.example.com/v1/{PROJECT}"
PASSWORD = "s3cret-password-never-logged"

STACK_YAML = b"""heat_template_version: 2018-08-31
description: mosaico VNFs on nfvi1
resources:
  sfc_net:
    type: OS::Neutron::Net
  web_0_blocklist:
    type: OS::Nova::Server
    properties: {image: debian-12, flavor: m1.small}
"""


@dataclass
class Heat:
    """Heat's stack API, in memory; each stack needs ``settle`` GETs to finish an action."""

    settle: int = 1
    stacks: dict[str, dict] = field(default_factory=dict)
    fail_at: int | None = None  # the Nth orchestration request answers 500
    stuck: bool = False  # actions never finish
    fail_create: str | None = None  # CREATE_FAILED with this reason
    count: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)  # of POST and PUT, in order

    def _find(self, key: str) -> dict | None:
        return next((s for s in self.stacks.values()
                     if key in (s["id"], s["stack_name"])), None)

    def handle(self, request, context):
        answer = self._answer(request, context)
        after_request(self)  # a forked client's fake: saved, and maybe the client killed
        return answer

    def _answer(self, request, context):
        self.count += 1
        path = request.path_url.split(f"/v1/{PROJECT}", 1)[1]
        self.log.append((request.method, path))
        if self.fail_at is not None and self.count == self.fail_at:
            context.status_code = 500
            return {"explanation": "The server has either erred or is incapable of "
                                   "performing the requested operation.",
                    "code": 500, "error": {"message": "Internal Server Error"}}
        parts = [p for p in path.split("?")[0].split("/") if p]
        if request.method in ("POST", "PUT"):
            body = request.json()
            self.bodies.append(body)
            refused = self._check_parameters(body)
            if refused:
                context.status_code = 400
                return {"explanation": "The server could not comply with the request since it "
                                   "is either malformed or otherwise incorrect.",
                    "code": 400, "title": "Bad Request", "error": {
                        "message": refused, "traceback": None, "type": "UserParameterMissing"}}
        if request.method == "POST" and parts == ["stacks"]:
            sid = str(uuid.uuid4())
            self.stacks[sid] = {"id": sid, "stack_name": body["stack_name"],
                                "stack_status": "CREATE_IN_PROGRESS",
                                "stack_status_reason": "Stack CREATE started",
                                "template": body["template"],
                                "parameters": body.get("parameters", {}), "polls": 0}
            context.status_code = 201
            return {"stack": {"id": sid, "links": [
                {"href": f"{HEAT}/stacks/{body['stack_name']}/{sid}", "rel": "self"}]}}
        stack = self._find(parts[1]) if len(parts) >= 2 else None
        if stack is None or stack["stack_status"] == "DELETE_COMPLETE":
            context.status_code = 404
            return {"error": {"message": f"The Stack ({parts[-1]}) could not be found."}}
        if request.method == "GET" and parts[-1] == "template":
            return stack["template"]
        if request.method == "GET":
            self._advance(stack)
            return {"stack": {k: v for k, v in stack.items() if k not in ("template", "polls")}
                    | {"links": []}}
        if request.method == "PUT":
            stack["template"] = body["template"]
            stack["parameters"] = body.get("parameters", {})
            stack.update(stack_status="UPDATE_IN_PROGRESS", polls=0)
            context.status_code = 202
            return None
        if request.method == "DELETE":
            stack.update(stack_status="DELETE_IN_PROGRESS", polls=0)
            context.status_code = 204
            return None
        context.status_code = 400
        return {}

    @staticmethod
    def _check_parameters(body: dict) -> str | None:
        """Heat's own checks: every parameter without default given, none undeclared."""
        declared = body["template"].get("parameters") or {}
        given = body.get("parameters") or {}
        for name in given:
            if name not in declared:
                return f"The Parameter ({name}) was not defined in template."
        for name, spec in declared.items():
            if "default" not in spec and name not in given:
                return f"The Parameter ({name}) was not provided."
        return None

    def _advance(self, stack: dict) -> None:
        if self.stuck or not stack["stack_status"].endswith("IN_PROGRESS"):
            return
        stack["polls"] += 1
        if stack["polls"] < self.settle:
            return
        action = stack["stack_status"].split("_")[0]
        if action == "CREATE" and self.fail_create:
            stack.update(stack_status="CREATE_FAILED", stack_status_reason=self.fail_create)
        else:
            stack.update(stack_status=f"{action}_COMPLETE",
                         stack_status_reason=f"Stack {action} completed successfully")

    def calls(self) -> list[tuple[str, str]]:
        return [(m, re.sub(r"[0-9a-f-]{36}", "ID", p)) for m, p in self.log]


@pytest.fixture
def heat(tmp_path, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(json.dumps({"clouds": {"mosaico": {
        "auth": {"auth_url": "https://identity.example.com", "username": "alice",
                 "password": PASSWORD, "project_id": PROJECT,
                 "user_domain_name": "Default"},
        "region_name": "RegionOne", "identity_api_version": "3"}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_PASSWORD", "OS_USERNAME"):
        monkeypatch.delenv(var, raising=False)
    fx = ConnectionFixture(project_id=PROJECT)
    fake = Heat()
    with requests_mock.Mocker() as m:
        m.register_uri(requests_mock.ANY, requests_mock.ANY, status_code=599,
                       json={"error": "unexpected request"})
        m.get("https://identity.example.com/", json={"versions": {"values": [{
            "id": "v3.14", "status": "stable",
            "links": [{"href": "https://identity.example.com/v3/", "rel": "self"}]}]}})
        m.post("https://identity.example.com/v3/auth/tokens", json=fx.v3_token,
               headers={"X-Subject-Token": uuid.uuid4().hex}, status_code=201)
        m.register_uri(requests_mock.ANY, re.compile(re.escape(HEAT) + "/stacks.*"),
                       json=fake.handle)
        yield fake


@pytest.fixture
def os_build(tmp_path):
    def build(entries=None, stack=STACK_YAML, name="b"):
        extra = {"nfvi1/stack.yaml": stack} if stack is not None else {}
        return make_build(tmp_path / name, {"s1": entries or lab_entries(1)}, extra=extra)
    return build


def targets(build, **kw):
    return [OpenStackTarget(load_build(build) if build else None, poll=0, **kw)]


def test_create_wait_and_unchanged(heat, os_build, state_path):
    b = os_build()
    with StateStore(state_path) as store:
        progress: list[str] = []
        result = asyncio.run(rt.deploy(targets(b), store, progress=progress.append))
        assert result.changed
        assert heat.calls() == [("GET", "/stacks/mosaico-two-switches-nfvi1"),
                                ("POST", "/stacks"), ("GET", "/stacks/ID")]
        stack = next(iter(heat.stacks.values()))
        assert stack["stack_status"] == "CREATE_COMPLETE"
        assert stack["template"]["resources"]["web_0_blocklist"]["type"] == "OS::Nova::Server"
        assert "nfvi1: stack mosaico-two-switches-nfvi1 CREATE_COMPLETE " \
               "(Stack CREATE completed successfully)" in progress
        rec = store.unit("openstack", "nfvi1")
        assert rec.data["stack_id"] == stack["id"] and rec.data["cloud"] == "mosaico"
        n = len(heat.log)
        again = asyncio.run(rt.deploy(targets(b), store))
        assert not again.changed
        assert heat.log[n:] == [("GET", "/stacks/mosaico-two-switches-nfvi1")]


def test_changed_template_updates_the_stack(heat, os_build, state_path):
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(os_build()), store))
        changed = STACK_YAML.replace(b"m1.small", b"m1.medium")
        b2 = os_build(stack=changed, name="b2")
        p = asyncio.run(rt.plan(targets(b2), store))
        assert "~ stack mosaico-two-switches-nfvi1 (2 resources)" in p.render()
        asyncio.run(rt.deploy(targets(b2), store))
        stack = next(iter(heat.stacks.values()))
        assert stack["stack_status"] == "UPDATE_COMPLETE"
        flavor = stack["template"]["resources"]["web_0_blocklist"]["properties"]["flavor"]
        assert flavor == "m1.medium"
        assert ("PUT", "/stacks/mosaico-two-switches-nfvi1/ID") in heat.calls()


def test_destroy_deletes_and_waits(heat, os_build, state_path):
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(os_build()), store))
        result = asyncio.run(rt.destroy(targets(None), store))  # from the state store alone
        assert "- stack mosaico-two-switches-nfvi1" in result.plan.render()
        assert heat.calls()[-2:] == [("DELETE", "/stacks/ID"), ("GET", "/stacks/ID")]
        assert store.units("openstack") == []


def test_drift_stack_deleted_out_of_band(heat, os_build, state_path):
    b = os_build()
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(b), store))
        heat.stacks.clear()
        p = asyncio.run(rt.plan(targets(b), store))
        assert "drift: deleted out of band" in p.render()
        assert "+ stack mosaico-two-switches-nfvi1" in p.render()


def test_http_500_on_the_third_request_rolls_back(heat, os_build, state_path):
    """GET (plan), POST (create), then a 500 while waiting: the stack is deleted again."""
    heat.fail_at = 3
    with StateStore(state_path) as store:
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(targets(os_build()), store))
        text = str(info.value)
        assert "error[E1209]: OpenStack host nfvi1: waiting for stack " \
               "mosaico-two-switches-nfvi1 failed: HTTP 500" in text
        assert "error[E1212]: deploy failed and was rolled back" in text
        assert "undone: openstack nfvi1: delete stack mosaico-two-switches-nfvi1" in text
        assert heat.calls()[2:] == [("GET", "/stacks/ID"), ("DELETE", "/stacks/ID"),
                                    ("GET", "/stacks/ID")]
        assert all(s["stack_status"] == "DELETE_COMPLETE" for s in heat.stacks.values())
        assert store.units() == []
        assert store.history()[0][4] == "rolled back"
        assert PASSWORD not in text


def test_create_failed_and_timeout(heat, os_build, state_path):
    heat.fail_create = "Resource CREATE failed: Quota exceeded for cores"
    with StateStore(state_path) as store:
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(targets(os_build()), store))
        assert "stack mosaico-two-switches-nfvi1 is CREATE_FAILED: Resource CREATE failed: " \
               "Quota exceeded for cores" in str(info.value)
        assert "undone: openstack nfvi1: delete stack" in str(info.value)
        heat.fail_create, heat.stuck = None, True
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(targets(os_build(name="b2"), timeout=0), store))
        assert "error[E1210]" in str(info.value)
        assert "did not reach CREATE_COMPLETE within 0s (still CREATE_IN_PROGRESS)" \
            in str(info.value)


def test_multi_target_failure_unwinds_in_reverse_order(heat, os_build, state_path,
                                                       reference_switch):
    """The stack is created first, then s1 refuses an entry: both are undone, newest first."""
    sw = reference_switch(device_id=1)
    bad = route_entry(3)
    bad.table_entry.action.action.params[0].value = b"\x7f\xff"
    b = os_build(entries=[insert(route_entry(1)), insert(bad)])
    build = load_build(b, {"s1": sw.address})
    ts = [P4RuntimeTarget(build), OpenStackTarget(build, poll=0)]
    with StateStore(state_path) as store:
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(ts, store))
        text = str(info.value)
    assert "error[E1207]: switch s1 rejected 1 update(s)" in text
    undone = [line for line in text.splitlines() if "undone:" in line]
    assert undone[0].strip().startswith("= note: undone: p4runtime s1")
    assert undone[1].strip().startswith("= note: undone: openstack nfvi1: delete stack")
    assert all(s["stack_status"] == "DELETE_COMPLETE" for s in heat.stacks.values())
    assert sw.call(lambda: dict(sw.target.state.entries)).get(route_entry(1).table_entry.table_id,
                                                              {}) == {}


def test_cli_deploy_and_status_never_print_credentials(heat, os_build, state_path):
    b = os_build()
    args = ["--target", "openstack", "--state", str(state_path), "--stack-poll", "0"]
    r = CliRunner().invoke(cli, ["deploy", str(b), *args])
    assert r.exit_code == 0, r.output
    assert "+ stack mosaico-two-switches-nfvi1 (2 resources) on cloud mosaico" in r.output
    r = CliRunner().invoke(cli, ["status", str(b), *args, "--format", "json"])
    rows = json.loads(r.output)
    # web runs on the switches only: nfvi1 reports its own state, no per-service row
    assert [(x["service"], x["node"], x["state"]) for x in rows] == [
        ("*", "nfvi1", "CREATE_COMPLETE")]
    heat.fail_at = heat.count + 1
    r = CliRunner().invoke(cli, ["status", str(b), *args])
    assert "unreachable" in r.output and "HTTP 500" in r.output
    assert PASSWORD not in r.output


def test_missing_cloud_is_a_diagnostic(heat, os_build, state_path, monkeypatch, tmp_path):
    (tmp_path / "empty.yaml").write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "empty.yaml"))
    r = CliRunner().invoke(cli, ["plan", str(os_build()), "--target", "openstack",
                                 "--state", str(state_path)])
    assert r.exit_code == 1
    assert "error[E1209]: OpenStack host nfvi1" in r.output and "mosaico" in r.output
    assert "Traceback" not in r.output


# --------------------------------------------------------------------------- a generated stack

VNF_CHAIN = ROOT / "tests" / "backends" / "vnf" / "programs" / "vnf_chain.mosaico"
GENERATED = "mosaico-vnf-chain-nfvi1"
SFC_TYPES = {"OS::Neutron::PortPair", "OS::Neutron::PortPairGroup",
             "OS::Neutron::FlowClassifier", "OS::Neutron::PortChain", "OS::Nova::Server"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The VNF backend's real stack.yaml: the flagship chain's filters on nfvi1 (cloud
    ``mosaico``), compiled once."""
    return compile_program(VNF_CHAIN).write(tmp_path_factory.mktemp("generated") / "build")


def test_generated_stack_needs_key_name_and_goes_to_heat_with_it(heat, generated,
                                                                 state_path):
    args = ["plan", str(generated), "--target", "openstack", "--state", str(state_path),
            "--stack-poll", "0"]
    run = lambda *a, cmd=None: CliRunner().invoke(cli, [cmd or args[0], *args[1:], *a])
    r = run()
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "error[E1218]: OpenStack host nfvi1: stack parameter 'key_name' has no default " \
           "and was not given (Nova key pair for SSH access to the VNFs)" in r.output
    assert "hint: pass --stack-param key_name=VALUE" in r.output
    assert heat.log == [], "a stack Heat would refuse is not sent"

    r = run("--stack-param", "key_name=ops", cmd="deploy")
    assert r.exit_code == 0, r.output
    assert f"+ stack {GENERATED} (" in r.output and "on cloud mosaico" in r.output
    (stack,) = heat.stacks.values()
    assert stack["stack_status"] == "CREATE_COMPLETE"
    assert stack["parameters"] == {"key_name": "ops"}
    # Heat received the generated template as openstacksdk parsed it, networking-sfc and all.
    text = (generated / "nfvi1" / "stack.yaml").read_text()
    assert stack["template"] == template_format.parse(text)
    assert SFC_TYPES <= {r["type"] for r in stack["template"]["resources"].values()}

    n = len(heat.log)
    r = run(cmd="deploy")  # the recorded key_name holds until another is given
    assert r.exit_code == 0 and "Nothing to do" in r.output
    assert heat.log[n:] == [("GET", f"/stacks/{GENERATED}")]

    r = run("--stack-param", "key_name=other")
    assert f"~ stack {GENERATED}" in r.output, "a changed parameter updates the stack"
    r = run("--stack-param", "key_name=other", cmd="deploy")
    assert r.exit_code == 0, r.output
    assert stack["stack_status"] == "UPDATE_COMPLETE"
    assert heat.bodies[-1]["parameters"] == {"key_name": "other"}

    # The update fails while Heat works on it: the revert restores template and parameters.
    heat.fail_at = heat.count + 3  # GET (plan), PUT, then the first wait answers 500
    r = run("--stack-param", "key_name=third", cmd="deploy")
    assert r.exit_code == 1 and "error[E1212]" in r.output
    assert f"undone: openstack nfvi1: revert stack {GENERATED}" in r.output
    assert [b["parameters"] for b in heat.bodies[-2:]] == [{"key_name": "third"},
                                                          {"key_name": "other"}]
    assert stack["parameters"] == {"key_name": "other"}


def test_stack_param_mistakes_are_diagnostics(heat, generated, state_path):
    base = ["plan", str(generated), "--target", "openstack", "--state", str(state_path)]
    r = CliRunner().invoke(cli, [*base, "--stack-param", "key_name"])
    assert r.exit_code == 1
    assert "error[E1218]: --stack-param 'key_name' is not NAME=VALUE" in r.output
    r = CliRunner().invoke(cli, [*base, "--stack-param", "key_name=ops",
                                 "--stack-param", "keyname=ops"])
    assert r.exit_code == 1
    assert "error[E1218]: --stack-param keyname: no stack of this build declares it" \
        in r.output and "key_name" in r.output
    assert heat.log == [] and "Traceback" not in r.output


def test_heat_refusal_quotes_heats_message(heat, generated, state_path, monkeypatch):
    """Were the check skipped, Heat's 400 would be reported by its message, not its body."""
    monkeypatch.setattr(OpenStackTarget, "_check_parameters", lambda self, templates, store: None)
    r = CliRunner().invoke(cli, ["deploy", str(generated), "--target", "openstack",
                                 "--state", str(state_path), "--stack-poll", "0"])
    assert r.exit_code == 1
    assert f"error[E1209]: OpenStack host nfvi1: creating stack {GENERATED} failed: " \
           "HTTP 400: The Parameter (key_name) was not provided.\n" in r.output


def test_credentials_reach_no_log_and_no_file(heat, os_build, state_path, caplog):
    """Even at DEBUG (keystoneauth and openstacksdk log their requests), and in the state
    store, the password appears nowhere; only the cloud's name is recorded."""
    caplog.set_level(logging.DEBUG)
    heat.fail_at = 3
    with StateStore(state_path) as store:
        with pytest.raises(CompileError) as info:
            asyncio.run(rt.deploy(targets(os_build()), store))
        heat.fail_at = None
        asyncio.run(rt.deploy(targets(os_build(name="again")), store))
        assert store.unit("openstack", "nfvi1").data["cloud"] == "mosaico"
    assert any("identity.example.com" in r.getMessage() for r in caplog.records), \
        "DEBUG logging of the HTTP requests was on"
    assert PASSWORD not in caplog.text and PASSWORD not in str(info.value)
    assert PASSWORD.encode() not in state_path.read_bytes()


# --------------------------------------------------------------------------- killed clients
# The HTTP-boundary part of the fault-injection suite (tests/runtime/test_runtime_recovery.py):
# the client is a forked copy of this process, killed once Heat answered its k-th request
# (the request took effect; the client never learnt its answer). Heat's state outlives it.


def _deploy_in(state_path, build):
    def work():
        with StateStore(state_path) as store:
            asyncio.run(rt.deploy(targets(build), store))
    return work


def _live(heat) -> list[dict]:
    return [s for s in heat.stacks.values() if s["stack_status"] != "DELETE_COMPLETE"]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_killed_creating_a_stack_is_recovered(heat, os_build, state_path, tmp_path, k):
    """Killed after the plan's lookup (1), after Heat created the stack but before the
    client had its id (2), after it completed but before the store recorded it (3): destroy
    finds it (by name when the id never arrived) and deletes it; deploying again makes
    exactly one stack, recorded."""
    from fault_support import killed_client

    b = os_build()
    assert killed_client(heat, k, _deploy_in(state_path, b), tmp_path) == -9
    with StateStore(state_path) as store:
        assert store.units() == []
        assert len(store.intents()) == (k > 1)
        asyncio.run(rt.destroy(targets(None), store))
        assert store.intents() == [] and _live(heat) == []
        asyncio.run(rt.deploy(targets(b), store))
        (stack,) = _live(heat)
        assert store.unit("openstack", "nfvi1").data["stack_id"] == stack["id"]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_killed_updating_a_stack_is_reverted(heat, os_build, state_path, tmp_path, k):
    with StateStore(state_path) as store:
        asyncio.run(rt.deploy(targets(os_build()), store))
    (stack,) = _live(heat)
    before = json.dumps(stack["template"], sort_keys=True)
    changed = os_build(stack=STACK_YAML.replace(b"m1.small", b"m1.medium"), name="b2")
    from fault_support import killed_client

    assert killed_client(heat, heat.count + k, _deploy_in(state_path, changed),
                         tmp_path) == -9
    with StateStore(state_path) as store:
        again = asyncio.run(rt.deploy(targets(os_build()), store))
        assert not again.changed, "recovered: the stack runs the recorded template again"
        assert store.intents() == []
    (stack,) = _live(heat)
    assert json.dumps(stack["template"], sort_keys=True) == before


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_while_a_stack_is_created_rolls_back(heat, os_build, state_path, tmp_path,
                                                     sig):
    """SIGINT, SIGTERM or SIGHUP once Heat took the create: the client stops waiting,
    deletes the stack and exits with 128 + the signal."""
    import signal

    from fault_support import killed_client

    b = os_build()
    heat.settle = 3

    def work():
        cli.main(["deploy", str(b), "--target", "openstack", "--state", str(state_path),
                  "--stack-poll", "0.01"], prog_name="mosaico")
    signum = getattr(signal, sig)
    assert killed_client(heat, 2, work, tmp_path, sig=signum) == 128 + signum
    assert _live(heat) == []
    with StateStore(state_path) as store:
        assert store.intents() == [] and store.units() == []
        assert store.history()[0][4] == "rolled back"
