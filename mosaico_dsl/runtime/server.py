"""The reference P4Runtime target: a real gRPC server that behaves like a conforming switch.

It has no data plane. It loads a P4Info, arbitrates controllers by election id, validates
every Write the way the P4Runtime specification (v1.4) and its reference implementation
(PI, behind BMv2's ``simple_switch_grpc``) do, keeps table entries, counters, meters,
registers and multicast groups, and answers Reads. Tests and ``mosaico plan``/``deploy``
run against it on loopback; its answers are the ones a real switch would give:

==================================================  ==================================
request                                             status
==================================================  ==================================
wrong device id                                     NOT_FOUND (whole RPC)
Write / SetForwardingPipelineConfig by a non-primary PERMISSION_DENIED (whole RPC)
Write before any pipeline is set                    FAILED_PRECONDITION (whole RPC)
any update failing in a batch                       UNKNOWN, one ``p4.v1.Error`` per
                                                    update in ``grpc-status-details-bin``
unknown table/action/counter/register/field id      INVALID_ARGUMENT (as PI: "invalid P4 id")
value wider than its bitwidth                       OUT_OF_RANGE
wrong match kind, missing exact field, bad prefix,  INVALID_ARGUMENT
don't-care not omitted, priority misuse,
missing/extra action parameter
INSERT of an existing entry                         ALREADY_EXISTS
MODIFY/DELETE of a missing entry                    NOT_FOUND
table full                                          RESOURCE_EXHAUSTED
write to a const table or const default action      PERMISSION_DENIED
action profiles, digests, value sets                UNIMPLEMENTED
==================================================  ==================================
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import any_pb2

from ..p4proto import p4d, p4i, p4r, p4r_grpc, rpc_status
from .entities import canonical, canonical_bytes, to_int
from .roles import NO_ROLES, Role, RoleConfig
from .schema import MatchKind, Schema, TableInfo

__all__ = ["ReferenceTarget", "MultiDeviceTarget", "Programs", "ServerHandle", "start_server",
           "serve", "TlsServerConfig"]

API_VERSION = "1.4.0"
_C = grpc.StatusCode
_U = p4r.Update


class _Reject(Exception):
    """One update (or the whole request) is refused with ``code``."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _u128(v: p4r.Uint128) -> int:
    return (v.high << 64) | v.low


def _check_bytes(value: bytes, bitwidth: int, what: str) -> int:
    """P4Runtime spec, "Bytestrings": any length is accepted if the value fits; an empty string or a
    value wider than the bitwidth is OUT_OF_RANGE. (PI, behind BMv2, answers INVALID_ARGUMENT to the
    latter and accepts the former: tests/runtime/test_runtime_conformance.py.)"""
    if not value:
        raise _Reject(_C.OUT_OF_RANGE, f"{what}: empty byte string")
    n = to_int(value)
    if bitwidth and n >> bitwidth:
        raise _Reject(_C.OUT_OF_RANGE, f"{what}: value {n:#x} does not fit in {bitwidth} bits")
    return n


def _once_each(items: Iterable, id_attr: str, known: dict, seen: set[int], unknown: str,
               what: str) -> Iterator[tuple]:
    """Pair each item with its schema entry by id, refusing an id the schema does not know
    or one given twice (match fields and action parameters are sets keyed by id)."""
    for item in items:
        i = getattr(item, id_attr)
        info = known.get(i)
        if info is None:
            raise _Reject(_C.INVALID_ARGUMENT, f"{unknown} {i}")
        if i in seen:
            raise _Reject(_C.INVALID_ARGUMENT, f"{what} {info.name} given twice")
        seen.add(i)
        yield item, info


def _restorer(store: dict, key, old) -> Callable[[], None]:
    """The undo of a write to ``store[key]``: put ``old`` back, or remove the key if it
    was absent (``old`` is None)."""
    def undo() -> None:
        if old is None:
            store.pop(key, None)
        else:
            store[key] = old
    return undo


_MATCH_ONEOF = {MatchKind.EXACT: "exact", MatchKind.LPM: "lpm", MatchKind.TERNARY: "ternary",
                MatchKind.RANGE: "range", MatchKind.OPTIONAL: "optional"}


@dataclass(frozen=True, eq=False)
class _Program:
    """A parsed P4Info and its device config. Never changed once made, so every device
    running the same program shares one (a thousand devices, one parse)."""

    schema: Schema
    device_config: bytes


class Programs:
    """Programs by content: devices given the same P4Info and device config share one
    :class:`_Program`. Held weakly: a program no device runs any more is dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_digest: weakref.WeakValueDictionary[bytes, _Program] = \
            weakref.WeakValueDictionary()

    def get(self, p4info: p4i.P4Info, device_config: bytes = b"") -> _Program:
        """The shared program (``SchemaError``, a ``ValueError``, for a bad P4Info)."""
        digest = hashlib.sha256(p4info.SerializeToString(deterministic=True) + b"\0" +
                                device_config).digest()
        with self._lock:
            program = self._by_digest.get(digest)
            if program is None:
                own = p4i.P4Info()
                own.CopyFrom(p4info)  # the caller's message may change after this
                program = _Program(Schema(own), device_config)
                self._by_digest[digest] = program
            return program

    def __len__(self) -> int:
        return len(self._by_digest)


@dataclass(frozen=True)
class _Pipeline:
    """A device's committed (or saved) pipeline: a shared program and the device's cookie."""

    program: _Program
    cookie: int | None = None  # None: the request set no cookie

    @property
    def schema(self) -> Schema:
        return self.program.schema

    @property
    def config(self) -> p4r.ForwardingPipelineConfig:
        """The pipeline as ``SetForwardingPipelineConfig`` gave it (a fresh copy)."""
        cfg = p4r.ForwardingPipelineConfig(p4_device_config=self.program.device_config)
        cfg.p4info.CopyFrom(self.program.schema.p4info)
        if self.cookie is not None:
            cfg.cookie.cookie = self.cookie
        return cfg


@dataclass
class _State:
    """Forwarding state of one pipeline; replaced whole by a new pipeline."""

    entries: dict[int, dict[tuple, p4r.TableEntry]] = field(default_factory=dict)
    defaults: dict[int, p4r.TableEntry] = field(default_factory=dict)
    direct_counters: dict[tuple[int, tuple], p4r.CounterData] = field(default_factory=dict)
    counters: dict[tuple[int, int], p4r.CounterData] = field(default_factory=dict)
    meters: dict[tuple[int, int], p4r.MeterConfig] = field(default_factory=dict)
    registers: dict[tuple[int, int], p4d.P4Data] = field(default_factory=dict)
    multicast: dict[int, p4r.MulticastGroupEntry] = field(default_factory=dict)
    clones: dict[int, p4r.CloneSessionEntry] = field(default_factory=dict)


@dataclass
class _Controller:
    election_id: int
    queue: queue.SimpleQueue


# Open StreamChannels a target serves at once (PI's limit too); more are refused with
# RESOURCE_EXHAUSTED (spec, "Rules for Handling MasterArbitrationUpdate Messages") rather than
# queued behind them.
MAX_STREAMS = 16
# A stream that has not arbitrated this long is closed: an idle stream holds a server thread.
ARBITRATION_TIMEOUT = 10.0


class ReferenceTarget(p4r_grpc.P4RuntimeServicer):
    """One P4Runtime device. One lock serialises every RPC: each sees a consistent state.

    It is served by grpcio's thread-pool server (not ``grpc.aio``), so it can run in a
    thread of a process whose asyncio loops belong to clients, as tests and benchmarks do.
    ``roles`` is the target's role configuration (:mod:`.roles`): without one, only the
    default role exists.
    """

    def __init__(self, device_id: int = 1, p4info: p4i.P4Info | None = None,
                 device_config: bytes = b"", *, roles: RoleConfig = NO_ROLES,
                 max_streams: int = MAX_STREAMS,
                 arbitration_timeout: float = ARBITRATION_TIMEOUT,
                 programs: Programs | None = None) -> None:
        self.device_id = device_id
        self.programs = programs if programs is not None else Programs()
        self.roles = roles
        self.max_streams = max_streams
        self.arbitration_timeout = arbitration_timeout
        self.streams = 0  # StreamChannels open now
        self.pipeline: _Pipeline | None = None
        self.saved: _Pipeline | None = None
        self.state = _State()
        self.controllers: dict[str, list[_Controller]] = {}
        self.writes = 0  # Write RPCs served (tests and benchmarks read them)
        self.updates = 0  # updates applied
        self.pipelines = 0  # pipelines committed
        self.lock = threading.RLock()
        if p4info is not None:
            self.pipeline = _Pipeline(self.programs.get(p4info, device_config))

    # ------------------------------------------------------------------ arbitration

    def _primary(self, role: str) -> _Controller | None:
        ctrls = self.controllers.get(role, [])
        return max(ctrls, key=lambda c: c.election_id) if ctrls else None

    def _arbitration_reply(self, role: str, to: _Controller) -> p4r.StreamMessageResponse:
        primary = self._primary(role)
        msg = p4r.StreamMessageResponse()
        arb = msg.arbitration
        arb.device_id = self.device_id
        if role:
            arb.role.name = role
        if primary is not None:
            arb.election_id.high = primary.election_id >> 64
            arb.election_id.low = primary.election_id & (2**64 - 1)
        if primary is to:
            arb.status.code = _C.OK.value[0]
            arb.status.message = "is primary"
        else:
            arb.status.code = _C.ALREADY_EXISTS.value[0]
            arb.status.message = "is not primary"
        return msg

    def _notify(self, role: str) -> None:
        for c in self.controllers.get(role, []):
            c.queue.put(self._arbitration_reply(role, c))

    def StreamChannel(self, request_iterator: Iterator[p4r.StreamMessageRequest],
                      context: grpc.ServicerContext):
        with self.lock:
            full = self.streams >= self.max_streams
            if not full:
                self.streams += 1
        if full:
            _refuse(request_iterator, context,
                    f"too many open streams ({self.max_streams}); close one first")
        me: _Controller | None = None
        role = ""
        out: queue.SimpleQueue = queue.SimpleQueue()
        arbitrated = threading.Event()
        context.add_callback(lambda: out.put(None))  # the RPC ended: stop waiting

        def pump() -> None:
            nonlocal me, role
            try:
                for req in request_iterator:
                    if req.WhichOneof("update") != "arbitration":
                        continue  # packet-out and digest acks: no data plane here
                    with self.lock:
                        reject = self._arbitrate(req.arbitration, me, role)
                        if isinstance(reject, _Reject):
                            out.put(reject)
                            return
                        role = req.arbitration.role.name
                        if me is None:
                            me = _Controller(_u128(req.arbitration.election_id), out)
                            self.controllers.setdefault(role, []).append(me)
                        else:
                            me.election_id = _u128(req.arbitration.election_id)
                        arbitrated.set()
                        self._notify(role)
            except grpc.RpcError:
                pass
            out.put(None)

        threading.Thread(target=pump, daemon=True, name="p4rt-stream").start()
        try:
            deadline = time.monotonic() + self.arbitration_timeout
            while True:
                try:
                    item = out.get(timeout=None if arbitrated.is_set() else
                                   max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    if arbitrated.is_set():
                        continue
                    context.abort(_C.FAILED_PRECONDITION,
                                  f"no MasterArbitrationUpdate within "
                                  f"{self.arbitration_timeout:g}s of opening the stream")
                if item is None:
                    return
                if isinstance(item, _Reject):
                    context.abort(item.code, item.message)
                yield item
        finally:
            with self.lock:
                self.streams -= 1
                if me is not None:
                    self.controllers[role].remove(me)
                    self._notify(role)

    def _arbitrate(self, arb, me: _Controller | None, role: str) -> _Reject | None:
        if me is not None and arb.device_id != self.device_id:
            # PI: a stream is bound to the device of its first arbitration
            return _Reject(_C.FAILED_PRECONDITION, f"this stream arbitrates for device "
                                                   f"{self.device_id}, not {arb.device_id}")
        if arb.device_id != self.device_id:
            return _Reject(_C.NOT_FOUND, f"device id {arb.device_id} is not {self.device_id}")
        if me is not None and arb.role.name != role:
            return _Reject(_C.FAILED_PRECONDITION, "a stream cannot change its role")
        defined = self.roles.get(arb.role.name)
        if defined is None:
            return _Reject(_C.PERMISSION_DENIED,
                           f"role {arb.role.name!r} is not defined by this target's role "
                           f"configuration")
        if arb.role.HasField("config") and not self.roles.matches(defined, arb.role.config):
            return _Reject(_C.INVALID_ARGUMENT,
                           f"role.config does not match the target's configuration of role "
                           f"{arb.role.name!r}")
        election = _u128(arb.election_id)
        others = [c for c in self.controllers.get(arb.role.name, []) if c is not me]
        if any(c.election_id == election for c in others):
            return _Reject(_C.INVALID_ARGUMENT,
                           f"election id {election} is already in use by another controller")
        return None

    def _check_primary(self, device_id: int, election: p4r.Uint128, role: str) -> Role:
        """The role of the primary controller sending this request, or a rejection."""
        if device_id != self.device_id:
            raise _Reject(_C.NOT_FOUND, f"device id {device_id} is not {self.device_id}")
        primary = self._primary(role)
        if primary is None or primary.election_id != _u128(election):
            raise _Reject(_C.PERMISSION_DENIED,
                          "not the primary controller: open a StreamChannel and win the "
                          "arbitration with this election id first")
        return self.roles.get(role)

    def _authorise(self, role: Role, entity: p4r.Entity) -> None:
        """Refuse an update outside ``role``'s share of the pipeline (spec, "Role Config")."""
        if role.full:
            return
        which = entity.WhichOneof("entity")
        if which == "packet_replication_engine_entry":
            if not role.packet_replication:
                raise _Reject(_C.PERMISSION_DENIED, f"role {role.name!r} may not write the "
                                                    f"packet replication engine")
            return
        msg = getattr(entity, which) if which else None
        if which in ("direct_counter_entry", "direct_meter_entry"):
            obj_id = msg.table_entry.table_id
        elif which == "table_entry":
            obj_id = msg.table_id
        elif which in ("counter_entry", "meter_entry", "register_entry"):
            obj_id = getattr(msg, which.replace("_entry", "_id"))
        else:
            return  # refused as unsupported by _apply
        name = self.pipeline.schema.name_of(obj_id)
        if not role.may_write(name):
            raise _Reject(_C.PERMISSION_DENIED, f"role {role.name!r} may not write {name}")

    # ------------------------------------------------------------------ pipeline

    def SetForwardingPipelineConfig(self, request, context):
        with self.lock:
            return self._set_pipeline(request, context)

    def _set_pipeline(self, request, context):
        A = p4r.SetForwardingPipelineConfigRequest
        try:
            role = self._check_primary(request.device_id, request.election_id, request.role)
            if not role.pipeline:
                raise _Reject(_C.PERMISSION_DENIED,
                              f"role {role.name!r} may not set the forwarding pipeline")
            action = request.action
            if action == A.UNSPECIFIED:
                raise _Reject(_C.INVALID_ARGUMENT, "pipeline action is unspecified")
            if action == A.RECONCILE_AND_COMMIT:
                raise _Reject(_C.UNIMPLEMENTED, "RECONCILE_AND_COMMIT is not supported")
            if action == A.COMMIT:
                if self.saved is None:
                    raise _Reject(_C.FAILED_PRECONDITION, "COMMIT without a saved pipeline")
                self.pipeline, self.saved, self.state = self.saved, None, _State()
                self.pipelines += 1
                return p4r.SetForwardingPipelineConfigResponse()
            if not request.config.p4info.tables and not request.config.p4info.actions:
                raise _Reject(_C.INVALID_ARGUMENT, "the P4Info is empty")
            try:
                program = self.programs.get(request.config.p4info,
                                            request.config.p4_device_config)
            except ValueError as e:
                raise _Reject(_C.INVALID_ARGUMENT, f"invalid P4Info: {e}") from None
            cfg = request.config
            new = _Pipeline(program, cfg.cookie.cookie if cfg.HasField("cookie") else None)
            if action == A.VERIFY_AND_SAVE:
                self.saved = new
            elif action == A.VERIFY_AND_COMMIT:
                self.pipeline, self.saved, self.state = new, None, _State()
                self.pipelines += 1
        except _Reject as r:
            context.abort(r.code, r.message)
        return p4r.SetForwardingPipelineConfigResponse()

    def GetForwardingPipelineConfig(self, request, context):
        with self.lock:
            return self._get_pipeline(request, context)

    def _get_pipeline(self, request, context):
        R = p4r.GetForwardingPipelineConfigRequest
        if request.device_id != self.device_id:
            context.abort(_C.NOT_FOUND, f"device id {request.device_id} is not "
                                              f"{self.device_id}")
        out = p4r.GetForwardingPipelineConfigResponse()
        if self.pipeline is None:
            return out
        pipeline = self.pipeline
        if pipeline.cookie is not None:
            out.config.cookie.cookie = pipeline.cookie
        if request.response_type in (R.ALL, R.P4INFO_AND_COOKIE):
            out.config.p4info.CopyFrom(pipeline.schema.p4info)
        if request.response_type in (R.ALL, R.DEVICE_CONFIG_AND_COOKIE):
            out.config.p4_device_config = pipeline.program.device_config
        return out

    def Capabilities(self, request, context):
        return p4r.CapabilitiesResponse(p4runtime_api_version=API_VERSION)

    # ------------------------------------------------------------------ write

    def Write(self, request: p4r.WriteRequest, context):
        with self.lock:
            return self._write(request, context)

    def _write(self, request: p4r.WriteRequest, context):
        self.writes += 1
        try:
            role = self._check_primary(request.device_id, request.election_id, request.role)
            if self.pipeline is None:
                raise _Reject(_C.FAILED_PRECONDITION, "no forwarding pipeline is set")
        except _Reject as r:
            context.abort(r.code, r.message)
        atomic = request.atomicity != p4r.WriteRequest.CONTINUE_ON_ERROR
        errors: list[_Reject | None] = []
        undo: list = []
        for u in request.updates:
            try:
                self._authorise(role, u.entity)
                undo.append(self._apply(u))
                errors.append(None)
                self.updates += 1
            except _Reject as r:
                errors.append(r)
                if atomic:
                    break
        if not any(errors):
            return p4r.WriteResponse()
        if atomic:
            for step in reversed(undo):
                step()
            failed = len(errors) - 1
            errors += [None] * (len(request.updates) - len(errors))
            errors = [e if e is not None or i == failed else
                      _Reject(_C.ABORTED, f"rolled back: update #{failed} failed")
                      for i, e in enumerate(errors)]
        status = rpc_status.Status(code=_C.UNKNOWN.value[0], message="Write failure.")
        for e in errors:
            err = p4r.Error(canonical_code=0) if e is None else p4r.Error(
                canonical_code=e.code.value[0], message=e.message)
            status.details.append(_pack(err))
        bad = sum(e is not None for e in errors)
        context.set_trailing_metadata(
            (("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(_C.UNKNOWN, f"Write failure: {bad} of {len(errors)} updates failed")

    def _apply(self, u: p4r.Update):
        """Validate and apply one update; return a callable that undoes it."""
        if u.type == _U.UNSPECIFIED:
            raise _Reject(_C.INVALID_ARGUMENT, "update type is unspecified")
        which = u.entity.WhichOneof("entity")
        if which == "table_entry":
            return self._write_table(u.type, u.entity.table_entry)
        if which == "counter_entry":
            return self._write_indexed(u.type, u.entity.counter_entry, "counter")
        if which == "direct_counter_entry":
            return self._write_direct_counter(u.type, u.entity.direct_counter_entry)
        if which == "meter_entry":
            return self._write_indexed(u.type, u.entity.meter_entry, "meter")
        if which == "direct_meter_entry":
            return self._write_direct_meter(u.type, u.entity.direct_meter_entry)
        if which == "register_entry":
            return self._write_indexed(u.type, u.entity.register_entry, "register")
        if which == "packet_replication_engine_entry":
            return self._write_pre(u.type, u.entity.packet_replication_engine_entry)
        if which is None:
            raise _Reject(_C.INVALID_ARGUMENT, "update has no entity")
        raise _Reject(_C.UNIMPLEMENTED, f"{which} is not supported by the reference target")

    # table entries

    def _table(self, table_id: int) -> TableInfo:
        t = self.pipeline.schema.tables.get(table_id)
        if t is None:
            raise _Reject(_C.INVALID_ARGUMENT, f"invalid P4 id: no table {table_id:#x}")
        return t

    def _check_match(self, t: TableInfo, te: p4r.TableEntry) -> tuple:
        """Validate the match; return the entry's key (priority and match values as ints,
        so non-canonical byte strings address the same entry)."""
        seen: set[int] = set()
        key: list[tuple] = []
        for m, f in _once_each(te.match, "field_id", t.match_fields, seen,
                               f"table {t.name} has no match field id", "match field"):
            which = m.WhichOneof("field_match_type")
            if which != _MATCH_ONEOF.get(f.kind):
                raise _Reject(_C.INVALID_ARGUMENT,
                              f"match field {f.name} is {f.kind_name}, not {which}")
            w = f.bitwidth
            if which == "exact":
                key.append((m.field_id, _check_bytes(m.exact.value, w, f.name)))
            elif which == "optional":
                key.append((m.field_id, _check_bytes(m.optional.value, w, f.name)))
            elif which == "lpm":
                v = _check_bytes(m.lpm.value, w, f.name)
                plen = m.lpm.prefix_len
                if plen == 0:
                    raise _Reject(_C.INVALID_ARGUMENT,
                                  f"{f.name}: a /0 prefix is a don't-care and must be omitted")
                if not 0 < plen <= w:
                    raise _Reject(_C.INVALID_ARGUMENT,
                                  f"{f.name}: prefix length {plen} is not in 1..{w}")
                if v & ((1 << (w - plen)) - 1):
                    raise _Reject(_C.INVALID_ARGUMENT,
                                  f"{f.name}: bits beyond the /{plen} prefix must be zero")
                key.append((m.field_id, v, plen))
            elif which == "ternary":
                v = _check_bytes(m.ternary.value, w, f.name)
                mask = _check_bytes(m.ternary.mask, w, f.name + " mask")
                if mask == 0:
                    raise _Reject(_C.INVALID_ARGUMENT,
                                  f"{f.name}: an all-zero mask is a don't-care and must be "
                                  f"omitted")
                if v & ~mask:
                    raise _Reject(_C.INVALID_ARGUMENT,
                                  f"{f.name}: value has bits set outside the mask")
                key.append((m.field_id, v, mask))
            elif which == "range":
                lo = _check_bytes(m.range.low, w, f.name + " low")
                hi = _check_bytes(m.range.high, w, f.name + " high")
                if lo > hi:
                    raise _Reject(_C.INVALID_ARGUMENT, f"{f.name}: range low > high")
                if lo == 0 and hi == (1 << w) - 1:
                    raise _Reject(_C.INVALID_ARGUMENT,
                                  f"{f.name}: the full range is a don't-care and must be "
                                  f"omitted")
                key.append((m.field_id, lo, hi))
        for f in t.match_fields.values():
            if f.kind == MatchKind.EXACT and f.id not in seen:
                raise _Reject(_C.INVALID_ARGUMENT, f"exact match field {f.name} is missing")
        if t.needs_priority and te.priority <= 0:
            raise _Reject(_C.INVALID_ARGUMENT,
                          f"table {t.name} has ternary/range/optional fields: entries "
                          f"need a priority > 0")
        if not t.needs_priority and te.priority != 0:
            raise _Reject(_C.INVALID_ARGUMENT,
                          f"table {t.name} has only exact/lpm fields: priority must be 0")
        key.sort()
        return (te.priority, tuple(key))

    def _check_action(self, t: TableInfo, te: p4r.TableEntry, default: bool) -> None:
        which = te.action.WhichOneof("type")
        if which != "action":
            raise _Reject(_C.UNIMPLEMENTED,
                          f"{which}: action profiles are not supported by the reference target")
        a = te.action.action
        info = self.pipeline.schema.actions.get(a.action_id)
        if info is None:
            raise _Reject(_C.INVALID_ARGUMENT, f"invalid P4 id: no action {a.action_id:#x}")
        if a.action_id not in t.action_ids:
            raise _Reject(_C.INVALID_ARGUMENT, f"action {info.name} is not an action of "
                                               f"table {t.name}")
        if default and a.action_id in t.table_only:
            raise _Reject(_C.INVALID_ARGUMENT,
                          f"action {info.name} is @tableonly: it cannot be the default")
        if not default and a.action_id in t.default_only:
            raise _Reject(_C.INVALID_ARGUMENT,
                          f"action {info.name} is @defaultonly: it cannot be in an entry")
        given: set[int] = set()
        for p, pi in _once_each(a.params, "param_id", info.params, given,
                                f"action {info.name} has no parameter id", "parameter"):
            _check_bytes(p.value, pi.bitwidth, f"{info.name}.{pi.name}")
        missing = [pi.name for pid, pi in info.params.items() if pid not in given]
        if missing:
            raise _Reject(_C.INVALID_ARGUMENT,
                          f"action {info.name} is missing parameter(s) {', '.join(missing)}")

    def _write_table(self, kind: int, te: p4r.TableEntry):
        t = self._table(te.table_id)
        if te.is_default_action:
            return self._write_default(kind, t, te)
        if t.is_const:
            raise _Reject(_C.PERMISSION_DENIED, f"table {t.name} has const entries")
        key = self._check_match(t, te)
        if kind != _U.DELETE or te.HasField("action"):
            if not te.HasField("action"):
                raise _Reject(_C.INVALID_ARGUMENT, "a table entry needs an action")
            self._check_action(t, te, default=False)
        if te.HasField("meter_config"):
            _check_meter_config(te.meter_config)
        # Stored as received (it is canonicalised when read back): the write path stays
        # cheap, which batched writes of thousands of entries notice.
        entry = te
        table = self.state.entries.setdefault(t.id, {})
        old = table.get(key)
        dkey = (t.id, key)
        if kind == _U.INSERT:
            if old is not None:
                raise _Reject(_C.ALREADY_EXISTS, f"entry already exists in {t.name}")
            if t.size and len(table) >= t.size:
                raise _Reject(_C.RESOURCE_EXHAUSTED, f"table {t.name} is full ({t.size})")
            table[key] = entry
            if te.HasField("counter_data"):
                self.state.direct_counters[dkey] = te.counter_data

            def undo() -> None:
                table.pop(key, None)
                self.state.direct_counters.pop(dkey, None)
            return undo
        if old is None:
            raise _Reject(_C.NOT_FOUND, f"no such entry in {t.name}")
        if kind == _U.MODIFY:
            table[key] = entry
            old_counter = self.state.direct_counters.get(dkey)
            if te.HasField("counter_data"):
                self.state.direct_counters[dkey] = te.counter_data
        else:
            del table[key]
            old_counter = self.state.direct_counters.pop(dkey, None)
        restore_counter = _restorer(self.state.direct_counters, dkey, old_counter)

        def undo() -> None:
            table[key] = old
            restore_counter()
        return undo

    def _write_default(self, kind: int, t: TableInfo, te: p4r.TableEntry):
        if kind != _U.MODIFY:
            raise _Reject(_C.INVALID_ARGUMENT, "the default entry can only be MODIFY'd")
        if te.match or te.priority:
            raise _Reject(_C.INVALID_ARGUMENT, "the default entry has no match and no priority")
        if t.const_default_action_id:
            raise _Reject(_C.PERMISSION_DENIED, f"table {t.name} has a const default action")
        old = self.state.defaults.get(t.id)
        if te.HasField("action"):
            self._check_action(t, te, default=True)
            self.state.defaults[t.id] = canonical(_entity(table_entry=te)).table_entry
        else:
            self.state.defaults.pop(t.id, None)  # reset to the program's default
        return _restorer(self.state.defaults, t.id, old)

    # indexed externs: counters, meters, registers

    def _indexed(self, kind: str, obj_id: int):
        schema = self.pipeline.schema
        info = {"counter": schema.counters, "meter": schema.meters,
                "register": schema.registers}[kind].get(obj_id)
        if info is None:
            raise _Reject(_C.INVALID_ARGUMENT, f"invalid P4 id: no {kind} {obj_id:#x}")
        return info

    def _write_indexed(self, kind: int, entry, what: str):
        obj_id = getattr(entry, f"{what}_id")
        info = self._indexed(what, obj_id)
        if kind == _U.INSERT or (kind == _U.DELETE and what != "meter"):
            raise _Reject(_C.INVALID_ARGUMENT, f"{what} entries can only be MODIFY'd")
        if not entry.HasField("index"):
            raise _Reject(_C.UNIMPLEMENTED, f"wildcard writes to {what}s are not supported")
        index = entry.index.index
        if not 0 <= index < info.size:
            raise _Reject(_C.OUT_OF_RANGE, f"index {index} is outside {info.name}[{info.size}]")
        store = {"counter": self.state.counters, "meter": self.state.meters,
                 "register": self.state.registers}[what]
        key = (obj_id, index)
        old = store.get(key)
        if what == "register":
            if entry.data.WhichOneof("data") != "bitstring":
                raise _Reject(_C.INVALID_ARGUMENT, f"register {info.name} holds bit<"
                                                   f"{info.bitwidth}> values")
            _check_bytes(entry.data.bitstring, info.bitwidth, info.name)
            store[key] = p4d.P4Data(bitstring=canonical_bytes(entry.data.bitstring))
        elif what == "meter":
            if kind == _U.DELETE or not entry.HasField("config"):
                store.pop(key, None)
            else:
                _check_meter_config(entry.config)
                store[key] = entry.config
        else:
            store[key] = entry.data
        return _restorer(store, key, old)

    def _find_entry(self, te: p4r.TableEntry) -> tuple[TableInfo, tuple]:
        t = self._table(te.table_id)
        key = self._check_match(t, te)
        if key not in self.state.entries.get(t.id, {}):
            raise _Reject(_C.NOT_FOUND, f"no such entry in {t.name}")
        return t, key

    def _write_direct_counter(self, kind: int, e: p4r.DirectCounterEntry):
        if kind != _U.MODIFY:
            raise _Reject(_C.INVALID_ARGUMENT, "direct counter entries can only be MODIFY'd")
        t, key = self._find_entry(e.table_entry)
        if t.direct_counter_id is None:
            raise _Reject(_C.INVALID_ARGUMENT, f"table {t.name} has no direct counter")
        dkey = (t.id, key)
        old = self.state.direct_counters.get(dkey)
        self.state.direct_counters[dkey] = e.data
        return _restorer(self.state.direct_counters, dkey, old)

    def _write_direct_meter(self, kind: int, e: p4r.DirectMeterEntry):
        if kind == _U.INSERT:
            raise _Reject(_C.INVALID_ARGUMENT, "direct meter entries can only be MODIFY'd")
        t, key = self._find_entry(e.table_entry)
        if t.direct_meter_id is None:
            raise _Reject(_C.INVALID_ARGUMENT, f"table {t.name} has no direct meter")
        entry = self.state.entries[t.id][key]
        old = p4r.TableEntry()
        old.CopyFrom(entry)
        new = p4r.TableEntry()
        new.CopyFrom(entry)
        if kind == _U.DELETE or not e.HasField("config"):
            new.ClearField("meter_config")
        else:
            _check_meter_config(e.config)
            new.meter_config.CopyFrom(e.config)
        table = self.state.entries[t.id]
        table[key] = new

        def undo() -> None:
            table[key] = old
        return undo

    def _write_pre(self, kind: int, pre: p4r.PacketReplicationEngineEntry):
        which = pre.WhichOneof("type")
        if which == "multicast_group_entry":
            store, key, entry = self.state.multicast, \
                pre.multicast_group_entry.multicast_group_id, pre.multicast_group_entry
            what = f"multicast group {key}"
        elif which == "clone_session_entry":
            store, key, entry = self.state.clones, pre.clone_session_entry.session_id, \
                pre.clone_session_entry
            what = f"clone session {key}"
        else:
            raise _Reject(_C.INVALID_ARGUMENT, "empty packet replication engine entry")
        if key == 0:
            raise _Reject(_C.INVALID_ARGUMENT, f"{what}: id 0 is reserved")
        old = store.get(key)
        if kind == _U.INSERT and old is not None:
            raise _Reject(_C.ALREADY_EXISTS, f"{what} already exists")
        if kind != _U.INSERT and old is None:
            raise _Reject(_C.NOT_FOUND, f"{what} does not exist")
        if kind == _U.DELETE:
            del store[key]
        else:
            replicas = {(r.egress_port, r.port, r.instance) for r in entry.replicas}
            if len(replicas) != len(entry.replicas):
                raise _Reject(_C.INVALID_ARGUMENT, f"{what}: duplicate replica")
            store[key] = entry
        return _restorer(store, key, old)

    # ------------------------------------------------------------------ data plane

    def data_plane_write(self, entity: p4r.Entity) -> None:
        """Set a counter, direct counter or register cell as the data plane would — no
        controller, no arbitration. The target forwards no packets: tests and dry runs
        stand in for traffic this way. Ids, indices and widths are checked as for a Write
        (``ValueError`` otherwise)."""
        which = entity.WhichOneof("entity")
        if which not in ("counter_entry", "direct_counter_entry", "register_entry"):
            raise ValueError(f"the data plane writes counters and registers, not {which}")
        with self.lock:
            if self.pipeline is None:
                raise ValueError("no forwarding pipeline is set")
            u = p4r.Update(type=_U.MODIFY)
            u.entity.CopyFrom(entity)
            try:
                self._apply(u)
            except _Reject as r:
                raise ValueError(f"{r.code.name}: {r.message}") from None

    # ------------------------------------------------------------------ read

    def Read(self, request: p4r.ReadRequest, context):
        if request.device_id != self.device_id:
            context.abort(_C.NOT_FOUND, f"device id {request.device_id} is not "
                                        f"{self.device_id}")
        out: list[p4r.Entity] = []
        with self.lock:
            if self.pipeline is None:
                context.abort(_C.FAILED_PRECONDITION, "no forwarding pipeline is set")
            try:
                for e in request.entities:
                    out.extend(self._read(e))
            except _Reject as r:
                context.abort(r.code, r.message)
        for i in range(0, len(out), 1000):  # several responses, as a switch streams them
            yield p4r.ReadResponse(entities=out[i:i + 1000])

    def _read(self, e: p4r.Entity) -> Iterable[p4r.Entity]:
        which = e.WhichOneof("entity")
        schema = self.pipeline.schema
        if which == "table_entry":
            q = e.table_entry
            tables = [self._table(q.table_id)] if q.table_id else list(schema.tables.values())
            for t in tables:
                if q.is_default_action:
                    d = self.state.defaults.get(t.id)
                    out = _entity(table_entry=d) if d is not None else _entity(
                        table_entry=p4r.TableEntry(table_id=t.id, is_default_action=True))
                    yield out
                    continue
                entries = self.state.entries.get(t.id, {})
                if q.match:
                    _, key = self._find_entry(q)
                    selected = [(key, entries[key])]
                else:
                    selected = list(entries.items())
                for key, entry in selected:
                    if q.priority and entry.priority != q.priority:
                        continue
                    out = canonical(_entity(table_entry=entry))
                    if q.HasField("counter_data") and t.direct_counter_id is not None:
                        out.table_entry.counter_data.CopyFrom(
                            self.state.direct_counters.get((t.id, key), p4r.CounterData()))
                    yield out
        elif which in ("counter_entry", "meter_entry", "register_entry"):
            what = which.removesuffix("_entry")
            q = getattr(e, which)
            obj_id = getattr(q, f"{what}_id")
            infos = [self._indexed(what, obj_id)] if obj_id else list(
                {"counter": schema.counters, "meter": schema.meters,
                 "register": schema.registers}[what].values())
            store = {"counter": self.state.counters, "meter": self.state.meters,
                     "register": self.state.registers}[what]
            for info in infos:
                if q.HasField("index"):
                    if not 0 <= q.index.index < info.size:
                        raise _Reject(_C.OUT_OF_RANGE, f"index {q.index.index} is outside "
                                                       f"{info.name}[{info.size}]")
                    indices: Iterable[int] = (q.index.index,)
                else:
                    indices = range(info.size)
                for i in indices:
                    out = p4r.Entity()
                    msg = getattr(out, which)
                    setattr(msg, f"{what}_id", info.id)
                    msg.index.index = i
                    value = store.get((info.id, i))
                    if what == "counter":
                        msg.data.CopyFrom(value or p4r.CounterData())
                    elif what == "meter":
                        if value is not None:
                            msg.config.CopyFrom(value)
                    else:
                        msg.data.CopyFrom(value or p4d.P4Data(bitstring=b"\x00"))
                    yield out
        elif which == "direct_counter_entry":
            q = e.direct_counter_entry
            if q.table_entry.match or q.table_entry.is_default_action:
                t, key = self._find_entry(q.table_entry)
                keys = [(t, key)]
            else:
                ts = [self._table(q.table_entry.table_id)] if q.table_entry.table_id else \
                    list(schema.tables.values())
                keys = [(t, k) for t in ts if t.direct_counter_id is not None
                        for k in self.state.entries.get(t.id, {})]
            for t, key in keys:
                out = p4r.Entity()
                out.direct_counter_entry.table_entry.CopyFrom(
                    canonical(_entity(table_entry=self.state.entries[t.id][key])).table_entry)
                out.direct_counter_entry.data.CopyFrom(
                    self.state.direct_counters.get((t.id, key), p4r.CounterData()))
                yield out
        elif which == "direct_meter_entry":
            q = e.direct_meter_entry
            t, key = self._find_entry(q.table_entry)
            entry = self.state.entries[t.id][key]
            out = p4r.Entity()
            out.direct_meter_entry.table_entry.CopyFrom(
                canonical(_entity(table_entry=entry)).table_entry)
            out.direct_meter_entry.table_entry.ClearField("meter_config")
            if entry.HasField("meter_config"):
                out.direct_meter_entry.config.CopyFrom(entry.meter_config)
            yield out
        elif which == "packet_replication_engine_entry":
            pre = e.packet_replication_engine_entry
            if pre.HasField("clone_session_entry"):
                sid = pre.clone_session_entry.session_id
                for k in ([sid] if sid else sorted(self.state.clones)):
                    if k in self.state.clones:
                        yield _entity(packet_replication_engine_entry=p4r.
                                      PacketReplicationEngineEntry(
                                          clone_session_entry=self.state.clones[k]))
            else:
                gid = pre.multicast_group_entry.multicast_group_id
                for k in ([gid] if gid else sorted(self.state.multicast)):
                    if k in self.state.multicast:
                        yield _entity(packet_replication_engine_entry=p4r.
                                      PacketReplicationEngineEntry(
                                          multicast_group_entry=self.state.multicast[k]))
        else:
            raise _Reject(_C.UNIMPLEMENTED, f"reading {which} is not supported")


# Open StreamChannels a multi-device server admits at once, over all its devices (each
# device still admits MAX_STREAMS): each holds a server thread, and a deploy holds one per
# switch it works on (``--jobs``, 32 by default).
MAX_SERVER_STREAMS = 128


class MultiDeviceTarget(p4r_grpc.P4RuntimeServicer):
    """Many P4Runtime devices behind one gRPC server, as PI's server (behind
    ``simple_switch_grpc``) hosts one per device id: every RPC goes to the device its
    ``device_id`` names, with that device's own pipeline, entries and arbitration (per
    role). A ``device_id`` no device has is ``NOT_FOUND`` (P4Runtime specification, "Rules
    for Handling MasterArbitrationUpdate Messages": "If device_id does not match any of
    the devices known to the P4Runtime server ... the server must return a NOT_FOUND
    error"); a stream stays bound to the device of its first arbitration.

    Devices given the same program share its parsed P4Info (:class:`Programs`), so an
    idle device costs its empty tables only.
    """

    def __init__(self, devices: Iterable[ReferenceTarget], *,
                 max_streams: int = MAX_SERVER_STREAMS,
                 arbitration_timeout: float = ARBITRATION_TIMEOUT) -> None:
        self.devices: dict[int, ReferenceTarget] = {}
        for d in devices:
            if d.device_id in self.devices:
                raise ValueError(f"device id {d.device_id} given twice")
            self.devices[d.device_id] = d
        self.max_streams = max_streams
        self.arbitration_timeout = arbitration_timeout
        self.streams = 0
        self.streams_peak = 0  # most streams open at once (tests and benchmarks read it)
        self.lock = threading.Lock()  # guards the stream counts: each device has its own

    @classmethod
    def of(cls, device_ids: Iterable[int], p4info: p4i.P4Info | None = None,
           device_config: bytes = b"", **kw) -> MultiDeviceTarget:
        """``device_ids`` devices, each running ``p4info`` (or none, waiting for one)."""
        programs = Programs()
        device_kw = {k: kw.pop(k) for k in ("roles",) if k in kw}
        return cls((ReferenceTarget(i, p4info, device_config, programs=programs, **device_kw)
                    for i in device_ids), **kw)

    def _device(self, device_id: int, context) -> ReferenceTarget:
        device = self.devices.get(device_id)
        if device is None:
            context.abort(_C.NOT_FOUND, f"no device with id {device_id} on this server")
        return device

    def Write(self, request, context):
        return self._device(request.device_id, context).Write(request, context)

    def Read(self, request, context):
        yield from self._device(request.device_id, context).Read(request, context)

    def SetForwardingPipelineConfig(self, request, context):
        return self._device(request.device_id, context).SetForwardingPipelineConfig(
            request, context)

    def GetForwardingPipelineConfig(self, request, context):
        return self._device(request.device_id, context).GetForwardingPipelineConfig(
            request, context)

    def Capabilities(self, request, context):
        return p4r.CapabilitiesResponse(p4runtime_api_version=API_VERSION)

    def StreamChannel(self, request_iterator, context):
        """Admit the stream (server-wide), wait for its first arbitration, and hand the
        stream to the device it names, which arbitrates it as a single device does."""
        with self.lock:
            full = self.streams >= self.max_streams
            if not full:
                self.streams += 1
                self.streams_peak = max(self.streams_peak, self.streams)
        if full:
            _refuse(request_iterator, context,
                    f"too many open streams on this server ({self.max_streams}); close one "
                    f"first")
        try:
            first = _first_arbitration(request_iterator, self.arbitration_timeout)
            if first is None:
                context.abort(_C.FAILED_PRECONDITION,
                              f"no MasterArbitrationUpdate within "
                              f"{self.arbitration_timeout:g}s of opening the stream")
            if first is _ENDED:
                return
            device = self._device(first.arbitration.device_id, context)
            yield from device.StreamChannel(itertools.chain((first,), request_iterator),
                                            context)
        finally:
            with self.lock:
                self.streams -= 1


_ENDED = object()  # the client closed its side before arbitrating


def _first_arbitration(request_iterator, timeout: float):
    """The stream's first ``MasterArbitrationUpdate``, read in a thread so that a client
    that never sends one costs ``timeout`` at most: None on timeout, ``_ENDED`` if the
    stream ended first."""
    got: queue.SimpleQueue = queue.SimpleQueue()

    def take() -> None:
        try:
            for req in request_iterator:
                if req.WhichOneof("update") == "arbitration":
                    got.put(req)
                    return
        except grpc.RpcError:
            pass
        got.put(_ENDED)

    threading.Thread(target=take, daemon=True, name="p4rt-first").start()
    try:
        return got.get(timeout=timeout)
    except queue.Empty:
        return None


def _refuse(request_iterator, context, message: str) -> None:
    """Refuse a stream with RESOURCE_EXHAUSTED (spec, "Rules for Handling
    MasterArbitrationUpdate Messages"), after taking the client's first message: an asyncio
    client whose write meets an already-closed stream reports INTERNAL instead of our
    status (grpc/grpc#36066). A client that never writes is refused after a second."""
    taken = threading.Event()

    def take() -> None:
        with contextlib.suppress(StopIteration, grpc.RpcError):
            next(request_iterator)
        taken.set()

    threading.Thread(target=take, daemon=True, name="p4rt-refuse").start()
    taken.wait(1.0)
    context.abort(_C.RESOURCE_EXHAUSTED, message)


def _entity(**kw) -> p4r.Entity:
    return p4r.Entity(**kw)


def _pack(msg) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def _check_meter_config(c: p4r.MeterConfig) -> None:
    if c.cir < 0 or c.pir < 0 or c.cburst < 0 or c.pburst < 0:
        raise _Reject(_C.INVALID_ARGUMENT, "meter rates and bursts must be >= 0")
    if c.pir < c.cir:
        raise _Reject(_C.INVALID_ARGUMENT, f"meter pir {c.pir} is below cir {c.cir}")


# --------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class TlsServerConfig:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: clients must present a certificate signed by it


@dataclass
class ServerHandle:
    server: grpc.Server
    target: ReferenceTarget | MultiDeviceTarget
    port: int

    def stop(self, grace: float | None = None) -> None:
        self.server.stop(grace).wait()


def start_server(target: ReferenceTarget | MultiDeviceTarget, listen: str = "127.0.0.1:0",
                 tls: TlsServerConfig | None = None, workers: int | None = None
                 ) -> ServerHandle:
    """Start serving ``target`` on ``listen`` (port 0 picks a free port) in threads.

    Each open StreamChannel holds one worker thread; the target admits ``max_streams`` of
    them, and the pool has ``workers`` threads beyond those (16 by default) for unary RPCs,
    so open streams, idle or not, never starve a Read or a Write.
    """
    threads = target.max_streams + (16 if workers is None else workers)
    server = grpc.server(ThreadPoolExecutor(max_workers=threads, thread_name_prefix="p4rt"),
                         options=[("grpc.max_receive_message_length", 64 << 20),
                                  ("grpc.max_send_message_length", 64 << 20),
                                  ("grpc.so_reuseport", 0)])
    p4r_grpc.add_P4RuntimeServicer_to_server(target, server)
    if tls is None:
        port = server.add_insecure_port(listen)
    else:
        creds = grpc.ssl_server_credentials(
            [(tls.key.read_bytes(), tls.cert.read_bytes())],
            root_certificates=tls.client_ca.read_bytes() if tls.client_ca else None,
            require_client_auth=tls.client_ca is not None)
        port = server.add_secure_port(listen, creds)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    server.start()
    return ServerHandle(server, target, port)


def serve(target: ReferenceTarget | MultiDeviceTarget, listen: str,
          tls: TlsServerConfig | None = None, ready=None) -> None:
    """Serve until interrupted (``mosaico target serve``): SIGINT or SIGTERM stop it."""
    import signal

    handle = start_server(target, listen, tls)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if ready is not None:
        ready(handle)
    try:
        stop.wait()
    finally:
        handle.stop(0.5)
