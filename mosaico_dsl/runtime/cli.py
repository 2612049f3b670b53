"""``mosaico deploy | plan | status | destroy | target serve`` — the runtime's commands."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import click

from ..cli import _guard
from ..diagnostics import CompileError, Note, error
from .build import Build, load_build, parse_addresses
from .state import StateStore, default_state_path

__all__ = ["deploy_cmd", "plan_cmd", "status_cmd", "destroy_cmd", "target_group"]

TARGETS = ("local", "p4runtime", "openstack", "osm")


def _options(require_build: bool) -> Callable:
    """The options every runtime command shares."""

    def wrap(fn: Callable) -> Callable:
        decorators = [
            click.argument("build_dir", required=require_build,
                           type=click.Path(file_okay=False)),
            click.option("--target", "-t", "targets", multiple=True,
                         type=click.Choice(TARGETS),
                         help="Target kinds to act on (repeatable; default: every kind "
                              "recorded in the state store, or local if none is)."),
            click.option("--address", "addresses", multiple=True, metavar="SWITCH=HOST:PORT",
                         help="Override a switch's P4Runtime address (repeatable; recorded "
                              "at deploy, so later commands use it too)."),
            click.option("--thrift", "thrift", multiple=True, metavar="SWITCH=HOST:PORT",
                         help="BMv2's Thrift API of a switch, to read what its P4Runtime "
                              "cannot (registers); default: the topology's thrift_port on "
                              "the P4Runtime host (repeatable)."),
            click.option("--state", "state", type=click.Path(dir_okay=False),
                         default=None, help="State store (default $MOSAICO_STATE or "
                                            ".mosaico/state.db)."),
            click.option("--election-id", type=click.IntRange(1, 2**128 - 1), default=1,
                         show_default=True, help="P4Runtime election id (primary "
                                                 "arbitration)."),
            click.option("--role", default="", help="P4Runtime role (default: full access)."),
            click.option("--batch", type=click.IntRange(1, 100000), default=500,
                         show_default=True, help="P4Runtime updates per Write request."),
            click.option("--timeout", type=click.FloatRange(0, min_open=True), default=10.0,
                         show_default=True,
                         help="Seconds to wait for a switch to answer."),
            click.option("--jobs", "-j", type=click.IntRange(1, 1024), default=None,
                         help="Switches worked on at once (default: 32, or fewer if there "
                              "are fewer)."),
            click.option("--stack-timeout", type=float, default=1800.0, show_default=True,
                         help="Seconds to wait for an OpenStack stack or an OSM operation "
                              "to settle."),
            click.option("--stack-poll", type=float, default=5.0, show_default=True,
                         help="Seconds between two polls of a stack's or an OSM "
                              "operation's status."),
            click.option("--stack-param", "stack_params", multiple=True,
                         metavar="NAME=VALUE",
                         help="OpenStack: a Heat stack parameter, e.g. key_name=mykey "
                              "(repeatable; given to every stack that declares it)."),
            click.option("--vim-account", default=None, metavar="NAME",
                         help="OSM: the VIM account to instantiate on (default: the OSM "
                              "configuration's vim_account, else the host's cloud)."),
            click.option("--osm-vld", "osm_vlds", multiple=True, metavar="VLD=NETWORK",
                         help="OSM: put an NSD's virtual link on an existing VIM network, "
                              "e.g. transit-s1=provider (repeatable)."),
            click.option("--osm-config", type=click.Path(dir_okay=False), default=None,
                         help="OSM: YAML file with url, user, password, project, verify, "
                              "vim_account (default $MOSAICO_OSM_CONFIG or "
                              "~/.config/mosaico/osm.yaml; OSM_* variables override it)."),
            click.option("--ca", type=click.Path(exists=True, dir_okay=False),
                         help="TLS: CA certificate that signed the switches' certificates."),
            click.option("--cert", type=click.Path(exists=True, dir_okay=False),
                         help="TLS: client certificate (mutual TLS)."),
            click.option("--key", type=click.Path(exists=True, dir_okay=False),
                         help="TLS: client private key (mutual TLS)."),
            click.option("--tls-server-name", default=None,
                         help="TLS: name to verify in the switch certificate."),
            click.option("--local-prefix", default=None,
                         help="Local target: namespace name prefix (default: local.json's)."),
            click.option("--data-plane", type=click.Choice(("bmv2", "linux")), default=None,
                         help="Local target: run each P4 switch's program on BMv2, or the "
                              "Linux stand-in (nftables, tc). Default: as last deployed, "
                              "else BMv2 when its tools are on PATH."),
        ]
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return wrap


def _tls(ca, cert, key, server_name):
    from .p4runtime import TlsConfig

    if not (ca or cert or key):
        return None
    from .tls import check_client_files

    if bool(cert) != bool(key):
        raise CompileError([error("E1217", "--cert and --key go together (mutual TLS)",
                                  hint="pass both, or neither for server-only TLS")])
    for option, path in (("--ca", ca), ("--cert", cert), ("--key", key)):
        if path and b"-----BEGIN " not in Path(path).read_bytes():
            raise CompileError([error("E1217", f"{option} {path} is not a PEM file",
                                      hint="TLS files are PEM: -----BEGIN CERTIFICATE----- "
                                           "(or PRIVATE KEY) blocks")])
    problem = check_client_files(*(Path(x) if x else None for x in (ca, cert, key)))
    if problem:
        raise CompileError([error("E1217", problem, hint="pass the certificate and the "
                                                         "private key issued with it")])
    return TlsConfig(Path(ca) if ca else None, Path(cert) if cert else None,
                     Path(key) if key else None, server_name)


def _kinds(given: tuple[str, ...], store: StateStore, opts: dict) -> tuple[str, ...]:
    """The target kinds to act on: those given; else every kind the store records or an
    interrupted run left steps on; else ``local``. A P4Runtime-only option (``--address``,
    ``--thrift``) with no p4runtime among them is E1228: on an empty store it used to
    deploy the local target and leave the switch alone, the opposite of what it asks."""
    kinds = given or tuple(dict.fromkeys([*(u.target for u in store.units()),
                                          *(i.target for i in store.intents())])) or ("local",)
    if "p4runtime" not in kinds:
        used = [o for o, v in (("--address", opts["address_map"]), ("--thrift", opts["thrift"]))
                if v]
        if used:
            acting = ", ".join(kinds)
            raise CompileError([error(
                "E1228", f"{' and '.join(used)} set(s) a P4 switch's address, but this command "
                         f"acts on {acting} only"
                         + ("" if given else " (what the state store records, or local)"),
                hint="add --target p4runtime (repeatable: --target local --target p4runtime "
                     "for both)")])
    return kinds


def _targets(kinds, build: Build | None, store: StateStore, opts: dict):
    from .local import LocalTarget
    from .openstack import OpenStackTarget, parse_stack_params
    from .osm import OsmTarget, parse_vlds
    from .switches import P4RuntimeTarget

    out = []
    for kind in dict.fromkeys(kinds):
        if kind == "p4runtime":
            if build is not None and not build.switches and not store.units(kind) \
                    and not store.intents([kind]):
                raise CompileError([error(
                    "E1215", f"{build.root} has no P4 switch artifacts (<switch>/p4info.txtpb)",
                    hint="compile with the p4 backend, or choose another --target")])
            out.append(P4RuntimeTarget(
                build, tls=_tls(opts["ca"], opts["cert"], opts["key"], opts["tls_server_name"]),
                election_id=opts["election_id"], role=opts["role"], batch=opts["batch"],
                timeout=opts["timeout"], addresses=opts["address_map"],
                thrift=parse_addresses(opts["thrift"], "--thrift"), jobs=opts["jobs"]))
        elif kind == "openstack":
            if build is not None and not any(h.platform == "openstack" and h.stack
                                             for h in build.hosts) and not store.units(kind) \
                    and not store.intents([kind]):
                raise CompileError([error(
                    "E1215", f"{build.root} has no OpenStack artifacts (<host>/stack.yaml)",
                    hint="compile with the vnf backend, or choose another --target")])
            out.append(OpenStackTarget(build, timeout=opts["stack_timeout"],
                                       poll=opts["stack_poll"],
                                       parameters=parse_stack_params(opts["stack_params"])))
        elif kind == "osm":
            if build is not None and not any(any(h.directory.glob("nsd-*.yaml"))
                                             for h in build.hosts) and not store.units(kind) \
                    and not store.intents([kind]):
                raise CompileError([error(
                    "E1215", f"{build.root} has no OSM descriptors (<host>/nsd-*.yaml)",
                    hint="compile with the vnf backend, or choose another --target")])
            out.append(OsmTarget(build, timeout=opts["stack_timeout"], poll=opts["stack_poll"],
                                 vim_account=opts["vim_account"],
                                 vlds=parse_vlds(opts["osm_vlds"]),
                                 config=opts["osm_config"]))
        else:
            if build is not None and build.local_plan is None and not store.units(kind) \
                    and not store.intents([kind]):
                raise CompileError([error(
                    "E1215", f"{build.root} has no local target plan (local.json)",
                    hint="compile with the vnf backend, or choose another --target")])
            out.append(LocalTarget(build, prefix=opts["local_prefix"],
                                   data_plane=opts["data_plane"]))
    return out


def _runtime(require_build: bool):
    """Open the store and build, make the targets, and hand them to the command."""

    def wrap(fn):
        @wraps(fn)
        def inner(build_dir, targets, addresses, state, **opts):
            opts["address_map"] = parse_addresses(addresses)
            if opts["local_prefix"] is not None:
                from .local import check_prefix

                check_prefix(opts["local_prefix"])
            build = load_build(build_dir, opts["address_map"]) if build_dir else None
            with StateStore(Path(state) if state else default_state_path()) as store:
                ts = _targets(_kinds(targets, store, opts), build, store, opts)
                return fn(build=build, store=store, targets=ts, **{
                    k: v for k, v in opts.items() if k in fn.__code__.co_varnames})
        return inner

    return wrap


_QUIET = click.option("--quiet", "-q", is_flag=True,
                      help="No progress display (the plan and errors still print).")


@click.command("deploy")
@_options(require_build=True)
@click.option("--dry-run", is_flag=True, help="Show the plan and stop (same as `plan`).")
@_QUIET
@_guard
@_runtime(require_build=True)
def deploy_cmd(build, store, targets, jobs: int | None = None, dry_run: bool = False,
               quiet: bool = False) -> None:
    """Deploy a build: apply only what differs; roll everything back on failure (or on
    SIGINT, SIGTERM, SIGHUP); first undo what a killed deploy or destroy left."""
    from ..display.progress import DeployProgress
    from .deployment import apply, begin, lock, plan
    from .interrupt import Interrupt

    interrupt = Interrupt("deploy")
    with interrupt.handling():
        if dry_run:
            lock(store)
            click.echo(asyncio.run(plan(targets, store)).render())
            return
        progress = DeployProgress(quiet=quiet)
        try:
            asyncio.run(begin(targets, store, progress=progress, jobs=jobs))
            the_plan = asyncio.run(plan(targets, store))
            progress.close()
            click.echo(the_plan.render())
            if the_plan.empty:
                click.echo("Nothing to do: the targets already run this build.", err=True)
            result = asyncio.run(apply(the_plan, targets, store, build=build,
                                       progress=progress, interrupt=interrupt, jobs=jobs))
        finally:
            progress.close()
    if result.changed:
        click.echo(f"Applied (deployment {result.deployment}).", err=True)


@click.command("plan")
@_options(require_build=True)
@click.option("--destroy", is_flag=True, help="Plan a destroy instead of a deploy.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@_guard
@_runtime(require_build=True)
def plan_cmd(build, store, targets, destroy: bool = False, fmt: str = "text") -> None:
    """Show what deploy would change, and any drift (changes made out of band)."""
    from .deployment import plan

    the_plan = asyncio.run(plan(targets, store, destroy=destroy))
    if fmt == "json":
        click.echo(json.dumps(the_plan.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(the_plan.render())


@click.command("status")
@_options(require_build=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@_guard
@_runtime(require_build=False)
def status_cmd(build, store, targets, fmt: str = "text") -> None:
    """Live state per service and node: packets, drops, CE marks, queue delay."""
    from .deployment import status
    from .status import render_status

    rows = asyncio.run(status(targets, store))
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2, sort_keys=True))
    else:
        click.echo(render_status(rows))


@click.command("destroy")
@_options(require_build=False)
@_QUIET
@_guard
@_runtime(require_build=False)
def destroy_cmd(build, store, targets, jobs: int | None = None, quiet: bool = False) -> None:
    """Remove what mosaico deployed (read from the state store), in reverse order, and
    what a killed deploy or destroy left (its write-ahead record)."""
    from ..display.progress import DeployProgress
    from .deployment import destroy
    from .interrupt import Interrupt

    interrupt = Interrupt("destroy")
    with interrupt.handling():
        progress = DeployProgress(quiet=quiet)
        try:
            result = asyncio.run(destroy(targets, store, progress=progress,
                                         interrupt=interrupt, jobs=jobs))
        finally:
            progress.close()
    click.echo(result.plan.render())
    recovered = len(result.recovered.undone) if result.recovered else 0
    if result.changed:
        click.echo("Destroyed.", err=True)
    elif recovered:
        click.echo(f"Removed what an interrupted run left ({recovered} step"
                   f"{'s' if recovered != 1 else ''} undone); nothing else to destroy.",
                   err=True)
    else:
        click.echo("Nothing to destroy.", err=True)


# --------------------------------------------------------------------------- target serve


@click.group("target")
def target_group() -> None:
    """Run a target locally (the reference P4Runtime switch)."""


@target_group.command("serve")
@click.argument("switch_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Address to serve on (default: the switch's p4runtime address in "
                   "../ir.json — for a build directory, the one its switches share — else "
                   "127.0.0.1:9559).")
@click.option("--device-id", type=int, default=None,
              help="P4Runtime device id (default: the switch's, else 1).")
@click.option("--devices", "device_range", default=None, metavar="IDS",
              help="Host many devices in this one process, each with its own pipeline, "
                   "entries and arbitration: device ids such as 1-1000 or 1,4,10-19, each "
                   "starting with DIR's P4Info (or none with --no-pipeline).")
@click.option("--max-streams", type=click.IntRange(1, 4096), default=None,
              help="Open StreamChannels admitted at once over all devices (default 16 for "
                   "one device, 128 for many); each device admits 16.")
@click.option("--no-pipeline", is_flag=True,
              help="Start without the directory's P4Info: wait for "
                   "SetForwardingPipelineConfig, as a fresh switch does.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-client-ca", type=click.Path(exists=True, dir_okay=False),
              help="Require client certificates signed by this CA.")
@click.option("--roles", "roles_file", type=click.Path(exists=True, dir_okay=False),
              help='Role configuration (JSON: {"roles": {NAME: {"write": [P4 object, ...], '
                   '"packet_replication": bool, "pipeline": bool}}}); without it only the '
                   'default role (full access) exists.')
@_guard
def serve_cmd(switch_dir: str, listen: str | None, device_id: int | None,
              device_range: str | None, max_streams: int | None, no_pipeline: bool,
              tls_cert, tls_key, tls_client_ca, roles_file) -> None:
    """Serve a switch's P4Info as a conforming P4Runtime switch (no data plane).

    DIR is a build's switch directory (BUILD/s1), or a whole build directory: then every
    switch of the build is one device of this process, with its device id and program —
    as one multi-device P4Runtime server would host them.
    """
    from .build import parse_listen
    from .roles import NO_ROLES, RoleConfig, RoleConfigError
    from .server import MultiDeviceTarget, TlsServerConfig, serve

    d = Path(switch_dir)
    whole_build = (d / "manifest.json").is_file() and not (d / "p4info.txtpb").is_file()
    if whole_build and (device_id is not None or device_range):
        raise CompileError([error(
            "E1231", "--device-id and --devices serve one switch directory; a build "
                     "directory's switches keep their own device ids",
            hint=f"point at {d}/<switch> to serve one program under many device ids")])
    if device_id is not None and device_range:
        raise CompileError([error("E1231", "--device-id and --devices are exclusive",
                                  hint="--devices 1-1000 serves device ids 1 to 1000")])
    try:
        roles = RoleConfig.load(Path(roles_file)) if roles_file else NO_ROLES
    except RoleConfigError as e:
        raise CompileError([error("E1231", f"--roles {e}",
                                  hint="see `mosaico target serve --help` for the format")]
                           ) from None
    if bool(tls_cert) != bool(tls_key):
        raise CompileError([error("E1217", "--tls-cert and --tls-key go together")])
    tls = TlsServerConfig(Path(tls_cert), Path(tls_key),
                          Path(tls_client_ca) if tls_client_ca else None) if tls_cert else None
    if whole_build:
        devices, declared_listen, what = _build_devices(d, no_pipeline, roles)
    else:
        declared = _declared_switch(d)
        declared_listen = declared.get("p4runtime")
        p4info = None if no_pipeline else _switch_p4info(d)
        ids = _device_ids(device_range) if device_range else [
            device_id if device_id is not None else int(declared.get("device_id", 1))]
        multi = MultiDeviceTarget.of(ids, p4info, roles=roles)
        devices = list(multi.devices.values())
        what = f"{d.name} (device {ids[0]})" if len(ids) == 1 else \
            f"{d.name} ({len(ids)} devices, ids {_ranges(ids)})"
    listen = parse_listen(listen or declared_listen or "127.0.0.1:9559")
    if len(devices) == 1 and not whole_build:
        target = devices[0]
        if max_streams is not None:
            target.max_streams = max_streams
    else:
        target = MultiDeviceTarget(devices, **(
            {"max_streams": max_streams} if max_streams is not None else {}))

    def ready(handle) -> None:
        host = listen.rpartition(":")[0]
        click.echo(f"reference P4Runtime target {what} listening on {host}:{handle.port}",
                   err=True)
        sys.stderr.flush()

    try:
        serve(target, listen, tls, ready)
    except (OSError, RuntimeError) as e:
        raise CompileError([error("E1231", f"cannot listen on {listen}: {e}")]) from None


def _switch_p4info(d: Path):
    from .schema import SchemaError, load_p4info

    try:
        return load_p4info(d / "p4info.txtpb").p4info
    except FileNotFoundError:
        raise CompileError([error("E1216", f"{d} has no p4info.txtpb",
                                  hint="point at BUILD_DIR/<switch>, or at BUILD_DIR to "
                                       "serve all its switches")]) from None
    except SchemaError as e:
        raise CompileError([error("E1216", f"{d / 'p4info.txtpb'}: {e}")]) from None


def _build_devices(root: Path, no_pipeline: bool, roles):
    """One device per switch of the build, with its device id and program (switches with
    the same P4Info share one parse); the address they all declare, if they share one."""
    from .build import load_build
    from .schema import SchemaError, load_p4info
    from .server import Programs, ReferenceTarget

    build = load_build(root)
    if not build.switches:
        raise CompileError([error("E1231", f"{root} has no P4 switch (<switch>/p4info.txtpb)",
                                  hint="compile with the p4 backend")])
    by_id: dict[int, list[str]] = {}
    for sw in build.switches:
        by_id.setdefault(sw.device_id, []).append(sw.name)
    clash = {i: names for i, names in by_id.items() if len(names) > 1}
    if clash:
        raise CompileError([error(
            "E1231", f"{len(clash)} device id(s) of {root} are given to several switches: "
                     "one server cannot host them all",
            notes=[Note(f"device id {i}: {', '.join(n[:5])}" + (" ..." if len(n) > 5 else ""))
                   for i, n in sorted(clash.items())[:5]],
            hint="give each switch its own device_id in the topology, or serve each switch "
                 "directory on its own address")])
    programs = Programs()
    parsed: dict[bytes, object] = {}  # P4Info text → its message: parse each text once
    devices = []
    for sw in build.switches:
        p4info = None
        if not no_pipeline:
            text = sw.p4info.read_bytes()
            if text not in parsed:
                try:
                    parsed[text] = load_p4info(sw.p4info).p4info
                except SchemaError as e:
                    raise CompileError([error("E1216", f"{sw.p4info}: {e}")]) from None
            p4info = parsed[text]
        dc = sw.device_config
        devices.append(ReferenceTarget(sw.device_id, p4info,
                                       dc.read_bytes() if dc and p4info is not None else b"",
                                       roles=roles, programs=programs))
    addresses = {sw.address for sw in build.switches}
    shared = addresses.pop() if len(addresses) == 1 else None
    ids = sorted(by_id)
    return devices, shared, f"{root.name} ({len(devices)} switches, device ids {_ranges(ids)})"


def _device_ids(text: str) -> list[int]:
    """``1-1000`` or ``1,4,10-19`` → the ids, each once; anything else → E1231."""
    ids: dict[int, None] = {}
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            raise CompileError([error(
                "E1231", f"--devices {text!r}: {part.strip()!r} is not an id or a range A-B "
                         "(A <= B)", hint="for example --devices 1-1000 or --devices 1,4,10-19")])
        for i in range(int(lo), int(hi if dash else lo) + 1):
            ids[i] = None
        if len(ids) > 100_000:
            raise CompileError([error("E1231", f"--devices {text!r} names more than "
                                               "100,000 devices")])
    return list(ids)


def _ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``1-3,7``."""
    out: list[str] = []
    for _, run in itertools.groupby(enumerate(sorted(ids)), key=lambda p: p[1] - p[0]):
        xs = [x for _, x in run]
        out.append(f"{xs[0]}-{xs[-1]}" if len(xs) > 1 else str(xs[0]))
    return ",".join(out)


def _declared_switch(d: Path) -> dict:
    """The switch's declaration in the build's ``ir.json`` (address, device id), if any."""
    try:
        ir = json.loads((d.parent / "ir.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    for topo in ir.get("topologies", []):
        for sw in topo.get("switches", []):
            if sw.get("name") == d.name:
                return sw
    return {}
