"""A P4Runtime client: one connection per switch, primary arbitration, batched writes.

Built on grpcio's asyncio API and the P4Runtime protos, so many switches are driven
concurrently from one event loop (one task per switch, as finsy does). A connection opens
the ``StreamChannel``, sends ``MasterArbitrationUpdate`` with its election id and refuses to
write unless it *is* the primary: a deploy never fights another controller silently.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..p4proto import p4i, p4r, p4r_grpc, rpc_status
from .tls import TlsProblem, diagnose

__all__ = [
    "TlsConfig", "Endpoint", "P4RuntimeError", "UpdateError", "NotPrimaryError", "TlsError",
    "SwitchConnection", "Channels", "connect", "pipeline_cookie", "read_kind", "DEFAULT_BATCH",
]

DEFAULT_BATCH = 500  # updates per Write: large enough to amortise the RPC, small for gRPC


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server CA (to verify the switch) and, for mutual TLS, a client certificate and key."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None  # when the certificate names differ from the address

    def credentials(self) -> grpc.ChannelCredentials:
        read = lambda p: Path(p).read_bytes() if p else None
        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one switch is and who we are to it."""

    name: str
    address: str
    device_id: int
    election_id: int = 1
    role: str = ""
    tls: TlsConfig | None = None


@dataclass(frozen=True, slots=True)
class UpdateError:
    index: int  # position in the request's updates
    code: grpc.StatusCode
    message: str


class P4RuntimeError(Exception):
    """An RPC failed. ``errors`` holds the per-update errors of a failed Write."""

    def __init__(self, switch: str, code: grpc.StatusCode, message: str,
                 errors: Sequence[UpdateError] = (), applied: int = 0) -> None:
        self.switch, self.code, self.message = switch, code, message
        self.errors = tuple(errors)
        self.applied = applied  # updates known to be applied before the failure
        super().__init__(f"{switch}: {code.name}: {message}")

    @property
    def unreachable(self) -> bool:
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                             grpc.StatusCode.CANCELLED)


class NotPrimaryError(P4RuntimeError):
    pass


class TlsError(P4RuntimeError):
    """The TLS handshake failed; ``problem`` says why (see :mod:`.tls`)."""

    def __init__(self, switch: str, problem: TlsProblem) -> None:
        super().__init__(switch, grpc.StatusCode.UNAVAILABLE, problem.message)
        self.problem = problem


def read_kind(entity: p4r.Entity) -> str:
    """What a Read query asks for, in words: switches implement reads per entity kind."""
    which = entity.WhichOneof("entity") or "nothing"
    if which == "table_entry" and entity.table_entry.is_default_action:
        return "default entries"
    if which == "packet_replication_engine_entry":
        kind = entity.packet_replication_engine_entry.WhichOneof("type") or ""
        return "clone sessions" if kind == "clone_session_entry" else "multicast groups"
    return _KIND_WORDS.get(which, which)


_KIND_WORDS = {"table_entry": "table entries", "register_entry": "registers",
               "meter_entry": "meters", "counter_entry": "counters",
               "direct_counter_entry": "direct counters", "direct_meter_entry": "direct meters"}


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _details(err: grpc.aio.AioRpcError) -> list[UpdateError]:
    """The per-update ``p4.v1.Error``s of a failed Write (``grpc-status-details-bin``)."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = rpc_status.Status()
            status.ParseFromString(value)
            out = []
            for i, any_ in enumerate(status.details):
                e = p4r.Error()
                if any_.Unpack(e) and e.canonical_code != 0:
                    out.append(UpdateError(i, _CODES.get(e.canonical_code,
                                                         grpc.StatusCode.UNKNOWN), e.message))
            return out
    return []


def pipeline_cookie(p4info: p4i.P4Info, device_config: bytes) -> int:
    """The pipeline's identity, set as its cookie, compared before pushing it again."""
    digest = hashlib.sha256(p4info.SerializeToString(deterministic=True) + b"\0" +
                            device_config).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class SwitchConnection:
    """An open P4Runtime session with one device."""

    endpoint: Endpoint
    channel: grpc.aio.Channel
    stub: p4r_grpc.P4RuntimeStub
    timeout: float = 30.0
    _stream: grpc.aio.StreamStreamCall | None = None
    _outbox: asyncio.Queue | None = None
    is_primary: bool = False
    primary_election_id: int | None = None
    # A channel shared with other devices' connections (:class:`Channels`) is handed back
    # on close, not closed.
    release: Callable[[], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        return self.endpoint.name

    def _fail(self, err: grpc.aio.AioRpcError, what: str, applied: int = 0) -> P4RuntimeError:
        return P4RuntimeError(self.name, err.code(), f"{what}: {err.details()}",
                              _details(err), applied)

    def _election(self) -> p4r.Uint128:
        e = self.endpoint.election_id
        return p4r.Uint128(high=e >> 64, low=e & (2**64 - 1))

    async def arbitrate(self) -> None:
        """Open the stream and become primary, or raise :class:`NotPrimaryError`."""
        self._outbox = asyncio.Queue()
        req = p4r.StreamMessageRequest()
        req.arbitration.device_id = self.endpoint.device_id
        req.arbitration.election_id.CopyFrom(self._election())
        if self.endpoint.role:
            req.arbitration.role.name = self.endpoint.role
        await self._outbox.put(req)

        async def requests():
            while True:
                item = await self._outbox.get()
                if item is None:
                    return
                yield item

        self._stream = self.stub.StreamChannel(requests())
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    msg = await self._stream.read()
                    if msg is grpc.aio.EOF:
                        raise P4RuntimeError(self.name, grpc.StatusCode.UNAVAILABLE,
                                             "the switch closed the stream during arbitration")
                    if msg.WhichOneof("update") == "arbitration":
                        break
        except grpc.aio.AioRpcError as e:
            raise self._fail(e, "arbitration") from None
        except TimeoutError:
            raise P4RuntimeError(self.name, grpc.StatusCode.DEADLINE_EXCEEDED,
                                 f"no arbitration answer within {self.timeout:g}s") from None
        arb = msg.arbitration
        self.primary_election_id = (arb.election_id.high << 64) | arb.election_id.low
        self.is_primary = arb.status.code == 0
        if not self.is_primary:
            raise NotPrimaryError(
                self.name, grpc.StatusCode.PERMISSION_DENIED,
                f"another controller is primary with election id {self.primary_election_id} "
                f"(ours is {self.endpoint.election_id})")

    async def capabilities(self) -> str:
        try:
            r = await self.stub.Capabilities(p4r.CapabilitiesRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise self._fail(e, "Capabilities") from None
        return r.p4runtime_api_version

    async def get_pipeline(self, full: bool = False, p4info: bool = False
                           ) -> tuple[int | None, p4r.ForwardingPipelineConfig]:
        """The device's pipeline cookie (None if no pipeline or no cookie) and config:
        everything with ``full``, the P4Info with ``p4info``, else the cookie only."""
        R = p4r.GetForwardingPipelineConfigRequest
        kind = R.ALL if full else R.P4INFO_AND_COOKIE if p4info else R.COOKIE_ONLY
        req = R(device_id=self.endpoint.device_id, response_type=kind)
        try:
            r = await self.stub.GetForwardingPipelineConfig(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return None, p4r.ForwardingPipelineConfig()
            raise self._fail(e, "GetForwardingPipelineConfig") from None
        cfg = r.config
        return (cfg.cookie.cookie if cfg.HasField("cookie") and cfg.cookie.cookie else None), cfg

    async def set_pipeline(self, p4info: p4i.P4Info, device_config: bytes = b"",
                           cookie: int | None = None) -> None:
        req = p4r.SetForwardingPipelineConfigRequest(
            device_id=self.endpoint.device_id, role=self.endpoint.role,
            action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT)
        req.election_id.CopyFrom(self._election())
        req.config.p4info.CopyFrom(p4info)
        req.config.p4_device_config = device_config
        if cookie is not None:
            req.config.cookie.cookie = cookie
        try:
            await self.stub.SetForwardingPipelineConfig(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise self._fail(e, "SetForwardingPipelineConfig") from None

    async def restore_pipeline(self, config: p4r.ForwardingPipelineConfig) -> None:
        req = p4r.SetForwardingPipelineConfigRequest(
            device_id=self.endpoint.device_id, role=self.endpoint.role,
            action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT)
        req.election_id.CopyFrom(self._election())
        req.config.CopyFrom(config)
        try:
            await self.stub.SetForwardingPipelineConfig(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise self._fail(e, "SetForwardingPipelineConfig") from None

    async def write(self, updates: Sequence[p4r.Update], batch: int = DEFAULT_BATCH,
                    atomicity: int = p4r.WriteRequest.CONTINUE_ON_ERROR,
                    on_batch=None) -> int:
        """Write ``updates`` in batches of ``batch``; return how many were applied.

        On failure raises :class:`P4RuntimeError` whose ``applied`` counts the updates
        applied before it (whole earlier batches plus the successes of the failed one), and
        whose ``errors`` index into ``updates``.
        """
        applied = 0
        for start in range(0, len(updates), max(1, batch)):
            chunk = updates[start:start + batch]
            req = p4r.WriteRequest(device_id=self.endpoint.device_id, role=self.endpoint.role,
                                   atomicity=atomicity, updates=chunk)
            req.election_id.CopyFrom(self._election())
            try:
                await self.stub.Write(req, timeout=self.timeout)
            except grpc.aio.AioRpcError as e:
                errs = [UpdateError(start + x.index, x.code, x.message) for x in _details(e)]
                ok = len(chunk) - len(errs) if errs and atomicity == \
                    p4r.WriteRequest.CONTINUE_ON_ERROR else 0
                raise P4RuntimeError(self.name, e.code(), f"Write: {e.details()}", errs,
                                     applied + ok) from None
            applied += len(chunk)
            if on_batch is not None:
                on_batch(applied)
        return applied

    async def read(self, entities: Iterable[p4r.Entity]) -> list[p4r.Entity]:
        req = p4r.ReadRequest(device_id=self.endpoint.device_id, entities=list(entities))
        out: list[p4r.Entity] = []
        try:
            async for r in self.stub.Read(req, timeout=self.timeout):
                out.extend(r.entities)
        except grpc.aio.AioRpcError as e:
            raise self._fail(e, "Read") from None
        return out

    async def read_each(self, entities: Iterable[p4r.Entity]
                        ) -> tuple[list[p4r.Entity], dict[str, P4RuntimeError]]:
        """Read ``entities`` one entity kind per request, so a kind the switch cannot read
        (``UNIMPLEMENTED``: BMv2's registers) costs only that kind: the entities read, and
        the unreadable kinds with the switch's answer. Any other failure raises."""
        groups: dict[str, list[p4r.Entity]] = {}
        for e in entities:
            groups.setdefault(read_kind(e), []).append(e)
        results = await asyncio.gather(*(self.read(qs) for qs in groups.values()),
                                       return_exceptions=True)
        out: list[p4r.Entity] = []
        unavailable: dict[str, P4RuntimeError] = {}
        for kind, r in zip(groups, results, strict=True):
            if isinstance(r, P4RuntimeError) and r.code == grpc.StatusCode.UNIMPLEMENTED:
                unavailable[kind] = r
            elif isinstance(r, BaseException):
                raise r
            else:
                out.extend(r)
        return out, unavailable

    async def close(self) -> None:
        if self._outbox is not None:
            await self._outbox.put(None)
        if self._stream is not None:
            self._stream.cancel()
        if self.release is not None:
            await self.release()
        else:
            await self.channel.close()

    async def __aenter__(self) -> SwitchConnection:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _channel(endpoint: Endpoint) -> grpc.aio.Channel:
    options = [("grpc.max_receive_message_length", 64 << 20),
               ("grpc.max_send_message_length", 64 << 20)]
    if endpoint.tls is not None:
        if endpoint.tls.server_name:
            options.append(("grpc.ssl_target_name_override", endpoint.tls.server_name))
        return grpc.aio.secure_channel(endpoint.address, endpoint.tls.credentials(),
                                       options=options)
    return grpc.aio.insecure_channel(endpoint.address, options=options)


class Channels:
    """One gRPC channel per switch address (and TLS settings), shared by the connections
    to every device behind it — HTTP/2 multiplexes their streams and calls — so a server
    hosting a thousand devices gets one TCP connection, not a thousand. A channel belongs
    to the event loop that opened it and is closed when its last connection closes."""

    def __init__(self) -> None:
        self._open: dict[tuple, list] = {}  # (loop, address, tls) → [channel, users]

    def acquire(self, endpoint: Endpoint
                ) -> tuple[grpc.aio.Channel, Callable[[], Awaitable[None]]]:
        """The address's channel, and the coroutine function that hands it back."""
        key = (asyncio.get_running_loop(), endpoint.address, endpoint.tls)
        entry = self._open.get(key)
        if entry is None:
            entry = self._open[key] = [_channel(endpoint), 0]
        entry[1] += 1
        released = False

        async def release() -> None:  # once, however often a connection closes
            nonlocal released
            if released:
                return
            released = True
            entry[1] -= 1
            if entry[1] == 0 and self._open.get(key) is entry:
                del self._open[key]
                await entry[0].close()
        return entry[0], release

    def __len__(self) -> int:
        return len(self._open)


async def connect(endpoint: Endpoint, *, primary: bool = True, timeout: float = 10.0,
                  channels: Channels | None = None) -> SwitchConnection:
    """Connect to a switch; with ``primary`` also win the arbitration (needed to write).
    With ``channels``, over the channel the switch's address shares with other devices."""
    release = None
    if channels is not None:
        channel, release = channels.acquire(endpoint)
    else:
        channel = _channel(endpoint)
    # Every answer the switch owes is awaited ``timeout`` seconds at most: a stalled switch
    # fails the first call that goes unanswered.
    conn = SwitchConnection(endpoint, channel, p4r_grpc.P4RuntimeStub(channel), timeout,
                            release=release)
    try:
        async with asyncio.timeout(timeout):
            await channel.channel_ready()
    except TimeoutError:
        await conn.close()
        tls = endpoint.tls
        problem = await asyncio.to_thread(
            diagnose, endpoint.address, tls.ca if tls else None, tls.cert if tls else None,
            tls.key if tls else None, tls.server_name if tls else None, min(timeout, 5.0),
            tls is not None)
        if problem is not None:
            raise TlsError(endpoint.name, problem) from None
        raise P4RuntimeError(endpoint.name, grpc.StatusCode.UNAVAILABLE,
                             f"cannot reach {endpoint.address} within {timeout:g}s") from None
    try:
        if primary:
            await conn.arbitrate()
    except BaseException:
        await conn.close()
        raise
    return conn
