"""The OpenStack target: one Heat stack per VNF host, created, updated, waited on, deleted.

The VNF backend writes ``build/<host>/stack.yaml`` (HOT with networking-sfc resources);
this module hands it to Heat through openstacksdk's orchestration proxy and waits for the
stack to settle, reporting progress and giving up after a timeout. Credentials come from
``clouds.yaml`` (the host's ``cloud:`` attribute names the entry) or the ``OS_*``
environment, exactly as the ``openstack`` CLI reads them; they are never logged — errors
quote only the HTTP status and Heat's reason. Stack parameters (``--stack-param
key_name=KEY``) go to every stack that declares them; a parameter a stack needs (one
without a default) and nobody gave stops the plan before the cloud is asked anything; a
stack keeps the parameters recorded at its last deploy unless they are given again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import CompileError, error
from .build import Build, HostArtifacts
from .plan import ADD, DELETE, MODIFY, Change, UnitPlan
from .state import StateStore, UnitRecord, UnitUpdate
from .status import StatusRow
from .transaction import Transaction

__all__ = ["OpenStackTarget", "TARGET", "RECORD_SCHEMA", "stack_name", "parse_stack_params"]

TARGET = "openstack"
Progress = Callable[[str], None]
Connect = Callable[[str | None], Any]


def _connect(cloud: str | None):
    import openstack

    return openstack.connect(cloud=cloud) if cloud else openstack.connect()


_HOT_KEYS = ("heat_template_version", "description", "parameters", "resources", "outputs",
             "conditions", "parameter_groups")


def _parse_hot(text: str) -> dict:
    """HOT as Heat reads it (openstacksdk's loader: ``2018-08-31`` stays a string)."""
    from openstack.orchestration.util import template_format

    return template_format.parse(text)


def stack_name(program: str, host: str) -> str:
    return f"mosaico-{program}-{host}".replace("_", "-")


def parse_stack_params(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("key_name=ops", ...)`` → ``{"key_name": "ops"}``; bad items → E1218."""
    out: dict[str, str] = {}
    diags = []
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name.strip():
            diags.append(error("E1218", f"--stack-param {v!r} is not NAME=VALUE",
                               hint="for example --stack-param key_name=mykey"))
            continue
        out[name.strip()] = value
    if diags:
        raise CompileError(diags)
    return out


def _fingerprint(text: str, parameters: Mapping[str, str]) -> str:
    """What a stack was deployed from: its template and the parameters it was given."""
    extra = json.dumps(dict(parameters), sort_keys=True) if parameters else ""
    return hashlib.sha256(text.encode() + (b"\0" + extra.encode() if extra else b"")
                          ).hexdigest()


# What a host's record holds (the store checks it before anything reads it).
RECORD_SCHEMA = {
    "type": "object",
    "required": ["stack_name"],
    "properties": {
        "cloud": {"type": ["string", "null"]},
        "stack_name": {"type": "string", "minLength": 1},
        "stack_id": {"type": ["string", "null"]},
        "template": {"type": "string"},
        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@dataclass(frozen=True)
class _Payload:
    host: str
    cloud: str | None
    name: str
    action: str  # create | update | delete | none
    template: dict | None
    template_text: str | None
    stack_id: str | None
    previous: str | None = None  # the recorded template text: what a rollback restores
    parameters: Mapping[str, str] = field(default_factory=dict)
    previous_parameters: Mapping[str, str] = field(default_factory=dict)


def _reason(details: str) -> str:
    """Heat's message out of its JSON error body (openstacksdk passes the whole body on
    when the body holds non-dict values, as Heat's ``"code": 400`` does)."""
    try:
        body = json.loads(details)
    except (TypeError, ValueError):
        return details
    if not isinstance(body, dict):
        return details
    err = body.get("error")
    found = (err.get("message") if isinstance(err, dict) else None) \
        or body.get("explanation") or body.get("message")
    return str(found) if found else details


def _refused(e: Exception) -> bool:
    """Did Heat answer the request with a refusal (4xx), so that nothing was done?"""
    from openstack import exceptions as osx

    return isinstance(e, osx.HttpException) and e.status_code is not None and \
        400 <= int(e.status_code) < 500


def _failed(host: str, what: str, e: Exception) -> CompileError:
    """An openstacksdk/keystoneauth error as a diagnostic, without credentials."""
    from openstack import exceptions as osx

    if isinstance(e, osx.HttpException):
        detail = f"HTTP {e.status_code}: {_reason(e.details or e.message)}"
    elif isinstance(e, osx.ConfigException):
        detail = f"configuration: {e}"
    else:
        detail = f"{type(e).__name__}: {e}"
    hint = ("check the cloud's entry in clouds.yaml (or the OS_* variables) and that Heat "
            "is available") if not isinstance(e, osx.ResourceFailure) else None
    return CompileError([error("E1209", f"OpenStack host {host}: {what} failed: {detail}",
                               hint=hint)])


class OpenStackTarget:
    """Deploys the build's OpenStack hosts as Heat stacks."""

    target = TARGET

    def __init__(self, build: Build | None, *, timeout: float = 1800.0, poll: float = 5.0,
                 parameters: Mapping[str, str] | None = None,
                 connect: Connect = _connect) -> None:
        self.build = build
        self.timeout, self.poll = timeout, poll
        self.parameters = dict(parameters or {})
        self._connect_fn = connect
        self._conns: dict[str | None, Any] = {}

    def _conn(self, cloud: str | None):
        if cloud not in self._conns:
            self._conns[cloud] = self._connect_fn(cloud)
        return self._conns[cloud]

    def _hosts(self) -> list[HostArtifacts]:
        if self.build is None:
            return []
        return [h for h in self.build.hosts if h.platform == "openstack" and h.stack]

    # ------------------------------------------------------------------ plan

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]:
        wanted = {h.name: h for h in ([] if destroy else self._hosts())}
        recorded = store.units(TARGET, RECORD_SCHEMA)
        names = list(dict.fromkeys([*wanted, *(u.name for u in recorded)]))
        templates = {n: self._template(h) for n, h in wanted.items()}
        self._check_parameters(templates, store)
        return [await asyncio.to_thread(self._plan_one, n, wanted.get(n), templates.get(n),
                                        store)
                for n in names]

    @staticmethod
    def _template(host: HostArtifacts) -> tuple[str, dict]:
        text = host.stack.read_text(encoding="utf-8")
        try:
            return text, _parse_hot(text)
        except ValueError as e:
            raise CompileError([error("E1209", f"{host.stack}: not a Heat template: {e}")]) \
                from None

    def _check_parameters(self, templates: Mapping[str, tuple[str, dict]],
                          store: StateStore) -> None:
        """Heat refuses a stack missing a parameter without default, or given one it does
        not declare: say so before anything is created, with the option that fixes it."""
        diags = []
        declared_anywhere: set[str] = set()
        for host, (_, template) in templates.items():
            declared = template.get("parameters") or {}
            declared_anywhere |= set(declared)
            given = self._given(template, store.unit(TARGET, host, RECORD_SCHEMA))
            for name in sorted(n for n, d in declared.items()
                               if "default" not in (d or {}) and n not in given):
                what = (declared[name] or {}).get("description")
                diags.append(error(
                    "E1218", f"OpenStack host {host}: stack parameter {name!r} has no default "
                             "and was not given" + (f" ({what})" if what else ""),
                    hint=f"pass --stack-param {name}=VALUE"))
        if templates:
            for name in sorted(set(self.parameters) - declared_anywhere):
                diags.append(error(
                    "E1218", f"--stack-param {name}: no stack of this build declares it",
                    hint="declared: " + (", ".join(sorted(declared_anywhere)) or "none")))
        if diags:
            raise CompileError(diags)

    def _given(self, template: dict, rec: UnitRecord | None) -> dict[str, str]:
        """The parameters this stack gets: those recorded at its last deploy, overridden by
        ``--stack-param``, limited to what it declares (Heat rejects the others)."""
        declared = template.get("parameters") or {}
        params = {**(rec.data.get("parameters", {}) if rec else {}), **self.parameters}
        return {k: v for k, v in sorted(params.items()) if k in declared}

    def _plan_one(self, name: str, host: HostArtifacts | None,
                  parsed: tuple[str, dict] | None, store: StateStore) -> UnitPlan:
        rec = store.unit(TARGET, name, RECORD_SCHEMA)
        cloud = host.cloud if host else (rec.data.get("cloud") if rec else None)
        sname = stack_name(self.build.program, name) if host and self.build else \
            rec.data["stack_name"]
        text, template = parsed if parsed is not None else (None, None)
        params = self._given(template, rec) if template is not None else {}
        digest = _fingerprint(text, params) if text is not None else None
        try:
            live = self._conn(cloud).orchestration.find_stack(sname, ignore_missing=True)
        except Exception as e:
            raise _failed(name, f"looking up stack {sname}", e) from None
        if live is not None and live.status == "DELETE_COMPLETE":
            live = None
        drift: list[Change] = []
        if rec is not None and live is None:
            drift.append(Change(DELETE, f"stack {sname}", drift="deleted out of band"))
        elif rec is not None and live.id != rec.data.get("stack_id"):
            drift.append(Change(MODIFY, f"stack {sname} ({live.id})",
                                before=rec.data.get("stack_id"),
                                drift="replaced out of band"))
        elif live is not None and live.status.endswith("FAILED"):
            drift.append(Change(MODIFY, f"stack {sname}",
                                drift=f"{live.status}: {live.status_reason}"))
        if template is None:  # destroy, or the host left the build
            if live is None:
                return UnitPlan(TARGET, name, (), tuple(drift),
                                payload=_Payload(name, cloud, sname, "none", None, None, None))
            return UnitPlan(TARGET, name, (Change(DELETE, f"stack {sname} ({live.id})"),),
                            tuple(drift), payload=_Payload(name, cloud, sname, "delete", None,
                                                           None, live.id))
        n = len(template.get("resources", {}))
        if live is None:
            change = Change(ADD, f"stack {sname} ({n} resources) on cloud {cloud or '$OS_*'}")
            action = "create"
        elif rec is None or rec.fingerprint != digest or live.status.endswith("FAILED"):
            change = Change(MODIFY, f"stack {sname} ({n} resources)",
                            before=f"{live.status}, template "
                                   f"{(rec.fingerprint[:12] if rec else 'unknown')}")
            action = "update"
        else:
            return UnitPlan(TARGET, name, (), tuple(drift),
                            payload=_Payload(name, cloud, sname, "none", template, text,
                                             live.id, parameters=params))
        return UnitPlan(TARGET, name, (change,), tuple(drift),
                        payload=_Payload(name, cloud, sname, action, template, text,
                                         live.id if live else None,
                                         rec.data.get("template") if rec else None,
                                         params,
                                         dict(rec.data.get("parameters", {})) if rec else {}))

    # ------------------------------------------------------------------ apply

    async def apply(self, plan: UnitPlan, tx: Transaction,
                    progress: Progress = lambda _: None) -> UnitUpdate:
        return await asyncio.to_thread(self._apply, plan, tx, progress)

    def _record(self, p: _Payload, stack_id: str | None) -> UnitUpdate:
        if p.template is None:
            return UnitUpdate(TARGET, p.host, None)
        digest = _fingerprint(p.template_text, p.parameters)
        return UnitUpdate(TARGET, p.host, digest, {"cloud": p.cloud, "stack_name": p.name,
                                                   "stack_id": stack_id,
                                                   "template": p.template_text,
                                                   "parameters": dict(p.parameters)})

    def _apply(self, plan: UnitPlan, tx: Transaction, progress: Progress) -> UnitUpdate:
        p: _Payload = plan.payload
        orch = self._conn(p.cloud).orchestration
        unit = f"{TARGET} {p.host}"
        where = {"cloud": p.cloud, "host": p.host, "name": p.name}
        if p.action == "none":
            return self._record(p, p.stack_id)
        if p.action == "create":
            spec = {"kind": "create", **where, "stack_id": None}
            with tx.step(TARGET, unit, f"delete stack {p.name}", spec) as step:
                try:
                    stack = orch.create_stack(name=p.name, template=p.template,
                                              parameters=dict(p.parameters),
                                              timeout_mins=max(1, int(self.timeout // 60)),
                                              disable_rollback=False)
                except Exception as e:
                    if _refused(e):
                        step.discard()  # Heat said no: nothing was created
                    raise _failed(p.host, f"creating stack {p.name}", e) from None
                step.amend({**spec, "stack_id": stack.id},
                           f"delete stack {p.name} ({stack.id})")
                self._wait(orch, p.host, stack.id, p.name, "CREATE_COMPLETE", progress,
                           check=tx.check)
            return self._record(p, stack.id)
        if p.action == "update":
            try:
                if p.previous is not None:
                    old_template = _parse_hot(p.previous)
                else:
                    old = orch.get_stack_template(p.stack_id)
                    old_template = {k: getattr(old, k) for k in _HOT_KEYS
                                    if getattr(old, k, None) is not None}
            except Exception as e:
                raise _failed(p.host, f"reading stack {p.name}'s template", e) from None
            spec = {"kind": "update", **where, "stack_id": p.stack_id,
                    "template": json.loads(json.dumps(old_template, default=str)),
                    "parameters": dict(p.previous_parameters)}
            with tx.step(TARGET, unit, f"revert stack {p.name} to its previous template",
                         spec) as step:
                try:
                    orch.update_stack(p.stack_id, name=p.name, template=p.template,
                                      parameters=dict(p.parameters))
                except Exception as e:
                    if _refused(e):
                        step.discard()
                    raise _failed(p.host, f"updating stack {p.name}", e) from None
                self._wait(orch, p.host, p.stack_id, p.name, "UPDATE_COMPLETE", progress,
                           check=tx.check)
            return self._record(p, p.stack_id)
        # delete: not undone (Heat would build new servers); the record keeps the stack
        # until this run commits, and a later plan sees it gone
        tx.check()
        self._delete(p.cloud, p.host, p.stack_id, p.name, progress)
        return self._record(p, None)

    def undo(self, spec: Mapping) -> None:
        """Undo one recorded step: delete a stack the run created (found by its id, or by
        its name when the run was killed before Heat answered), or update a stack back to
        the template and parameters it had."""
        from openstack import exceptions as osx

        try:
            kind, cloud, host, name = spec["kind"], spec["cloud"], spec["host"], spec["name"]
            stack_id = spec["stack_id"]
        except (KeyError, TypeError) as e:
            raise CompileError([error("E1209", f"a write-ahead step of an OpenStack stack "
                                               f"cannot be read: {e!r}")]) from None
        if kind == "create" and stack_id:  # deleting is idempotent: a stack gone is fine
            self._delete(cloud, host, stack_id, name, lambda _: None)
            return
        orch = self._conn(cloud).orchestration
        try:
            live = orch.find_stack(stack_id or name, ignore_missing=True)
        except osx.SDKException as e:
            raise _failed(host, f"looking up stack {name}", e) from None
        if live is None or live.status == "DELETE_COMPLETE":
            if kind == "create":
                return  # never created, or deleted already
            raise _failed(host, f"reverting stack {name}", RuntimeError("the stack is gone"))
        if kind == "create":
            self._delete(cloud, host, live.id, name, lambda _: None)
            return
        self._settle(orch, host, live.id, name)  # Heat refuses to update a stack mid-action
        try:
            orch.update_stack(live.id, name=name, template=spec["template"],
                              parameters=dict(spec["parameters"]))
        except Exception as e:
            raise _failed(host, f"reverting stack {name}", e) from None
        self._wait(orch, host, live.id, name, "UPDATE_COMPLETE", lambda _: None)

    def _delete(self, cloud: str | None, host: str, stack_id: str, name: str,
                progress: Progress) -> None:
        orch = self._conn(cloud).orchestration
        try:
            orch.delete_stack(stack_id, ignore_missing=True)
        except Exception as e:
            raise _failed(host, f"deleting stack {name}", e) from None
        self._wait(orch, host, stack_id, name, "DELETE_COMPLETE", progress, gone_ok=True)

    def _settle(self, orch, host: str, stack_id: str, name: str) -> None:
        """Wait until the stack's action (one a killed run started) has finished."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                stack = orch.get_stack(stack_id)
            except Exception as e:
                raise _failed(host, f"waiting for stack {name}", e) from None
            if not stack.status.endswith("IN_PROGRESS"):
                return
            if time.monotonic() >= deadline:
                raise CompileError([error(
                    "E1210", f"OpenStack host {host}: stack {name} did not settle within "
                             f"{self.timeout:g}s (still {stack.status})",
                    hint="raise --stack-timeout, or check the cloud's Heat engine")])
            time.sleep(self.poll)

    def _wait(self, orch, host: str, stack_id: str, name: str, goal: str,
              progress: Progress, gone_ok: bool = False,
              check: Callable[[], None] = lambda: None) -> None:
        """Poll the stack until ``goal``; fail on ``*_FAILED``; give up after the timeout;
        ``check`` between polls (a signal asking the run to stop)."""
        from openstack import exceptions as osx

        deadline = time.monotonic() + self.timeout
        last = None
        while True:
            try:
                stack = orch.get_stack(stack_id)
            except osx.NotFoundException:
                if gone_ok:
                    progress(f"{host}: stack {name} deleted")
                    return
                raise _failed(host, f"waiting for stack {name}",
                              RuntimeError("the stack disappeared")) from None
            except Exception as e:
                raise _failed(host, f"waiting for stack {name}", e) from None
            if stack.status != last:
                progress(f"{host}: stack {name} {stack.status}"
                         + (f" ({stack.status_reason})" if stack.status_reason else ""))
                last = stack.status
            if stack.status == goal:
                return
            if stack.status.endswith("FAILED"):
                raise CompileError([error(
                    "E1209", f"OpenStack host {host}: stack {name} is {stack.status}: "
                             f"{stack.status_reason or 'no reason given'}",
                    hint="`openstack stack event list` shows which resource failed")])
            if time.monotonic() >= deadline:
                raise CompileError([error(
                    "E1210", f"OpenStack host {host}: stack {name} did not reach {goal} "
                             f"within {self.timeout:g}s (still {stack.status})",
                    hint="raise --stack-timeout, or check the cloud's Heat engine")])
            check()
            time.sleep(self.poll)

    # ------------------------------------------------------------------ status

    async def status(self, store: StateStore) -> list[StatusRow]:
        return await asyncio.to_thread(self._status, store)

    def _status(self, store: StateStore) -> list[StatusRow]:
        rows = []
        wanted = {h.name: h for h in self._hosts()}
        recorded = store.units(TARGET, RECORD_SCHEMA)
        for name in dict.fromkeys([*wanted, *(u.name for u in recorded)]):
            rec = store.unit(TARGET, name, RECORD_SCHEMA)
            host = wanted.get(name)
            cloud = host.cloud if host else rec.data.get("cloud")
            sname = rec.data["stack_name"] if rec else stack_name(self.build.program, name)
            try:
                live = self._conn(cloud).orchestration.find_stack(sname, ignore_missing=True)
            except Exception as e:
                rows.append(StatusRow("*", name, TARGET, "unreachable",
                                      detail=_failed(name, "status", e).diagnostics[0].message))
                continue
            state = live.status if live is not None else "not deployed"
            services = [s.name for s in self.build.services if name in s.nodes] \
                if self.build else []
            for svc in ["*", *services]:
                rows.append(StatusRow(svc, name, TARGET, state,
                                      detail=(live.status_reason or "") if live else ""))
        return rows
