"""The OSM target: one network service per NSD of the build, onboarded and instantiated
through OSM's NBI, waited on, terminated.

A unit is one NSD (``<host>/nsd-<service>.yaml``): its VNF packages (one per VNFD it lists,
with the VNF's cloud-init), its NS package, and the NS instance
``mosaico-<program>-<service>-<host>`` on a VIM account — ``--vim-account``, else the
configuration's ``vim_account``, else the host's ``cloud:`` attribute. Packages are built
from the build's files at plan time (:mod:`.osm_packages`; deterministic, so their digests
are the fingerprint). ``--osm-vld VLD=NETWORK`` maps a virtual link of the NSD to an
existing VIM network (the transit link to the switch's provider network); the others OSM
creates from the NSD's IP profile.

Deploy onboards every package, instantiates the NS and follows its operation
(``ns_lcm_op_occs``) until it completes, printing OSM's detailed status as it changes;
each step journals its undo (delete the package, terminate and delete the NS), so a failure
half-way rolls the whole deployment back. A changed build replaces the unit — OSM refuses
new content for descriptors in use — by removing the old one (undo: onboard and instantiate
it again from the recorded files) and deploying the new one. Descriptors or an NS that
carry mosaico's ids but are not in the state store stop the plan (``E1222``): mosaico never
deletes what it did not onboard.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..diagnostics import CompileError, error
from .build import Build
from .osm_nbi import OsmCredentials, OsmError, OsmNbi, load_credentials
from .osm_packages import Package, descriptor_files, ns_package, vnf_package
from .plan import ADD, DELETE, MODIFY, Change, UnitPlan
from .state import StateStore, UnitUpdate
from .status import StatusRow
from .transaction import Transaction

__all__ = ["OsmTarget", "TARGET", "RECORD_SCHEMA", "ns_name", "parse_vlds"]

TARGET = "osm"
Progress = Callable[[str], None]

_VNF_PKGS = "/osm/vnfpkgm/v1/vnf_packages"
_NS_PKGS = "/osm/nsd/v1/ns_descriptors"
_NS = "/osm/nslcm/v1/ns_instances"
_NS_CONTENT = "/osm/nslcm/v1/ns_instances_content"
_OPS = "/osm/nslcm/v1/ns_lcm_op_occs"
_VIMS = "/osm/admin/v1/vim_accounts"
_DONE, _FAILED = {"COMPLETED"}, {"FAILED", "FAILED_TEMP", "PARTIALLY_COMPLETED", "ROLLED_BACK"}
# An NS in these states is not the one deployed: it is replaced (a killed run may have
# left it terminating)
_UNWELL = ("BROKEN", "failed", "TERMINATING", "TERMINATED", "NOT_INSTANTIATED")


def ns_name(program: str, service: str, host: str) -> str:
    return f"mosaico-{program}-{service}-{host}".replace("_", "-")


def parse_vlds(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("transit-s1=provider",)`` → ``{"transit-s1": "provider"}``; bad items → E1221."""
    out, diags = {}, []
    for v in values:
        name, sep, net = v.partition("=")
        if not sep or not name.strip() or not net.strip():
            diags.append(error("E1221", f"--osm-vld {v!r} is not VLD=NETWORK",
                               hint="for example --osm-vld transit-s1=provider-net"))
            continue
        out[name.strip()] = net.strip()
    if diags:
        raise CompileError(diags)
    return out


def _refused(e: OsmError) -> bool:
    """Did the NBI refuse the request (4xx), so that it did nothing?"""
    return e.status is not None and 400 <= e.status < 500


def _failed(unit: str, what: str, e: OsmError, hint: str | None = None) -> CompileError:
    return CompileError([error("E1219", f"OSM {unit}: {what} failed: {e}", hint=hint or (
        "check the NBI's address and the account (OSM_HOSTNAME, OSM_USER, OSM_PROJECT)"
        if e.status in (None, 401, 403) else None))])


# What an NS unit's record holds (the store checks it before anything reads it).
RECORD_SCHEMA = {
    "type": "object",
    "required": ["ns_name", "nsd", "vim_account", "vim_account_id", "files", "vnf_packages"],
    "properties": {
        "ns_name": {"type": "string", "minLength": 1},
        "nsd": {"type": "string", "minLength": 1},
        "vim_account": {"type": "string"},
        "vim_account_id": {"type": "string"},
        "vlds": {"type": "object", "additionalProperties": {"type": "string"}},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
        "vnf_packages": {"type": "object", "additionalProperties": {"type": "string"}},
        "nsd_uuid": {"type": ["string", "null"]},
        "nsr_id": {"type": ["string", "null"]},
    },
}


@dataclass(frozen=True)
class _Wanted:
    host: str
    service: str
    cloud: str | None
    files: dict[str, str]  # host-relative path -> text: the NSD, its VNFDs, cloud-init


@dataclass(frozen=True)
class _Payload:
    unit: str
    action: str  # create | replace | delete | none
    ns_name: str
    files: Mapping[str, str] | None = None
    vim_account: str | None = None
    vim_account_id: str | None = None
    vlds: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str | None = None
    old: Mapping | None = None  # the unit's record: what replace and delete remove


def _packages(files: Mapping[str, str]) -> tuple[list[Package], Package]:
    nsd_path = next(p for p in files if p.startswith("nsd-"))
    vnfs = []
    for path, text in sorted(files.items()):
        if path.startswith("vnfd-"):
            vdus = yaml.safe_load(text)["vnfd"].get("vdu", [])
            inits = {v["cloud-init-file"]: files[f"cloud_init/{v['cloud-init-file']}"]
                     for v in vdus if v.get("cloud-init-file")}
            vnfs.append(vnf_package(text, inits))
    return vnfs, ns_package(files[nsd_path])


def _fingerprint(files: Mapping[str, str], vim: str, vlds: Mapping[str, str]) -> str:
    vnfs, ns = _packages(files)
    return hashlib.sha256(json.dumps({
        "packages": sorted(p.sha256 for p in [*vnfs, ns]), "vim_account": vim,
        "vlds": dict(sorted(vlds.items()))}, sort_keys=True).encode()).hexdigest()


class OsmTarget:
    """Deploys the build's NSDs as OSM network services."""

    target = TARGET

    def __init__(self, build: Build | None, *, timeout: float = 1800.0, poll: float = 5.0,
                 vim_account: str | None = None, vlds: Mapping[str, str] | None = None,
                 config: Path | str | None = None,
                 credentials: OsmCredentials | None = None) -> None:
        self.build = build
        self.timeout, self.poll = timeout, poll
        self.vim_account = vim_account
        self.vlds = dict(vlds or {})
        self._config = config
        self._credentials = credentials
        self._nbi: OsmNbi | None = None

    @property
    def nbi(self) -> OsmNbi:
        if self._nbi is None:
            creds = self._credentials or load_credentials(self._config)
            self._credentials = creds
            self._nbi = OsmNbi(creds)
        return self._nbi

    def _wanted(self) -> dict[str, _Wanted]:
        out: dict[str, _Wanted] = {}
        if self.build is None:
            return out
        for host in self.build.hosts:
            d = host.directory
            files = {p.relative_to(d).as_posix(): p.read_text(encoding="utf-8")
                     for p in sorted(d.rglob("*")) if p.is_file()}
            for path in sorted(p for p in files if p.startswith("nsd-") and
                               p.endswith(".yaml")):
                service = path.removeprefix("nsd-").removesuffix(".yaml")
                try:
                    needed = descriptor_files(files[path], files)
                except KeyError as e:
                    raise CompileError([error(
                        "E1201", f"{d / path} lists a VNF whose file {e} is missing",
                        hint="recompile the build")]) from None
                out[f"{host.name}/{service}"] = _Wanted(host.name, service, host.cloud,
                                                        {path: files[path], **needed})
        return out

    # ------------------------------------------------------------------ plan

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]:
        return await asyncio.to_thread(self._plan, store, destroy)

    def _plan(self, store: StateStore, destroy: bool) -> list[UnitPlan]:
        wanted = {} if destroy else self._wanted()
        recorded = store.units(TARGET, RECORD_SCHEMA)
        names = list(dict.fromkeys([*wanted, *(u.name for u in recorded)]))
        self._check_vlds(wanted)
        vims = self._vim_accounts(wanted) if wanted else {}
        return [self._plan_one(n, wanted.get(n), store, vims) for n in names]

    def _check_vlds(self, wanted: Mapping[str, _Wanted]) -> None:
        if not wanted or not self.vlds:
            return
        declared = set().union(*(_vld_ids(w.files) for w in wanted.values()))
        unknown = sorted(set(self.vlds) - declared)
        if unknown:
            raise CompileError([error(
                "E1221", f"--osm-vld {n}: no NSD of this build has that virtual link",
                hint="virtual links: " + ", ".join(sorted(declared))) for n in unknown])

    def _vim_accounts(self, wanted: Mapping[str, _Wanted]) -> dict[str, tuple[str, str]]:
        """``{unit: (account name, id)}``; an account OSM does not know stops the plan."""
        try:
            accounts = self.nbi.get(_VIMS) or []
        except OsmError as e:
            raise _failed("NBI", "listing VIM accounts", e) from None
        by_key = {a.get("name"): a for a in accounts} | {a.get("_id"): a for a in accounts}
        out, diags = {}, []
        for unit, w in wanted.items():
            name = self.vim_account or self.nbi.credentials.vim_account or w.cloud
            account = by_key.get(name) if name else None
            if account is None:
                diags.append(error(
                    "E1221", f"OSM {unit}: " + (f"no VIM account {name!r} in OSM" if name else
                                                 "no VIM account given"),
                    hint="pass --vim-account NAME (known: " + (", ".join(sorted(
                        str(a.get("name")) for a in accounts)) or "none") + ")"))
                continue
            out[unit] = (str(account.get("name")), str(account["_id"]))
        if diags:
            raise CompileError(diags)
        return out

    def _find_ns(self, name: str) -> list[dict]:
        return self.nbi.find(_NS_CONTENT, name=name)

    def _live(self, unit: str, rec_data: Mapping | None, name: str) -> dict | None:
        """The NS now: by the recorded id, else by name (a rollback that deployed a removed
        NS again gives it a new id). An NS of that name without a record is not ours."""
        try:
            if rec_data and rec_data.get("nsr_id"):
                try:
                    return self.nbi.get(f"{_NS_CONTENT}/{rec_data['nsr_id']}")
                except OsmError as e:
                    if e.status != 404:
                        raise
            found = self._find_ns(name)
        except OsmError as e:
            raise _failed(unit, f"looking up NS {name}", e) from None
        if found and rec_data is None:
            raise CompileError([error(
                "E1222", f"OSM {unit}: an NS named {name} exists ({found[0].get('_id')}) but "
                         "mosaico did not deploy it (it is not in the state store)",
                hint="delete it in OSM (osm ns-delete) or use another state store")])
        return found[0] if found else None

    def _foreign_packages(self, unit: str, files: Mapping[str, str]) -> None:
        """Descriptors with this build's ids, for a unit the store has no record of: they
        are not mosaico's, and onboarding would collide with them. Refuse before anything
        changes."""
        vnfs, ns = _packages(files)
        for pkg, path in [*((p, _VNF_PKGS) for p in vnfs), (ns, _NS_PKGS)]:
            try:
                found = self.nbi.find(path, id=pkg.descriptor_id)
            except OsmError as e:
                raise _failed(unit, f"looking up {pkg.kind} package {pkg.descriptor_id}",
                              e) from None
            if found:
                raise CompileError([error(
                    "E1222", f"OSM {unit}: a {pkg.kind.upper()} descriptor with id "
                             f"{pkg.descriptor_id} is onboarded already "
                             f"({found[0].get('_id')}) and mosaico did not onboard it",
                    hint="delete it in OSM, or rename the program or service")])

    def _plan_one(self, unit: str, w: _Wanted | None, store: StateStore,
                  vims: Mapping[str, tuple[str, str]]) -> UnitPlan:
        rec = store.unit(TARGET, unit, RECORD_SCHEMA)
        old = dict(rec.data) if rec else None
        name = (old or {}).get("ns_name") or ns_name(self.build.program, w.service, w.host)
        live = self._live(unit, old, name)
        drift: list[Change] = []
        state = _ns_state(live)
        if old is not None and live is None:
            drift.append(Change(DELETE, f"NS {name}", drift="deleted out of band"))
        elif live is not None and state in _UNWELL:
            drift.append(Change(MODIFY, f"NS {name}",
                                drift=f"{state}: {live.get('detailed-status') or ''}".strip()))
        if w is None:  # destroy, or the NSD left the build
            if old is None:
                return UnitPlan(TARGET, unit, (), tuple(drift),
                                payload=_Payload(unit, "none", name))
            return UnitPlan(TARGET, unit, (Change(
                DELETE, f"NS {name} ({old.get('nsr_id')}) and its "
                        f"{len(old.get('vnf_packages', {})) + 1} packages"),), tuple(drift),
                payload=_Payload(unit, "delete", name, old=old))
        vim, vim_id = vims[unit]
        vlds = {k: v for k, v in self.vlds.items() if k in _vld_ids(w.files)}
        digest = _fingerprint(w.files, vim, vlds)
        if old is None:
            self._foreign_packages(unit, w.files)
        n = sum(1 for p in w.files if p.startswith("vnfd-"))
        payload = _Payload(unit, "create", name, w.files, vim, vim_id, vlds, digest, old)
        if old is None:
            change = Change(ADD, f"NS {name} ({n} VNF package(s) and an NS package) on VIM "
                                 f"account {vim}")
        elif live is None or rec.fingerprint != digest or state in _UNWELL:
            change = Change(MODIFY, f"NS {name} ({n} VNF package(s) and an NS package) on VIM "
                                    f"account {vim}: removed and deployed again",
                            before=f"{state or 'gone'}, packages {rec.fingerprint[:12]}")
            payload = _Payload(unit, "replace", name, w.files, vim, vim_id, vlds, digest, old)
        else:  # unchanged; the record follows the NS if a rollback gave it a new id
            return UnitPlan(TARGET, unit, (), tuple(drift), payload=_Payload(
                unit, "none", name, fingerprint=rec.fingerprint,
                old=old | {"nsr_id": live.get("_id", old.get("nsr_id"))}))
        return UnitPlan(TARGET, unit, (change,), tuple(drift), payload=payload)

    # ------------------------------------------------------------------ apply

    async def apply(self, plan: UnitPlan, tx: Transaction,
                    progress: Progress = lambda _: None) -> UnitUpdate:
        return await asyncio.to_thread(self._apply, plan, tx, progress)

    def _apply(self, plan: UnitPlan, tx: Transaction, progress: Progress) -> UnitUpdate:
        p: _Payload = plan.payload
        label = f"{TARGET} {p.unit}"
        if p.action == "none":
            return UnitUpdate(TARGET, p.unit, p.fingerprint, p.old) if p.old else \
                UnitUpdate(TARGET, p.unit, None)
        if p.action in ("replace", "delete"):
            old = p.old
            # Announced first: if the removal stops half-way, the rollback still brings
            # the old NS back (and does nothing if it is still whole).
            with tx.step(TARGET, label, f"deploy NS {old['ns_name']} again from its "
                                        "recorded packages",
                         {"kind": "restore", "unit": p.unit, "old": dict(old)}):
                self._remove(p.unit, old, progress, check=tx.check)
            if p.action == "delete":
                return UnitUpdate(TARGET, p.unit, None)
        data = self._create(p.unit, p.files, p.ns_name, p.vim_account, p.vim_account_id,
                            p.vlds, progress, tx)
        return UnitUpdate(TARGET, p.unit, p.fingerprint, data)

    def undo(self, spec: Mapping) -> None:
        """Undo one recorded step: delete a package the run onboarded (by its id, or by its
        descriptor id when the run was killed before OSM answered), terminate an NS it
        instantiated (by id, else by name), or deploy a removed NS again from its record."""
        try:
            kind, unit = spec["kind"], spec["unit"]
            if kind == "restore":
                self._restore(unit, spec["old"], lambda _: None)
            elif kind == "package":
                if spec["uuid"]:
                    self._delete(unit, f"{spec['path']}/{spec['uuid']}", spec["what"])
                    return
                try:
                    found = self.nbi.find(spec["path"], id=spec["descriptor"])
                except OsmError as e:
                    raise _failed(unit, f"looking up {spec['what']}", e) from None
                for f in found:
                    self._delete(unit, f"{spec['path']}/{f['_id']}", spec["what"])
            elif kind == "ns":
                if spec["nsr_id"]:
                    ids = [spec["nsr_id"]]
                else:
                    try:
                        ids = [n["_id"] for n in self._find_ns(spec["name"])]
                    except OsmError as e:
                        raise _failed(unit, f"looking up NS {spec['name']}", e) from None
                for nsr_id in ids:
                    self._terminate(unit, nsr_id, spec["name"], lambda _: None)
            else:
                raise KeyError(kind)
        except (KeyError, TypeError) as e:
            raise CompileError([error("E1219", f"a write-ahead step of OSM cannot be read: "
                                               f"{e!r}")]) from None

    def _restore(self, unit: str, old: Mapping, progress: Progress) -> None:
        live = self._find_ns(old["ns_name"])
        if live and _ns_state(live[0]) == "READY" and \
                self._packages_present(old):
            return
        self._remove(unit, old, progress)
        self._create(unit, old["files"], old["ns_name"], old["vim_account"],
                     old["vim_account_id"], old.get("vlds", {}), progress, None)

    def _packages_present(self, rec: Mapping) -> bool:
        return bool(self.nbi.find(_NS_PKGS, id=rec["nsd"])) and all(
            self.nbi.find(_VNF_PKGS, id=v) for v in rec.get("vnf_packages", {}))

    def _create(self, unit: str, files: Mapping[str, str], name: str, vim: str, vim_id: str,
                vlds: Mapping[str, str], progress: Progress,
                tx: Transaction | None) -> dict:
        """Onboard, instantiate, wait; announce each step with its undo in ``tx`` (None: a
        rollback's own redeploy, which removes what it did if it fails)."""
        label = f"{TARGET} {unit}"
        done: list[Mapping] = []  # without tx: the undos of the steps begun

        @contextmanager
        def announce(what: str, spec: dict):
            if tx is not None:
                with tx.step(TARGET, label, what, spec) as step:
                    yield step
                return
            holder = _Held(spec)
            done.append(holder)
            yield holder

        check = tx.check if tx is not None else (lambda: None)
        vnfs, ns = _packages(files)
        data = {"ns_name": name, "nsd": ns.descriptor_id, "vim_account": vim,
                "vim_account_id": vim_id, "vlds": dict(vlds), "files": dict(files),
                "vnf_packages": {}, "nsd_uuid": None, "nsr_id": None}
        def onboard(path: str, pkg: Package) -> str:
            what = f"{pkg.kind.upper()} package {pkg.descriptor_id}"
            spec = {"kind": "package", "unit": unit, "path": path, "what": what,
                    "descriptor": pkg.descriptor_id, "uuid": None}
            with announce(f"delete {what}", spec) as step:
                uuid = self._upload(unit, f"{path}_content", pkg, step)
                step.amend({**spec, "uuid": uuid}, f"delete {what} ({uuid})")
            progress(f"{unit}: {what} onboarded ({uuid})")
            return uuid

        try:
            for pkg in vnfs:
                data["vnf_packages"][pkg.descriptor_id] = onboard(_VNF_PKGS, pkg)
            uuid = data["nsd_uuid"] = onboard(_NS_PKGS, ns)
            body = {"nsName": name, "nsdId": uuid, "vimAccountId": vim_id,
                    "nsDescription": f"mosaico: {ns.descriptor_id}"}
            if vlds:
                body["vld"] = [{"name": k, "vim-network-name": v}
                               for k, v in sorted(vlds.items())]
            spec = {"kind": "ns", "unit": unit, "name": name, "nsr_id": None}
            with announce(f"terminate and delete NS {name}", spec) as step:
                try:
                    answer = self.nbi.post(_NS_CONTENT, body) or {}
                except OsmError as e:
                    if _refused(e):
                        step.discard()  # nothing was instantiated
                    raise _failed(unit, f"instantiating NS {name}", e) from None
                nsr_id, op_id = answer.get("id"), answer.get("nslcmop_id")
                if not nsr_id:
                    raise CompileError([error("E1219", f"OSM {unit}: instantiating NS "
                                                       f"{name}: the NBI answered no NS id")])
                step.amend({**spec, "nsr_id": nsr_id},
                           f"terminate and delete NS {name} ({nsr_id})")
                data["nsr_id"] = nsr_id
                progress(f"{unit}: NS {name} instantiating ({nsr_id}) on VIM account {vim}")
                self._wait_op(unit, op_id, f"instantiation of NS {name}", progress,
                              check=check)
        except BaseException:
            for held in reversed([h for h in done if not h.discarded]):  # leave nothing
                try:
                    self.undo(held.spec)
                except Exception:  # the error that stopped the redeploy is the one to report
                    pass
            raise
        return data

    def _upload(self, unit: str, path: str, pkg: Package, step) -> str:
        try:
            answer = self.nbi.upload(path, pkg.filename, pkg.data, pkg.md5) or {}
        except OsmError as e:
            if _refused(e):
                step.discard()  # nothing was onboarded: its undo must not look for it
            raise _failed(unit, f"onboarding {pkg.kind.upper()} package {pkg.descriptor_id}",
                          e, hint="OSM's message says which rule of its model or NBI the "
                                  "descriptor breaks" if e.status == 422 else None) from None
        if not answer.get("id"):
            raise CompileError([error("E1219", f"OSM {unit}: onboarding {pkg.descriptor_id}: "
                                               "the NBI answered no id")])
        return str(answer["id"])

    def _delete(self, unit: str, path: str, what: str) -> None:
        try:
            self.nbi.delete(path)
        except OsmError as e:
            if e.status != 404:
                raise _failed(unit, f"deleting {what}", e) from None

    def _remove(self, unit: str, rec: Mapping, progress: Progress,
                check: Callable[[], None] = lambda: None) -> None:
        """Terminate the unit's NS and delete its packages — found by the recorded NS name
        and descriptor ids, which the store says are mosaico's (ids change when a rollback
        deploys them again); what is gone already is skipped."""
        try:
            nss = self._find_ns(rec["ns_name"])
            nsds = self.nbi.find(_NS_PKGS, id=rec["nsd"])
            vnfs = [(v, f) for v in rec.get("vnf_packages", {})
                    for f in self.nbi.find(_VNF_PKGS, id=v)]
        except OsmError as e:
            raise _failed(unit, f"looking up NS {rec['ns_name']}", e) from None
        for ns in nss:
            self._terminate(unit, ns["_id"], rec["ns_name"], progress, check)
        for nsd in nsds:
            self._delete(unit, f"{_NS_PKGS}/{nsd['_id']}", f"NS package {rec['nsd']}")
        for vnfd, found in vnfs:
            self._delete(unit, f"{_VNF_PKGS}/{found['_id']}", f"VNF package {vnfd}")
        progress(f"{unit}: NS {rec['ns_name']} and its packages removed")

    def _terminate(self, unit: str, nsr_id: str, name: str, progress: Progress,
                   check: Callable[[], None] = lambda: None) -> None:
        """Terminate and delete the NS (OSM terminates before it deletes), and wait until
        the record is gone."""
        try:
            answer = self.nbi.delete(f"{_NS_CONTENT}/{nsr_id}")
        except OsmError as e:
            if e.status == 404:
                return
            raise _failed(unit, f"terminating NS {name}", e) from None
        op_id = (answer or {}).get("_id") or (answer or {}).get("id")
        if op_id:
            self._wait_op(unit, op_id, f"termination of NS {name}", progress, check)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.nbi.get(f"{_NS}/{nsr_id}")
            except OsmError as e:
                if e.status == 404:
                    progress(f"{unit}: NS {name} deleted")
                    return
                raise _failed(unit, f"waiting for NS {name} to be deleted", e) from None
            if time.monotonic() >= deadline:
                raise CompileError([error(
                    "E1220", f"OSM {unit}: NS {name} was not deleted within "
                             f"{self.timeout:g}s", hint="check OSM's LCM (osm ns-op-list)")])
            check()
            time.sleep(self.poll)

    def _wait_op(self, unit: str, op_id: str | None, what: str, progress: Progress,
                 check: Callable[[], None] = lambda: None) -> None:
        if not op_id:
            return
        deadline = time.monotonic() + self.timeout
        last = None
        while True:
            try:
                op = self.nbi.get(f"{_OPS}/{op_id}") or {}
            except OsmError as e:
                raise _failed(unit, f"following the {what}", e) from None
            state = op.get("operationState")
            status = op.get("detailed-status") or ""
            if (state, status) != last:
                progress(f"{unit}: {what}: {state}" + (f" ({status})" if status else ""))
                last = (state, status)
            if state in _DONE:
                return
            if state in _FAILED:
                raise CompileError([error(
                    "E1219", f"OSM {unit}: {what} is {state}: "
                             f"{op.get('errorMessage') or status or 'no reason given'}",
                    hint="`osm ns-op-show " + op_id + "` shows the step that failed")])
            if time.monotonic() >= deadline:
                raise CompileError([error(
                    "E1220", f"OSM {unit}: {what} did not complete within "
                             f"{self.timeout:g}s (still {state})",
                    hint="raise --stack-timeout, or check OSM's LCM and the VIM")])
            check()
            time.sleep(self.poll)

    # ------------------------------------------------------------------ status

    async def status(self, store: StateStore) -> list[StatusRow]:
        return await asyncio.to_thread(self._status, store)

    def _status(self, store: StateStore) -> list[StatusRow]:
        rows = []
        wanted = self._wanted()
        recorded = store.units(TARGET, RECORD_SCHEMA)
        for unit in dict.fromkeys([*wanted, *(u.name for u in recorded)]):
            host, _, service = unit.partition("/")
            rec = store.unit(TARGET, unit, RECORD_SCHEMA)
            if rec is None:
                rows.append(StatusRow(service, host, TARGET, "not deployed"))
                continue
            try:
                live = self._live(unit, rec.data, rec.data["ns_name"])
            except CompileError as e:
                rows.append(StatusRow(service, host, TARGET, "unreachable",
                                      detail=e.diagnostics[0].message))
                continue
            if live is None:
                rows.append(StatusRow(service, host, TARGET, "not deployed",
                                      detail="deleted out of band"))
                continue
            rows.append(StatusRow(service, host, TARGET, _ns_state(live) or "unknown",
                                  detail=str(live.get("detailed-status") or "")))
        return rows


class _Held:
    """A step of a rollback's own redeploy (no transaction): its undo, kept in memory."""

    def __init__(self, spec: Mapping) -> None:
        self.spec = dict(spec)
        self.discarded = False

    def amend(self, spec: Mapping, what: str | None = None) -> None:
        self.spec = dict(spec)

    def discard(self) -> None:
        self.discarded = True


def _vld_ids(files: Mapping[str, str]) -> set[str]:
    nsd = yaml.safe_load(next(t for p, t in files.items() if p.startswith("nsd-")))
    return {v["id"] for v in nsd["nsd"]["nsd"][0].get("virtual-link-desc", [])}


def _ns_state(live: Mapping | None) -> str | None:
    """OSM's word for the NS: ``nsState`` (READY, BUILDING, BROKEN, ...), or ``failed``
    when its operational status says so."""
    if live is None:
        return None
    if live.get("operational-status") == "failed":
        return "failed"
    return live.get("nsState") or live.get("operational-status")
