"""Expressions → typed IR values, reporting every type and unit error on the way.

Checking an expression *is* evaluating it: the checker needs the value anyway (a range
check, a cost model, a DualQ constraint), so one evaluator returns ``Typed(type, value)``
or ``None`` after reporting a diagnostic. ``None`` propagates silently so that one mistake
is reported once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..diagnostics import Diagnostic, Note, error
from ..ir.predicate import FALSE, TRUE, And, Cmp, Field, Not, Or, Predicate
from ..ir.values import (
    AclRule,
    MacAddress,
    NodeRef,
    ValueRange,
    ValueSet,
    canonical_set,
    format_value,
)
from ..lang import _ast as A
from ..units import Bandwidth, Percent, Quantity, Rate, Size, Time, make_quantity
from . import types as T
from .scope import (
    FunctionBinding,
    HeaderBinding,
    ModuleBinding,
    NodeBinding,
    PackageBinding,
    Scope,
    TopologyBinding,
    ValueBinding,
)

__all__ = ["Typed", "Evaluator", "did_you_mean", "type_name_of"]

Report = Callable[[Diagnostic], None]

_QUANTITY_CLASS = {T.TIME: Time, T.BANDWIDTH: Bandwidth, T.RATE: Rate, T.SIZE: Size,
                   T.PERCENT: Percent}


@dataclass(frozen=True, slots=True)
class Typed:
    type: T.Type
    value: Any


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def type_name_of(b: object) -> str:
    return {ModuleBinding: "a module", PackageBinding: "a package",
            FunctionBinding: "a function", HeaderBinding: "a packet header",
            TopologyBinding: "a topology"}.get(type(b), "not a value")


def _quantity(t: T.Type, base: int | Fraction | float) -> Quantity:
    cls = _QUANTITY_CLASS[t]
    if cls is Percent:
        return Percent(Fraction(base))
    return cls(int(round(base)))


class Evaluator:
    def __init__(self, report: Report, scope: Scope) -> None:
        self.report = report
        self.scope = scope

    def with_scope(self, scope: Scope) -> Evaluator:
        return Evaluator(self.report, scope)

    def _err(self, code: str, message: str, node: A.Node | None, hint: str | None = None,
             notes: Iterable[Note] = ()) -> None:
        self.report(error(code, message, getattr(node, "span", None), hint, notes))

    # ------------------------------------------------------------------ name resolution

    def resolve(self, parts: tuple[str, ...], node: A.Node, *, what: str = "name"):
        """Resolve ``a.b.c`` through packages and modules; report and return None if not."""
        binding = self.scope.lookup(parts[0])
        if binding is None:
            self._err("E0205" if what == "function" else "E0203",
                      f"unknown {what} `{'.'.join(parts)}`", node,
                      did_you_mean(parts[0], self.scope.visible())
                      or (self.import_hint(parts) if what == "function" else None))
            return None
        for i, part in enumerate(parts[1:], start=1):
            prefix = ".".join(parts[:i])
            if isinstance(binding, PackageBinding):
                sub = binding.path + (part,)
                if sub in binding.modules:
                    binding = ModuleBinding(binding.modules[sub])
                    continue
                known = {p[len(binding.path)] for p in binding.modules
                         if p[: len(binding.path)] == binding.path and len(p) > len(binding.path)}
                if any(p[: len(sub)] == sub for p in binding.modules):
                    binding = PackageBinding(sub, binding.modules)
                    continue
                self._err("E0201", f"module `{'.'.join(sub)}` is not imported", node,
                          did_you_mean(part, known) or f"add `import {'.'.join(sub)}`")
                return None
            if isinstance(binding, ModuleBinding):
                member = binding.module.exports.get(part)
                if member is None:
                    self._err("E0205" if what == "function" else "E0202",
                              f"`{prefix}` has no {what if what == 'function' else 'member'} "
                              f"`{part}`", node, did_you_mean(part, binding.module.exports))
                    return None
                binding = member
                continue
            self._err("E0305", f"`{prefix}` is {type_name_of(binding)}; it has no member "
                      f"`{part}`", node)
            return None
        return binding

    def import_hint(self, parts: tuple[str, ...]) -> str | None:
        """Suggest the import that would make ``parts`` resolve, using the stdlib index."""
        from .._resources import stdlib_dir

        modules = sorted(p.stem for p in stdlib_dir().joinpath("std").glob("*.mosaico"))
        if len(parts) > 1 and parts[0] in modules:
            return (f"write `std.{'.'.join(parts)}`, or import the module under that name: "
                    f"`import std.{parts[0]} as {parts[0]}`")
        for m in modules:
            text = stdlib_dir().joinpath("std", f"{m}.mosaico").read_text(encoding="utf-8")
            if f"function {parts[-1]}(" in text:
                return f"import it: `from std.{m} import {parts[-1]}`"
        return None

    # ------------------------------------------------------------------ values

    def value(self, e: A.Expr, expected: T.Type | None = None) -> Typed | None:
        """Evaluate ``e``; with ``expected``, convert to it or report why not."""
        got = self._eval(e, expected)
        if got is None or expected is None:
            return got
        return self.coerce(got, expected, e)

    def coerce(self, got: Typed, expected: T.Type, node: A.Node) -> Typed | None:
        t, v = got.type, got.value
        if t == expected or expected == T.ANY:
            return got
        if t.name in T.GENERICS and expected.name == t.name:
            items = v.items if isinstance(v, ValueSet) else (v if isinstance(v, tuple) else ())
            if t.name == "range":
                lo = self.coerce(Typed(t.elem, v.lo), expected.elem, node)
                hi = self.coerce(Typed(t.elem, v.hi), expected.elem, node)
                return None if lo is None or hi is None else Typed(
                    expected, ValueRange(lo.value, hi.value))
            out = []
            for item in items:
                if isinstance(item, ValueRange):  # sets of ports may hold ranges
                    r = self.coerce(Typed(T.range_of(t.elem), item), T.range_of(expected.elem),
                                    node)
                    if r is None:
                        return None
                    out.append(r.value)
                    continue
                c = self.coerce(Typed(t.elem, item), expected.elem, node)
                if c is None:
                    return None
                out.append(c.value)
            return Typed(expected, canonical_set(out) if t.name == "set" else tuple(out))
        if (t, expected) == (T.INT, T.FLOAT):
            return Typed(T.FLOAT, float(v))
        if (t, expected) in ((T.INT, T.PORT), (T.PORT, T.INT)):
            if expected == T.PORT and not 0 <= v <= 65535:
                self._err("E0304", f"port {v} is out of range", node, "a port is 0..65535")
                return None
            return Typed(expected, v)
        if (t, expected) == (T.IPV4, T.PREFIX):
            return Typed(T.PREFIX, IPv4Network(f"{v}/32"))
        if (t, expected) == (T.ENDPOINT, T.NODE):
            return Typed(T.NODE, v)
        if t == T.ENDPOINT and expected == T.IPV4:
            b = self.scope.lookup(v.name)
            if isinstance(b, NodeBinding) and b.ip is not None:
                return Typed(T.IPV4, b.ip)
        if t == T.STRING and expected in (T.ENDPOINT, T.NODE):
            b = self.scope.lookup(v)
            if isinstance(b, NodeBinding) and (expected == T.NODE or b.kind == "endpoint"):
                return Typed(expected, NodeRef(v))
            nodes = [n for n, x in self._nodes()]
            self._err("E0207", f"no {'endpoint' if expected == T.ENDPOINT else 'node'} "
                      f"named {v!r} in the topology", node, did_you_mean(v, nodes))
            return None
        if t == T.NODE and expected == T.ENDPOINT:
            self._err("E0301", f"`{v}` is a {self._node_kind(v.name)}, not an endpoint", node,
                      "forward and mirror to endpoints declared with `endpoint NAME { ip: ... }`")
            return None
        if T.is_quantity(t) and T.is_quantity(expected) or (
                T.is_quantity(expected) and t in (T.INT, T.FLOAT)):
            found = f"a plain number ({format_value(v)})" if not T.is_quantity(t) else \
                f"{t} ({format_value(v)})"
            self._err("E0302", f"expected {expected}, found {found}", node,
                      f"write {T.describe(expected)}")
            return None
        self._err("E0301", f"expected {expected}, found {t}", node,
                  f"write {T.describe(expected)}")
        return None

    def _nodes(self):
        seen = []
        scope: Scope | None = self.scope
        while scope is not None:
            seen.extend((n, b) for n, b in scope.names.items() if isinstance(b, NodeBinding))
            scope = scope.parent
        return seen

    def _node_kind(self, name: str) -> str:
        b = self.scope.lookup(name)
        return b.kind if isinstance(b, NodeBinding) else "node"

    def _eval(self, e: A.Expr, expected: T.Type | None) -> Typed | None:
        match e:
            case A.IntLit(value=v):
                return Typed(T.INT, v)
            case A.FloatLit(value=v):
                return Typed(T.FLOAT, float(v))
            case A.BoolLit(value=v):
                return Typed(T.BOOL, v)
            case A.StringLit(value=v):
                return Typed(T.STRING, v)
            case A.QuantityLit(magnitude=m, unit=u):
                try:
                    q = make_quantity(m, u)
                except ValueError as exc:
                    self._err("E0306", str(exc), e, "use a finer unit or a whole number")
                    return None
                return Typed(T.dim_type(q.dim), q)
            case A.IPv4Lit(address=a):
                return Typed(T.IPV4, a)
            case A.PrefixLit(address=a, length=n):
                try:
                    return Typed(T.PREFIX, IPv4Network(f"{a}/{n}"))
                except ValueError:
                    net = IPv4Network(f"{a}/{n}", strict=False)
                    self._err("E0307", f"{a}/{n} has host bits set", e,
                              f"did you mean {net.with_prefixlen}?")
                    return None
            case A.MacLit(value=v):
                return Typed(T.MAC, MacAddress(v))
            case A.Name(id=name):
                return self._name(name, e)
            case A.Attribute():
                parts = _dotted(e)
                if parts is None:
                    self._err("E0305", "only modules have members here", e)
                    return None
                b = self.resolve(parts, e)
                return None if b is None else self._binding_value(b, ".".join(parts), e)
            case A.ListLit(items=items):
                elem = expected.elem if expected is not None and expected.name == "list" \
                    else None
                vals = [self.value(i, elem) for i in items]
                if any(v is None for v in vals):
                    return None
                et = self._unify([v.type for v in vals], items)
                return None if et is None else Typed(T.list_of(et), tuple(v.value for v in vals))
            case A.SetLit(items=items):
                return self._set(e, items, expected)
            case A.RangeExpr(lo=lo, hi=hi):
                elem = expected.elem if expected is not None and expected.name == "range" \
                    else None
                a, b = self.value(lo, elem), self.value(hi, elem)
                if a is None or b is None:
                    return None
                et = self._unify([a.type, b.type], (lo, hi))
                if et is None:
                    return None
                a, b = self.coerce(a, et, lo), self.coerce(b, et, hi)
                if a is None or b is None:
                    return None
                if not _ordered(et):
                    self._err("E0305", f"a range needs ordered values, not {et}", e)
                    return None
                if a.value > b.value:
                    self._err("E0304", f"empty range {format_value(a.value)}.."
                              f"{format_value(b.value)}", e, "write the lower bound first")
                    return None
                return Typed(T.range_of(et), ValueRange(a.value, b.value))
            case A.UnaryOp(operand=o):
                v = self.value(o)
                if v is None:
                    return None
                if T.is_numeric(v.type) or T.is_quantity(v.type):
                    return Typed(v.type if v.type != T.PORT else T.INT,
                                 -v.value if not T.is_quantity(v.type)
                                 else _quantity(v.type, -v.value.base))
                self._err("E0305", f"cannot negate {v.type}", e)
                return None
            case A.BinOp():
                return self._binop(e)
            case A.Compare():
                return self._compare(e)
            case A.BoolOp(op=op, operands=ops):
                vals = [self.value(o, T.BOOL) for o in ops]
                if any(v is None for v in vals):
                    return None
                f = all if op == "and" else any
                return Typed(T.BOOL, f(v.value for v in vals))
            case A.Not(operand=o):
                v = self.value(o, T.BOOL)
                return None if v is None else Typed(T.BOOL, not v.value)
            case A.Call():
                return self._call(e)
        raise TypeError(f"not an expression: {e!r}")  # pragma: no cover

    def _name(self, name: str, e: A.Expr) -> Typed | None:
        b = self.scope.lookup(name)
        if b is None:
            self._err("E0203", f"unknown name `{name}`", e,
                      did_you_mean(name, self.scope.visible()))
            return None
        return self._binding_value(b, name, e)

    def _binding_value(self, b, name: str, e: A.Expr) -> Typed | None:
        if isinstance(b, ValueBinding):
            return Typed(b.type, b.value)
        if isinstance(b, NodeBinding):
            return Typed(T.ENDPOINT if b.kind == "endpoint" else T.NODE, NodeRef(b.name))
        self._err("E0305", f"`{name}` is {type_name_of(b)}, not a value", e)
        return None

    def _unify(self, types: list[T.Type], nodes) -> T.Type | None:
        if not types:
            return T.ANY
        result = types[0]
        for t, n in zip(types[1:], list(nodes)[1:], strict=True):
            if T.assignable(t, result):
                continue
            if T.assignable(result, t):
                result = t
                continue
            self._err("E0301", f"mixed element types: {result} and {t}", n,
                      "all elements of a list or set have one type")
            return None
        return result

    def _set(self, e: A.SetLit, items, expected: T.Type | None) -> Typed | None:
        elem = expected.elem if expected is not None and expected.name == "set" else None
        vals: list[Typed] = []
        for i in items:
            if isinstance(i, A.RangeExpr):  # {80, 1024..2048}: ranges inside sets
                r = self.value(i, T.range_of(elem) if elem is not None else None)
                if r is None:
                    return None
                vals.append(Typed(r.type.elem, r.value))
            else:
                v = self.value(i, elem)
                if v is None:
                    return None
                vals.append(v)
        et = self._unify([v.type for v in vals], items)
        if et is None:
            return None
        out: list[Any] = []
        for v, node in zip(vals, items, strict=True):
            if isinstance(v.value, ValueRange):
                out.append(v.value)
                continue
            c = self.coerce(v, et, node)
            if c is None:
                return None
            out.append(c.value)
        return Typed(T.set_of(et), canonical_set(out))

    def _binop(self, e: A.BinOp) -> Typed | None:
        a, b = self.value(e.left), self.value(e.right)
        if a is None or b is None:
            return None
        ta = T.INT if a.type == T.PORT else a.type
        tb = T.INT if b.type == T.PORT else b.type
        qa, qb = T.is_quantity(ta), T.is_quantity(tb)
        na, nb = ta in (T.INT, T.FLOAT), tb in (T.INT, T.FLOAT)
        op = e.op
        if op in "+-":
            if na and nb:
                r = a.value + b.value if op == "+" else a.value - b.value
                return Typed(T.INT if ta == tb == T.INT else T.FLOAT, r)
            if qa and ta == tb:
                base = a.value.base + b.value.base if op == "+" else a.value.base - b.value.base
                return Typed(ta, _quantity(ta, base))
            if qa and qb or qa and nb or na and qb:
                return self._unit_mismatch(e, ta, tb)
        elif op == "*":
            if na and nb:
                r = a.value * b.value
                return Typed(T.INT if ta == tb == T.INT else T.FLOAT, r)
            if qa and nb:
                return Typed(ta, _quantity(ta, _mul(a.value.base, b.value)))
            if na and qb:
                return Typed(tb, _quantity(tb, _mul(b.value.base, a.value)))
            if qa and qb:
                self._err("E0305", f"cannot multiply {ta} by {tb}", e,
                          "divide two quantities of one kind to get a plain number")
                return None
        elif op == "/":
            if (nb and b.value == 0) or (qb and b.value.base == 0):
                self._err("E0305", "division by zero", e.right)
                return None
            if na and nb:
                return Typed(T.FLOAT, a.value / b.value)
            if qa and nb:
                return Typed(ta, _quantity(ta, Fraction(a.value.base) / Fraction(b.value)))
            if qa and ta == tb:
                return Typed(T.FLOAT, float(Fraction(a.value.base) / Fraction(b.value.base)))
            if qa and qb:
                return self._unit_mismatch(e, ta, tb)
        self._err("E0305", f"`{op}` is not defined for {ta} and {tb}", e)
        return None

    def _unit_mismatch(self, e: A.BinOp, ta: T.Type, tb: T.Type) -> None:
        self._err("E0302", f"cannot combine {ta} and {tb} with `{e.op}`", e,
                  "both sides need the same unit kind (e.g. 1ms + 500us)")
        return None

    def _compare(self, e: A.Compare) -> Typed | None:
        a = self.value(e.left)
        b = self.value(e.right)
        if a is None or b is None:
            return None
        if e.op == "in":
            if b.type.name not in T.GENERICS and b.type != T.PREFIX:
                self._err("E0305", f"`in` needs a list, set, range or prefix, not {b.type}",
                          e.right)
                return None
            return Typed(T.BOOL, _member(a.value, b.value))
        ta, tb = a.type, b.type
        if not (T.assignable(ta, tb) or T.assignable(tb, ta)):
            if T.is_quantity(ta) or T.is_quantity(tb):
                self._err("E0302", f"cannot compare {ta} with {tb}", e,
                          f"compare {T.describe(ta)} with another")
            else:
                self._err("E0301", f"cannot compare {ta} with {tb}", e)
            return None
        if e.op in ("==", "!="):
            return Typed(T.BOOL, (a.value == b.value) == (e.op == "=="))
        if not _ordered(ta):
            self._err("E0305", f"`{e.op}` needs ordered values, not {ta}", e)
            return None
        x, y = a.value, b.value
        r = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[e.op]
        return Typed(T.BOOL, r)

    def _call(self, e: A.Call) -> Typed | None:
        if not isinstance(e.func, A.Name):
            self._err("E0305", "only builtins can be called in expressions", e,
                      "functions in a chain are written `Name(arg: value)` inside `chain { }`")
            return None
        name = e.func.id
        if name in ("allow", "deny"):
            if len(e.args) != 1:
                self._err("E0305", f"{name}() takes one predicate", e,
                          f"e.g. {name}(ipv4.src in 10.0.0.0/8 and tcp.dport == 22)")
                return None
            p = self.predicate(e.args[0])
            return None if p is None else Typed(T.RULE, AclRule(name, p))
        args = [self.value(a) for a in e.args]
        if any(a is None for a in args):
            return None
        if name == "len":
            if len(args) != 1 or args[0].type.name not in ("list", "set"):
                self._err("E0305", "len() takes one list or set", e)
                return None
            return Typed(T.INT, len(args[0].value))
        if name in ("min", "max"):
            if not args:
                self._err("E0305", f"{name}() needs at least one value", e)
                return None
            t = self._unify([a.type for a in args], e.args)
            if t is None:
                return None
            if not _ordered(t):
                self._err("E0305", f"{name}() needs ordered values, not {t}", e)
                return None
            vals = [self.coerce(a, t, n) for a, n in zip(args, e.args, strict=True)]
            if any(v is None for v in vals):
                return None
            pick = min if name == "min" else max
            return Typed(t, pick(v.value for v in vals))
        self._err("E0203", f"unknown builtin `{name}`", e.func,
                  did_you_mean(name, ["len", "min", "max", "allow", "deny"]))
        return None

    # ------------------------------------------------------------------ conditions

    def condition(self, e: A.Expr) -> bool | None:
        v = self.value(e, T.BOOL)
        return None if v is None else bool(v.value)

    # ------------------------------------------------------------------ predicates

    def predicate(self, e: A.Expr) -> Predicate | None:
        """A ``match`` expression over packet fields → IR predicate (all errors reported)."""
        match e:
            case A.BoolLit(value=v):
                return TRUE if v else FALSE
            case A.BoolOp(op=op, operands=ops):
                parts = [self.predicate(o) for o in ops]
                if any(p is None for p in parts):
                    return None
                return And(tuple(parts)) if op == "and" else Or(tuple(parts))
            case A.Not(operand=o):
                p = self.predicate(o)
                return None if p is None else Not(p)
            case A.Compare():
                return self._field_compare(e)
        self._err("E0607", "a match predicate compares packet fields", e,
                  "e.g. `ipv4.dst == 10.0.2.1 and tcp.dport in {80, 443}`")
        return None

    def field(self, e: A.Expr, *, report: bool = True) -> Field | None:
        if not (isinstance(e, A.Attribute) and isinstance(e.value, A.Name)):
            return None
        b = self.scope.lookup(e.value.id)
        if not isinstance(b, HeaderBinding):
            if report:
                headers = [n for n, x in self._all() if isinstance(x, HeaderBinding)]
                self._err("E0209", f"unknown packet header `{e.value.id}`", e.value,
                          did_you_mean(e.value.id, headers)
                          or f"headers are {', '.join(sorted(headers))}")
            return None
        hf = b.header.fields.get(e.attr)
        if hf is None:
            if report:
                self._err("E0209", f"header `{e.value.id}` has no field `{e.attr}`", e,
                          did_you_mean(e.attr, b.header.fields)
                          or f"its fields are {', '.join(b.header.fields)}")
            return None
        return Field(b.header.name, hf.name, hf.type.name, hf.bits)

    def _all(self):
        out = []
        scope: Scope | None = self.scope
        while scope is not None:
            out.extend(scope.names.items())
            scope = scope.parent
        return out

    def _field_compare(self, e: A.Compare) -> Predicate | None:
        looks_like_field = isinstance(e.left, A.Attribute) and isinstance(e.left.value, A.Name)
        if not looks_like_field:
            if isinstance(e.right, A.Attribute) and self.field(e.right, report=False):
                self._err("E0607", "put the packet field on the left of the comparison", e,
                          "e.g. `ipv4.dst == 10.0.2.1`")
            else:
                self._err("E0607", "the left side of a match comparison must be a packet "
                          "field", e.left, "e.g. `ipv4.src`, `tcp.dport`, `ipv4.ecn`")
            return None
        f = self.field(e.left)
        if f is None:
            return None
        b = self.scope.lookup(e.left.value.id)
        hf = b.header.fields[f.name]
        v = self.value(e.right)
        if v is None:
            return None
        value = self._field_operand(f, hf, e.op, v, e.right)
        return None if value is None else Cmp(f, e.op, value)

    def _field_operand(self, f: Field, hf, op: str, v: Typed, node: A.Expr) -> Any:
        ftype = hf.type
        if ftype == T.IPV4:
            allowed = (T.IPV4, T.PREFIX, T.ENDPOINT)
            if op in ("<", "<=", ">", ">="):
                self._err("E0607", f"`{op}` does not apply to addresses", node,
                          "use `==` with an address or `in` with a prefix or a list of them")
                return None
        else:
            allowed = (ftype, T.INT) if ftype in (T.PORT, T.INT) else (ftype,)
        if op == "in":
            if v.type == T.PREFIX and ftype == T.IPV4:
                return v.value
            if v.type.name not in T.GENERICS:
                self._err("E0607", f"`in` needs a set, list or range, not {v.type}", node,
                          "e.g. `tcp.dport in {80, 443}` or `tcp.dport in 1024..65535`")
                return None
            if v.type.name == "range" and ftype == T.IPV4:
                self._err("E0607", "address ranges are not supported", node,
                          "use a prefix (10.0.0.0/8) or a list of prefixes")
                return None
            items = [v.value] if isinstance(v.value, ValueRange) else list(v.value)
            checked = []
            for item in items:
                if isinstance(item, ValueRange):
                    lo = self._scalar_operand(f, hf, allowed, Typed(v.type.elem, item.lo), node)
                    hi = self._scalar_operand(f, hf, allowed, Typed(v.type.elem, item.hi), node)
                    if lo is None or hi is None:
                        return None
                    checked.append(ValueRange(lo, hi))
                else:
                    x = self._scalar_operand(f, hf, allowed, Typed(v.type.elem, item), node)
                    if x is None:
                        return None
                    checked.append(x)
            if isinstance(v.value, ValueRange):
                return checked[0]
            return canonical_set(checked)
        return self._scalar_operand(f, hf, allowed, v, node)

    def _scalar_operand(self, f: Field, hf, allowed, v: Typed, node: A.Expr) -> Any:
        if v.type not in allowed:
            self._err("E0301", f"`{f}` is {T.describe(hf.type)}; found {v.type}", node,
                      f"compare it with {T.describe(hf.type)}")
            return None
        value = v.value
        if v.type == T.ENDPOINT:
            ip = self.coerce(v, T.IPV4, node)
            return None if ip is None else ip.value
        if isinstance(value, int) and not isinstance(value, bool):
            top = hf.max if hf.max is not None else (1 << hf.bits) - 1
            if not 0 <= value <= top:
                self._err("E0304", f"{value} does not fit `{f}` (0..{top})", node)
                return None
        return value


def _dotted(e: A.Expr) -> tuple[str, ...] | None:
    if isinstance(e, A.Name):
        return (e.id,)
    if isinstance(e, A.Attribute):
        inner = _dotted(e.value)
        return None if inner is None else inner + (e.attr,)
    return None


def _mul(base: int | Fraction, factor: int | float) -> Fraction:
    return Fraction(base) * Fraction(factor)


def _ordered(t: T.Type) -> bool:
    return t in (T.INT, T.FLOAT, T.PORT) or T.is_quantity(t)


def _member(x: Any, container: Any) -> bool:
    if isinstance(container, IPv4Network):
        return isinstance(x, IPv4Address) and x in container
    if isinstance(container, (tuple, ValueSet)):
        return any(_member(x, i) if isinstance(i, (ValueRange, IPv4Network)) else x == i
                   for i in container)
    if isinstance(container, ValueRange):
        return x in container
    return x == container
