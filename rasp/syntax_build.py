"""Walk a parsed RASP tree and build RASP expressions, as RASP's interpreter would.

Takes the lark tree of `rasp/rasp.lark` and gives the names it binds. Functions are
closures over the scope that defines them, `for` loops run (are unrolled) at parse
time, and every fault is raised as a RaspSyntaxError at the node that caused it.
"""

from __future__ import annotations

import difflib
from typing import Any

from lark import Token, Tree

from rasp import expr as rx
from rasp.errors import EvaluationError, RaspSyntaxError
from rasp.syntax_attention import Operations
from rasp.syntax_load import LoadRules, load_rules, resolve_load
from rasp.syntax_ops import Fault, frozen, int_literal, type_name
from rasp.syntax_scope import (BUILTINS, KEYWORDS, MAX_CALL_DEPTH, Function, InputTokens, Scope,
                               arity_text, base_scope, unshadowed)


class Interpreter(Operations):
    """Runs statements of one source text; `top` holds the top-level names. Its loads
    read under the directory of `filename` and `search_path` (see rasp.syntax_load)."""

    def __init__(self, source: str, filename: str, scope: Scope | None = None,
                 search_path=(), rules: LoadRules | None = None):
        self.lines = source.splitlines()
        self.filename = filename
        self.rules = rules or load_rules(filename, search_path)
        self.top = scope or Scope({}, base_scope())
        self.assigned: list[str] = []  # top-level names the source binds, in order
        self.depth = 0
        self.input_type: str | None = None

    # ------------------------------------------------------------ errors

    def error(self, node, message: str, expected: str | None = None) -> RaspSyntaxError:
        """A RaspSyntaxError located at `node` (a Tree or Token)."""
        line, column = _position(node)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return RaspSyntaxError(message, self.filename, line, column, text, expected)

    # -------------------------------------------------------- statements

    def run(self, statements, scope: Scope | None = None) -> list[tuple[str, Any]]:
        """Execute statements; gives (what, value) for each expression statement."""
        shown = []
        for statement in statements:
            shown += self.statement(statement, scope or self.top)
        return shown

    def statement(self, node: Tree, scope: Scope) -> list[tuple[str, Any]]:
        """Execute one statement; an expression statement gives its (text, value)."""
        kind = node.data
        if kind == "expr_statement":
            return [(_text(node.children[0], self.lines), self.expr(node.children[0], scope))]
        if kind == "assign":
            self.assign(node, scope)
        elif kind == "funcdef":
            name, parameters, *body, returns = node.children
            params = [str(p) for p in parameters.children] if parameters else []
            self.bind(scope, name, Function(str(name), params, body, returns, scope,
                                            self.filename, self.lines))
        elif kind == "forloop":
            self.loop(node, scope)
        elif kind == "load":
            self.load(node, scope)
        return []

    def assign(self, node: Tree, scope: Scope):
        """`a = x;` and `a, b = x, y;` (or `a, b = f(...);` of a function returning two)."""
        names, values = node.children
        targets = names.children
        results = [self.expr(v, scope) for v in values.children]
        if len(results) == 1 and isinstance(results[0], tuple) and len(targets) > 1:
            results = list(results[0])
        if len(results) != len(targets):
            raise self.error(node, f"{len(targets)} names but {len(results)} values",
                             f"{len(targets)} values")
        for target, value in zip(targets, results):
            if isinstance(value, tuple):
                raise self.error(target, f"cannot bind {type_name(value)} to one name",
                                 f"{len(value)} names")
            self.bind(scope, target, value)

    def bind(self, scope: Scope, name: Token, value):
        """Bind `name` in `scope`; an expression is labelled with the name, as in RASP."""
        if str(name) in KEYWORDS:
            raise self.error(name, f"{name} is a keyword", "another name")
        if isinstance(value, rx.RASPExpr) and not isinstance(
                value, (rx.TokensType, rx.IndicesType, rx.LengthType)) and value.label != name:
            value = value.named(str(name))
        scope.names[str(name)] = value
        if scope is self.top:
            self.assigned.append(str(name))

    def loop(self, node: Tree, scope: Scope):
        """`for x in items { ... }`, unrolled: the body runs once per item, now."""
        names, iterable, *body = node.children
        items = self.items(iterable, scope, "a for loop", "a list, range(...) or a dict")
        for item in items:
            self.unpack(names, item, scope, iterable)
            self.run(body, scope)

    def items(self, iterable: Tree, scope: Scope, what: str, hint: str) -> list:
        """The values `what` (a loop or comprehension) runs over: a list, or a dict's keys."""
        items = self.expr(iterable, scope)
        if isinstance(items, dict):
            return list(items)
        if not isinstance(items, list):
            raise self.error(iterable, f"{what} runs over a list or dict, got "
                             f"{type_name(items)}", hint)
        return items

    def unpack(self, names: Tree, item, scope: Scope, where):
        """Bind the loop names to one item (a list of as many values for several names)."""
        targets = names.children
        if len(targets) == 1:
            self.bind(scope, targets[0], item)
            return
        if not isinstance(item, list) or len(item) != len(targets):
            raise self.error(where, f"cannot unpack {type_name(item)} into {len(targets)} names",
                             f"lists of {len(targets)} values")
        for target, value in zip(targets, item):
            self.bind(scope, target, value)

    def load(self, node: Tree, scope: Scope):
        """`load "lib";`: the names lib.rasp (beside this file) binds, as in RASP."""
        from rasp.syntax import parse_tree  # the parser module imports this one

        try:
            path = resolve_load(_string(node.children[0]), self.filename, self.rules)
            source = path.read_text()
        except Fault as fault:
            raise self.error(node, fault.message, fault.expected) from None
        except (OSError, UnicodeDecodeError) as error:
            raise self.error(node, f"cannot read {path}: {error}") from None
        loaded = Interpreter(source, str(path), Scope({}, base_scope()),
                             rules=self.rules.entering(path))
        loaded.run(parse_tree(source, str(path)).children)
        self._use_input(loaded.input_type, node)
        for key in loaded.assigned:  # names starting with _ stay private, as in RASP
            if not key.startswith("_"):
                self.bind(scope, key, loaded.top.names[key])

    # ------------------------------------------------------- expressions

    def expr(self, node, scope: Scope):
        """The value of an expression tree."""
        try:
            return self._expr(node, scope)
        except Fault as fault:
            raise self.error(node, fault.message, fault.expected) from None

    def _expr(self, node, scope):
        kind = node.data
        children = node.children
        if kind == "name":
            return self.name(children[0], scope)
        if kind in ("int", "float", "string"):
            return {"int": int_literal, "float": float, "string": _string}[kind](children[0])
        if kind == "list":
            return [self.expr(c, scope) for c in (children[0].children if children[0] else [])]
        if kind == "dict":
            return {self._key(k, scope): self.expr(v, scope)
                    for k, v in (pair.children for pair in children if pair is not None)}
        if kind in ("list_comprehension", "dict_comprehension"):
            return self.comprehension(node, scope)
        if kind in ("binary", "unary"):  # a fault is reported at the operator
            op = children[-2]
            operands = [self.expr(c, scope) for c in children if c is not op]
            try:
                if kind == "unary":
                    return self.unary(str(op), operands[0])
                return self.binary(str(op), *operands)
            except Fault as fault:
                raise self.error(op, fault.message, fault.expected) from None
        if kind == "ternary":
            yes, condition, no = children
            test = self.expr(condition, scope)
            if not isinstance(test, rx.RASPExpr):  # an atom condition chooses lazily
                return self.expr(yes if test else no, scope)
            if isinstance(test, rx.Selector):
                raise Fault("the condition of `x if c else y` cannot be a selector",
                            "an s-op or an atom")
            return self.ternary(self.expr(yes, scope), test, self.expr(no, scope))
        if kind == "contains":
            return self.contains(self.expr(children[0], scope), self.expr(children[1], scope))
        if kind == "select":
            keys, queries, op = children
            how = str(op) if isinstance(op, Token) else self.expr(op, scope)
            return self.select(self.expr(keys, scope), self.expr(queries, scope), how)
        if kind == "index":
            target, keys = children
            return self.index(self.expr(target, scope),
                              [self.expr(k, scope) for k in keys.children])
        if kind == "call":
            return self.call(node, scope)
        raise Fault(f"unsupported construct {kind}")

    def _key(self, node, scope):
        key = frozen(self.expr(node, scope))
        if isinstance(key, (rx.RASPExpr, dict)):
            raise self.error(node, f"a dict key must be an atom, got {type_name(key)}", "an atom")
        return key

    def name(self, token: Token, scope: Scope):
        """The value a name refers to; the input tokens record the type they are read as."""
        try:
            value = scope.lookup(str(token))
        except KeyError:
            close = difflib.get_close_matches(str(token), scope.visible(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(token, f"unknown name {str(token)!r}{hint}",
                             "a name defined earlier") from None
        if isinstance(value, InputTokens):
            self._use_input(value.rasp_type, token)
            return rx.tokens
        return value

    def _use_input(self, kind: str | None, where):
        if kind is None:
            return
        if self.input_type not in (None, kind):
            raise self.error(where, f"this program already reads its tokens as "
                             f"{self.input_type}; it cannot also read them as {kind}",
                             f"tokens_{self.input_type}")
        self.input_type = kind

    def comprehension(self, node: Tree, scope: Scope):
        """`[e for x in items]` and `{k: v for x in items}`."""
        *body, names, iterable = node.children
        items = self.items(iterable, scope, "a comprehension", "a list or dict")
        results = []
        for item in items:
            inner = Scope({}, scope)  # the iteration names stay inside
            self.unpack(names, item, inner, iterable)
            results.append([self.expr(b, inner) for b in body])
        if node.data == "list_comprehension":
            return [r[0] for r in results]
        return {frozen(k): v for k, v in results}

    # ------------------------------------------------------------- calls

    def call(self, node: Tree, scope: Scope):
        """A built-in, a `def`, or an s-op applied to an input."""
        callee, arguments = node.children
        args = [self.expr(a, scope) for a in (arguments.children if arguments else [])]
        name = str(callee.children[0]) if callee.data == "name" else None
        if name == "draw" and unshadowed(scope, name):
            raise Fault("draw (the RASP interpreter's drawing of a computation flow) is not "
                        "supported", "`raspc run file.rasp:name --trace` to see each layer")
        if name in BUILTINS and unshadowed(scope, name):
            builtin, arities = BUILTINS[name]
            if len(args) not in arities:
                raise self.error(node, f"{name} takes {arity_text(arities)}, got {len(args)}",
                                 f"{arity_text(arities)}")
            return builtin(self, *args)
        function = self.expr(callee, scope)
        if isinstance(function, Function):
            return self.call_function(node, function, args)
        if isinstance(function, rx.RASPExpr):  # RASP's `program(input)`: evaluate it
            return self.apply(function, args)
        raise Fault(f"{type_name(function)} cannot be called", "a function or an s-op")

    def call_function(self, node: Tree, function: Function, args: list):
        """Run a `def` in a new scope inside the one it closes over."""
        if len(args) != len(function.parameters):
            raise self.error(node, f"{function.name} takes {len(function.parameters)} "
                             f"argument(s), got {len(args)}",
                             f"{len(function.parameters)} argument(s)")
        if self.depth >= MAX_CALL_DEPTH:
            raise self.error(node, f"calls nest deeper than {MAX_CALL_DEPTH} (recursion?)")
        local = Scope(dict(zip(function.parameters, args)), function.scope)
        self.depth += 1
        caller = self.filename, self.lines
        self.filename, self.lines = function.filename, function.lines  # faults in its body
        try:
            self.run(function.body, local)
            results = [self.expr(e, local) for e in function.returns.children[0].children]
        finally:
            self.depth -= 1
            self.filename, self.lines = caller
        return results[0] if len(results) == 1 else tuple(results)

    def apply(self, program: rx.RASPExpr, args: list):
        """RASP's `program(input)`: the program evaluated on one input."""
        from rasp.evaluate import evaluate

        if len(args) != 1 or not isinstance(args[0], (list, str)):
            raise Fault("evaluate a program on one input: program(\"abc\") or program([1, 2])",
                        "one list or string")
        try:
            return evaluate(program, list(args[0]))
        except EvaluationError as error:
            raise Fault(f"RASP has no value here: {error}") from None


def _string(token) -> str:
    return str(token)[1:-1]


def _position(node) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    meta = getattr(node, "meta", None)
    if meta is not None and not meta.empty:
        return meta.line, meta.column
    return 1, 1


def _text(node, lines) -> str:
    meta = getattr(node, "meta", None)
    if meta is None or meta.empty or meta.line != meta.end_line:
        return "out"
    return lines[meta.line - 1][meta.column - 1:meta.end_column - 1]
