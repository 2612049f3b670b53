"""Reading generated P4 back: declarations with their annotations and widths, and a small
interpreter for the statement subset the templates emit.

Both work on the tree of mosaico's own P4 syntax checker, so the tests compare the P4 text
itself — not the plan that produced it — against P4Info and against the integer model.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

from mosaico_dsl.backends.p4 import syntax

# v1model's standard_metadata fields the programs read (v1model.p4 is not parsed here).
STANDARD_METADATA = {
    "ingress_port": 9, "egress_spec": 9, "egress_port": 9, "instance_type": 32,
    "packet_length": 32, "enq_timestamp": 32, "enq_qdepth": 19, "deq_timedelta": 32,
    "deq_qdepth": 19, "ingress_global_timestamp": 48, "egress_global_timestamp": 48,
    "mcast_grp": 16, "egress_rid": 16, "checksum_error": 1, "priority": 3, "parser_error": 8,
}


def parse_files(files: Mapping[str, str], main: str) -> Tree:
    return syntax.parse(main, files)[0]


def annotations(node: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in node.children:
        if isinstance(child, Tree) and child.data == "annotations":
            for a in child.children:
                name = str(a.children[0])
                args = [_literal(x) for x in a.children[1:]]
                out[name] = args[0] if len(args) == 1 else args
    return out


def _literal(t: Tree) -> Any:
    if t.data == "string_lit":
        return str(t.children[0])[1:-1]
    if t.data == "int_lit":
        return int_value(str(t.children[0]))[0]
    return t


def int_value(text: str) -> tuple[int, int | None]:
    """``32w0xFF`` → (255, 32); ``5`` → (5, None)."""
    width = None
    for sep in ("w", "s"):
        head, found, rest = text.partition(sep)
        if found and head.isdigit() and not text.lower().startswith("0x"):
            width, text = int(head), rest
            break
    return int(text.replace("_", ""), 0), width


def _name(node: Tree) -> str:
    return next(str(c) for c in node.children if isinstance(c, Token) and c.type == "NAME")


@dataclass
class Types:
    """Widths of named types, header/struct fields and control parameters."""

    typedefs: dict[str, int] = field(default_factory=dict)
    composites: dict[str, dict[str, Tree]] = field(default_factory=dict)

    def bits(self, t: Tree) -> int:
        match t.data:
            case "bit_type" | "int_type":
                return int(str(t.children[0]))
            case "bit1_type" | "bool_type":
                return 1
            case "type":
                return self.bits(t.children[0])
            case "named_type":
                return self.typedefs[str(t.children[0])]
        raise KeyError(f"no width for {t.data}")

    def path_bits(self, root_type: str, path: list[str]) -> int:
        if root_type == "standard_metadata_t":
            return STANDARD_METADATA[path[0]]
        fields = self.composites[root_type]
        t = fields[path[0]]
        if len(path) == 1:
            return self.bits(t)
        return self.path_bits(str(t.children[0]), path[1:])


def types_of(tree: Tree) -> Types:
    types = Types()
    for node in tree.iter_subtrees_topdown():
        if node.data == "typedef_decl":
            t = next(c for c in node.children if isinstance(c, Tree) and c.data != "annotations")
            types.typedefs[_name(node)] = types.bits(t)
        elif node.data in ("header_decl", "struct_decl"):
            fields = {}
            for f in node.children:
                if isinstance(f, Tree) and f.data == "field":
                    t = next(c for c in f.children if isinstance(c, Tree)
                             and c.data != "annotations")
                    fields[_name(f)] = t
            types.composites[_name(node)] = fields
    return types


def path_of(e: Tree) -> list[str] | None:
    if e.data == "name":
        return [str(e.children[0])]
    if e.data == "member_access":
        base = path_of(e.children[0])
        member = e.children[1]
        return None if base is None else base + [str(member.children[0])]
    return None


@dataclass
class Declared:
    kind: str  # table | action | counter | direct_counter | meter | register | control
    name: str  # P4 identifier
    control: str
    annotations: dict[str, Any]
    node: Tree


def controls(tree: Tree) -> dict[str, Tree]:
    return {_name(c): c for c in tree.iter_subtrees_topdown() if c.data == "control_decl"}


def declarations(tree: Tree) -> Iterator[Declared]:
    """Tables, actions and extern instances of every control, and extern instances at the
    program's top level (``control`` is then ``""``: shared by ingress and egress)."""
    inside = {id(n) for ctl in controls(tree).values() for n in ctl.iter_subtrees()}
    top = [c for c in tree.iter_subtrees_topdown()
           if c.data == "instantiation" and id(c) not in inside]
    for cname, control in [("", Tree("top", top)), *controls(tree).items()]:
        for child in control.children:
            if not isinstance(child, Tree):
                continue
            if child.data in ("table_decl", "action_decl"):
                yield Declared(child.data[:-5], _name(child), cname, annotations(child), child)
            elif child.data == "instantiation":
                t = next(c for c in child.children if isinstance(c, Tree)
                         and c.data not in ("annotations", "args"))
                kind = str(t.children[0]) if t.data in ("named_type", "specialized_type") \
                    else t.data
                yield Declared(kind, str(child.children[-1]), cname, annotations(child), child)


def control_params(control: Tree) -> dict[str, str]:
    """Parameter name → type name of a control's apply parameters."""
    out = {}
    params = next((c for c in control.children if isinstance(c, Tree) and c.data == "params"),
                  None)
    for p in params.children if params is not None else ():
        t = next(c for c in p.children if isinstance(c, Tree) and c.data != "annotations")
        out[str(p.children[-1])] = str(t.children[0]) if t.data == "named_type" else t.data
    return out


# --------------------------------------------------------------------------- interpreter


class _Exit(Exception):
    pass


_PREPARED: dict[int, tuple] = {}  # per parsed tree: controls, constants, instances


@dataclass
class Interpreter:
    """Runs apply blocks of the generated program over concrete values.

    Fields are flat dotted paths (``hdr.ipv4.ecn``, ``standard_metadata.deq_qdepth``) with
    widths; registers and counters are dicts; ``random`` draws come from ``draws``.
    """

    tree: Tree
    fields: dict[str, int]
    widths: dict[str, int]
    registers: dict[str, dict[int, int]] = field(default_factory=dict)
    counters: dict[str, dict[int, int]] = field(default_factory=dict)
    draws: list[int] = field(default_factory=list)
    dropped: bool = False
    valid: set[str] = field(default_factory=set)  # valid headers: {"hdr.ipv4", ...}
    entries: dict[int, list] = field(default_factory=dict)  # table id → P4Runtime entries
    meter_color: Callable[[str, int], int] = lambda meter, index: 0
    clones: list[int] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # tables in the order they were applied

    def __post_init__(self) -> None:
        cached = _PREPARED.get(id(self.tree))
        if cached is not None and cached[0] is self.tree:
            (_, self.controls, self.consts, self.instances, self.ctor_args, self.tables,
             self.actions, self.action_ids) = cached
            return
        self._prepare()
        _PREPARED[id(self.tree)] = (self.tree, self.controls, self.consts, self.instances,
                                    self.ctor_args, self.tables, self.actions, self.action_ids)

    def _prepare(self) -> None:
        self.controls = controls(self.tree)
        self.consts: dict[str, tuple[int, int | None]] = {}
        types = types_of(self.tree)
        for node in self.tree.children:
            if isinstance(node, Tree) and node.data == "const_decl":
                t = next(c for c in node.children if isinstance(c, Tree)
                         and c.data not in ("annotations",))
                v = self.expr(node.children[-1], [{}])
                self.consts[_name(node)] = (v[0], types.bits(t))
        self.tables: dict[str, Tree] = {}
        self.actions: dict[str, Tree] = {}
        self.action_ids: dict[int, str] = {}
        for c in self.controls.values():
            for child in c.children:
                if isinstance(child, Tree) and child.data == "table_decl":
                    self.tables[_name(child)] = child
                elif isinstance(child, Tree) and child.data == "action_decl":
                    self.actions[_name(child)] = child
                    ann = annotations(child)
                    if "id" in ann:
                        self.action_ids[ann["id"]] = _name(child)
        self.instances: dict[str, str] = {}
        self.ctor_args: dict[str, list[Tree]] = {}
        for c in self.controls.values():
            for child in c.children:
                if isinstance(child, Tree) and child.data == "instantiation":
                    t = child.children[0] if child.children[0].data != "annotations" \
                        else child.children[1]
                    self.instances[str(child.children[-1])] = str(t.children[0])
                    args = next((a for a in child.children if isinstance(a, Tree)
                                 and a.data == "args"), None)
                    self.ctor_args[str(child.children[-1])] = list(args.children) if args else []

    # -- statements
    def run_control(self, name: str) -> None:
        control = self.controls[name]
        body = next(c for c in control.children if isinstance(c, Tree) and c.data == "block")
        try:
            self.block(body, [{}])
        except _Exit:
            pass

    def block(self, node: Tree, scopes: list[dict]) -> None:
        scopes = scopes + [{}]
        for st in node.children:
            if isinstance(st, Tree):
                self.stmt(st, scopes)

    def stmt(self, st: Tree, scopes: list[dict]) -> None:
        match st.data:
            case "block":
                self.block(st, scopes)
            case "var_decl":
                t = next(c for c in st.children if isinstance(c, Tree) and c.data != "annotations")
                bits = {"bool_type": 1}.get(t.data) or int(str(t.children[0]))
                name = _name(st)
                init = next((c for c in st.children[2:] if isinstance(c, Tree)), None) \
                    if len(st.children) > 2 else None
                value = self.expr(init, scopes)[0] if init is not None else 0
                scopes[-1][name] = [value % (1 << bits), bits]
            case "expr_stmt":
                target = st.children[0]
                if len(st.children) == 2:
                    value, _ = self.expr(st.children[1], scopes)
                    self.assign(target, value, scopes)
                else:
                    self.call(target, scopes)
            case "if_stmt":
                cond = self.expr(st.children[0], scopes)[0]
                if cond:
                    self.stmt(st.children[1], scopes)
                elif len(st.children) > 2:
                    self.stmt(st.children[2], scopes)
            case "exit_stmt":
                raise _Exit
            case "switch_stmt":
                ran = self.expr(st.children[0], scopes)[0]
                cases = st.children[1:]
                for case in cases:
                    label = str(case.children[0]) if len(case.children) == 2 else "default"
                    if label == ran or label == "default":
                        self.block(case.children[-1], scopes)
                        break
            case _:
                raise NotImplementedError(st.data)

    def lookup(self, name: str, scopes: list[dict]):
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        return None

    def assign(self, target: Tree, value: int, scopes: list[dict]) -> None:
        path = path_of(target)
        if path is None:
            raise NotImplementedError(target.data)
        if len(path) == 1:
            cell = self.lookup(path[0], scopes)
            cell[0] = value % (1 << cell[1])
            return
        key = self._field(path, scopes)
        self.fields[key] = value % (1 << self.widths[key])

    def _field(self, path: list[str], scopes: list[dict]) -> str:
        alias = self.lookup(path[0], scopes)
        root = alias if isinstance(alias, str) else path[0]
        return ".".join([root, *path[1:]])

    # -- calls
    def call(self, node: Tree, scopes: list[dict]) -> Any:
        func = node.children[0]
        args = node.children[1].children if len(node.children) > 1 and node.children[1] \
            is not None else []
        path = path_of(func)
        if path == ["random"]:
            self.assign(args[0], self.draws.pop(0), scopes)
            return None
        if path == ["mark_to_drop"]:
            self.dropped = True
            return None
        if path == ["hash"]:
            data = [self.expr(x, scopes) for x in args[3].children[0].children]
            raw = b"".join(v.to_bytes(((w or 32) + 7) // 8, "big") for v, w in data)
            base, top = self.expr(args[2], scopes)[0], self.expr(args[4], scopes)[0]
            self.assign(args[0], base + (zlib.crc32(raw) % top if top else 0), scopes)
            return None
        if path == ["clone"]:
            self.clones.append(self.expr(args[1], scopes)[0])
            return None
        if path is not None and path[-1] == "isValid":
            return self._field(path[:-1], scopes) in self.valid
        if path is not None and len(path) == 2 and path[1] == "apply" \
                and path[0] in self.tables:
            return self._apply_table(path[0], scopes)
        if path is not None and len(path) == 2 and path[1] == "execute_meter":
            color = self.meter_color(path[0], self.expr(args[0], scopes)[0])
            self.assign(args[1], color, scopes)
            return None
        if path is not None and len(path) == 2:
            obj, method = path
            kind = self.instances.get(obj)
            if method == "read":
                value = self.registers.setdefault(obj, {}).get(self.expr(args[1], scopes)[0], 0)
                self.assign(args[0], value, scopes)
                return None
            if method == "write":
                self.registers.setdefault(obj, {})[self.expr(args[0], scopes)[0]] = \
                    self.expr(args[1], scopes)[0]
                return None
            if method == "count":
                cells = self.counters.setdefault(obj, {})
                i = self.expr(args[0], scopes)[0]
                cells[i] = cells.get(i, 0) + 1
                return None
            if method == "apply" and kind in self.controls:
                return self._apply_control(kind, obj, args, scopes)
        raise NotImplementedError(f"call {path}")

    def _apply_table(self, name: str, scopes: list[dict]) -> tuple[bool, str]:
        """Look up like BMv2, run the action; returns (hit, action name)."""
        from p4_tables import lookup

        table = self.tables[name]
        self.applied.append(name)
        keys = [k for prop in table.children if getattr(prop, "data", "") == "table_key"
                for k in prop.children]
        values = [self.expr(k.children[0], scopes)[0] for k in keys]
        entry = lookup(self.entries.get(annotations(table)["id"], []), values)
        if entry is not None:
            action = self.action_ids[entry.action.action.action_id]
            args = [int.from_bytes(p.value, "big") for p in entry.action.action.params]
        else:
            default = next(p for p in table.children
                           if getattr(p, "data", "") == "table_default")
            action = str(path_of(default.children[-1].children[0])[0])
            args = []
        self._run_action(action, args)
        return entry is not None, action

    def _run_action(self, name: str, args: list[int]) -> None:
        node = self.actions[name]
        params = next((c for c in node.children if isinstance(c, Tree) and c.data == "params"),
                      None)
        scope: dict[str, Any] = {}
        for p, v in zip(params.children if params is not None else [], args, strict=True):
            t = next(c for c in p.children if isinstance(c, Tree))
            bits = int(str(t.children[0].children[0])) if t.data == "type" else \
                int(str(t.children[0]))
            scope[str(p.children[-1])] = [v, bits]
        body = next(c for c in node.children if isinstance(c, Tree) and c.data == "block")
        self.block(body, [scope])

    def _apply_control(self, kind: str, instance: str, args, scopes) -> None:
        control = self.controls[kind]
        inner: dict[str, Any] = {}
        params = next((c for c in control.children if isinstance(c, Tree)
                       and c.data == "params"), None)
        for p, a in zip(params.children if params is not None else [], args, strict=True):
            pname = str(p.children[-1])
            apath = path_of(a)
            if apath is not None and self.lookup(apath[0], scopes) is None:
                inner[pname] = self._field(apath, scopes)  # alias to a field subtree
            elif apath is not None and len(apath) == 1:
                inner[pname] = self.lookup(apath[0], scopes)  # by reference (copy-in/out)
            else:
                v = self.expr(a, scopes)
                inner[pname] = [v[0], v[1] or 64]
        ctor = next((c for c in control.children if isinstance(c, Tree)
                     and c.data == "ctor_params"), None)
        if ctor is not None and ctor.children:
            for p, a in zip(ctor.children[0].children, self.ctor_args[instance], strict=True):
                v = self.expr(a, scopes)
                inner[str(p.children[-1])] = [v[0], v[1] or 64]
        body = next(c for c in control.children if isinstance(c, Tree) and c.data == "block")
        self.block(body, [inner])

    # -- expressions
    def expr(self, e: Tree, scopes: list[dict]) -> tuple[int, int | None]:
        match e.data:
            case "int_lit":
                return int_value(str(e.children[0]))
            case "true_":
                return 1, 1
            case "false_":
                return 0, 1
            case "member_access" if e.children[0].data == "call":
                result = self.call(e.children[0], scopes)
                member = str(e.children[1].children[0])
                return (int(result[0]), 1) if member == "hit" else (result[1], None)
            case "name" | "member_access":
                path = path_of(e)
                if len(path) == 1:
                    cell = self.lookup(path[0], scopes)
                    if cell is not None and not isinstance(cell, str):
                        return cell[0], cell[1]
                    if path[0] in self.consts:
                        return self.consts[path[0]]
                key = self._field(path, scopes)
                return self.fields.get(key, 0), self.widths[key]
            case "cast":
                bits = int(str(e.children[0].children[0]))
                return self.expr(e.children[1], scopes)[0] % (1 << bits), bits
            case "not_":
                return int(not self.expr(e.children[0], scopes)[0]), 1
            case "slice":
                v, _ = self.expr(e.children[0], scopes)
                hi, lo = self.expr(e.children[1], scopes)[0], self.expr(e.children[2], scopes)[0]
                return (v >> lo) & ((1 << (hi - lo + 1)) - 1), hi - lo + 1
            case "binop":
                return self.binop(e, scopes)
            case "call":
                return int(bool(self.call(e, scopes))), 1
            case "error_member":
                return (0 if str(e.children[0]) == "NoError" else 1), None
        raise NotImplementedError(e.data)

    def binop(self, e: Tree, scopes: list[dict]) -> tuple[int, int | None]:
        left, op, right = e.children[0], e.children[1], e.children[2]
        op = str(op) if isinstance(op, Token) else op
        if op == "&&":
            return int(bool(self.expr(left, scopes)[0]) and bool(self.expr(right, scopes)[0])), 1
        if op == "||":
            return int(bool(self.expr(left, scopes)[0]) or bool(self.expr(right, scopes)[0])), 1
        a, wa = self.expr(left, scopes)
        b, wb = self.expr(right, scopes)
        _check_widths(op, wa, wb)
        w = wa or wb
        ops: dict[str, Callable[[int, int], int]] = {
            "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
            "<<": lambda x, y: x << y, ">>": lambda x, y: x >> y, "&": lambda x, y: x & y,
            "|": lambda x, y: x | y, "^": lambda x, y: x ^ y,
        }
        cmps: dict[str, Callable[[int, int], bool]] = {
            "==": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y,
            "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
        }
        if op in cmps:
            return int(cmps[op](a, b)), 1
        if op == "|+|":
            return min(a + b, (1 << w) - 1), w
        value = ops[op](a, b)
        if op in ("<<", ">>"):
            w = wa
        return (value % (1 << w) if w else value), w


class WidthError(AssertionError):
    """Operands p4c's type checker would reject: bit<N> and bit<M>, N != M, no cast."""


def _check_widths(op: str, wa: int | None, wb: int | None) -> None:
    """P4_16 (8.6 "Operations on fixed-width bit types"): both operands of an arithmetic,
    bitwise or comparison operator have the same width; an unsized integer literal takes
    the other's. A shift's amount may have any width; its left operand needs one."""
    if op in ("<<", ">>"):
        if wa is None:
            raise WidthError(f"`{op}` of an unsized value: p4c needs a width on the left")
        return
    if wa is not None and wb is not None and wa != wb:
        raise WidthError(f"`{op}` between bit<{wa}> and bit<{wb}>: p4c needs a cast")


def all_widths(tree: Tree) -> dict[str, int]:
    """Widths of every ``hdr.*``, ``meta.*`` and ``standard_metadata.*`` field."""
    types = types_of(tree)
    out = {f"standard_metadata.{k}": v for k, v in STANDARD_METADATA.items()}

    def walk(prefix: str, type_name: str) -> None:
        for name, t in types.composites[type_name].items():
            inner = str(t.children[0]) if t.data == "named_type" else None
            if inner in types.composites:
                walk(f"{prefix}.{name}", inner)
            elif t.data != "type" or t.children[0].data != "varbit_type":
                out[f"{prefix}.{name}"] = types.bits(t)

    walk("hdr", "headers_t")
    walk("meta", "metadata_t")
    return out
