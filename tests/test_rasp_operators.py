"""SOp operators, annotations, identity and traversal."""

from __future__ import annotations

import operator
import time

import pytest

import rasp
from rasp import Comparison

from tests.rasp_helpers import F, T, ev, none_at_zero


XS = [6, -3, 4, 7]          # no zeros, so every division below is defined
YS = [2, 5, -2, 3]          # second operand for SOp-SOp forms


def _sop_pair():
    return rasp.tokens, rasp.ConstantSOp(YS)


BINARY = [
    ("+", operator.add), ("-", operator.sub), ("*", operator.mul),
    ("/", operator.truediv), ("//", operator.floordiv), ("%", operator.mod),
    ("**", operator.pow), ("<", operator.lt), ("<=", operator.le),
    (">", operator.gt), (">=", operator.ge), ("==", operator.eq), ("!=", operator.ne),
]


def _apply(symbol, a, b):
    """`a <symbol> b` spelt out, so the SOp operator itself is exercised."""
    if symbol == "+": return a + b                 # noqa: E701
    if symbol == "-": return a - b                 # noqa: E701
    if symbol == "*": return a * b                 # noqa: E701
    if symbol == "/": return a / b                 # noqa: E701
    if symbol == "//": return a // b               # noqa: E701
    if symbol == "%": return a % b                 # noqa: E701
    if symbol == "**": return a ** b               # noqa: E701
    if symbol == "<": return a < b                 # noqa: E701
    if symbol == "<=": return a <= b               # noqa: E701
    if symbol == ">": return a > b                 # noqa: E701
    if symbol == ">=": return a >= b               # noqa: E701
    if symbol == "==": return a == b               # noqa: E701
    if symbol == "!=": return a != b               # noqa: E701
    if symbol == "&": return a & b                 # noqa: E701
    if symbol == "|": return a | b                 # noqa: E701
    raise AssertionError(symbol)


class TestSOpOperators:
    @pytest.mark.parametrize("symbol,op", BINARY, ids=[s for s, _ in BINARY])
    def test_with_constant(self, symbol, op):
        out = _apply(symbol, rasp.tokens, 2)
        assert type(out) is rasp.Map and out.inner is rasp.tokens
        assert ev(out, XS) == [op(x, 2) for x in XS]

    @pytest.mark.parametrize("symbol,op", BINARY, ids=[s for s, _ in BINARY])
    def test_with_sop(self, symbol, op):
        a, b = _sop_pair()
        out = _apply(symbol, a, b)
        assert type(out) is rasp.SequenceMap and out.fst is a and out.snd is b
        assert ev(out, XS) == [op(x, y) for x, y in zip(XS, YS)]

    @pytest.mark.parametrize("symbol,op", [
        ("+", operator.add), ("-", operator.sub), ("*", operator.mul),
        ("/", operator.truediv)])
    def test_reflected_arithmetic(self, symbol, op):
        out = _apply(symbol, 10, rasp.tokens)
        assert type(out) is rasp.Map and out.inner is rasp.tokens
        assert ev(out, XS) == [op(10, x) for x in XS]

    @pytest.mark.parametrize("symbol,op", [
        ("<", operator.lt), ("<=", operator.le), (">", operator.gt),
        (">=", operator.ge), ("==", operator.eq), ("!=", operator.ne)])
    def test_reflected_comparisons(self, symbol, op):
        # `4 < tokens` is evaluated by Python as `tokens > 4`.
        out = _apply(symbol, 4, rasp.tokens)
        assert isinstance(out, rasp.Map)
        assert ev(out, XS) == [op(4, x) for x in XS]

    def test_string_concatenation(self):
        assert ev(rasp.tokens + "!", "ab") == ["a!", "b!"]
        assert ev("<" + rasp.tokens, "ab") == ["<a", "<b"]

    def test_negation(self):
        out = -rasp.tokens
        assert type(out) is rasp.Map
        assert ev(out, XS) == [-6, 3, -4, -7]

    def test_invert_is_logical_not(self):
        out = ~rasp.tokens
        assert type(out) is rasp.Map
        assert ev(out, [True, False, 0, 3]) == [False, True, True, False]

    def test_logical_and_or_with_sop(self):
        a = rasp.tokens
        b = rasp.ConstantSOp([True, False, True, False])
        xs = [True, True, False, False]
        conj, disj = a & b, a | b
        assert type(conj) is rasp.SequenceMap and type(disj) is rasp.SequenceMap
        assert ev(conj, xs) == [True, False, False, False]
        assert ev(disj, xs) == [True, True, True, False]

    def test_logical_and_or_with_constant_and_reflected(self):
        xs = [True, False]
        assert ev(rasp.tokens & True, xs) == [True, False]
        assert ev(rasp.tokens & False, xs) == [False, False]
        assert ev(rasp.tokens | True, xs) == [True, True]
        assert ev(rasp.tokens | False, xs) == [True, False]
        assert ev(True & rasp.tokens, xs) == [True, False]
        assert ev(False | rasp.tokens, xs) == [True, False]

    def test_operator_results_are_new_expressions(self):
        a = rasp.tokens + 1
        b = rasp.tokens + 1
        assert a is not b and a.unique_id != b.unique_id

    def test_operators_compose(self):
        expr = (rasp.tokens * 2 + rasp.indices) % 5
        # [(2x + i) % 5] for x = [1, 4, 3]: (2+0)%5, (8+1)%5, (6+2)%5
        assert ev(expr, [1, 4, 3]) == [2, 4, 3]

    def test_operators_propagate_none(self):
        expr = none_at_zero(rasp.tokens) + rasp.indices
        assert ev(expr, [0, 5]) == [None, 6]
        assert ev(none_at_zero(rasp.tokens) < 3, [0, 5]) == [None, False]

    def test_sop_has_no_truth_value(self):
        with pytest.raises(TypeError):
            bool(rasp.tokens)
        with pytest.raises(TypeError):
            bool(rasp.tokens == 1)

    def test_sop_with_selector_is_a_type_error(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        with pytest.raises(TypeError):
            rasp.tokens + sel
        with pytest.raises(TypeError):
            sel + rasp.tokens


# -------------------------------------------------------------------- annotations


class TestAnnotations:
    def test_default_encoding_is_categorical(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        assert rasp.get_encoding(m) is rasp.Encoding.CATEGORICAL
        assert rasp.is_categorical(m) and not rasp.is_numerical(m)
        assert rasp.is_categorical(rasp.tokens)

    def test_numerical(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        n = rasp.numerical(m)
        assert rasp.get_encoding(n) is rasp.Encoding.NUMERICAL
        assert rasp.is_numerical(n) and not rasp.is_categorical(n)
        assert n is not m and n.unique_id != m.unique_id
        assert rasp.is_categorical(m)  # the original is untouched
        assert type(n) is rasp.Map and n.f is m.f and n.inner is m.inner

    def test_categorical_undoes_numerical(self):
        n = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
        c = rasp.categorical(n)
        assert rasp.is_categorical(c) and rasp.is_numerical(n)
        assert c is not n

    def test_numerical_primitive(self):
        n = rasp.numerical(rasp.tokens)
        assert n is not rasp.tokens and isinstance(n, rasp.TokensType)
        assert rasp.is_numerical(n) and rasp.is_categorical(rasp.tokens)
        assert n.label == "tokens"
        assert ev(n, [1, 2]) == [1, 2]

    def test_named(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        named = m.named("ident")
        assert named.name == "ident" and named.label == "ident"
        assert named is not m and named.unique_id != m.unique_id
        assert m.name == m.label == f"map_{m.unique_id}"

    def test_named_keeps_encoding_and_numerical_keeps_name(self):
        a = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens)).named("a")
        assert rasp.is_numerical(a) and a.label == "a"
        b = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens).named("b"))
        assert rasp.is_numerical(b) and b.label == "b"

    def test_renaming(self):
        x = rasp.tokens.named("first").named("second")
        assert x.label == "second"

    def test_annotated_and_annotate(self):
        m = rasp.Map(lambda x: x, rasp.tokens).named("m")
        a = m.annotated(color="red")
        b = rasp.annotate(a, size=3)
        assert dict(a.annotations) == {"name": "m", "color": "red",
                                       "encoding": rasp.Encoding.CATEGORICAL}
        assert dict(b.annotations) == {"name": "m", "color": "red", "size": 3,
                                       "encoding": rasp.Encoding.CATEGORICAL}
        assert dict(m.annotations) == {"name": "m", "encoding": rasp.Encoding.CATEGORICAL}
        assert len({m.unique_id, a.unique_id, b.unique_id}) == 3

    def test_annotate_encoding_directly(self):
        n = rasp.annotate(rasp.Map(lambda x: x, rasp.tokens), encoding=rasp.Encoding.NUMERICAL)
        assert rasp.is_numerical(n)

    def test_get_and_in_read_given_then_default_annotations(self):
        m = rasp.Map(lambda x: x, rasp.tokens).annotated(color="red")
        assert m.annotations.get("color") == "red" and "color" in m.annotations
        assert m.annotations.get("encoding") is rasp.Encoding.CATEGORICAL  # a default
        assert "name" in m.annotations and m.annotations.get("name") == m.label
        assert m.annotations.get("width_map") is None and "width_map" not in m.annotations
        assert m.annotations.get("width_map", abs) is abs
        with pytest.raises(KeyError):
            m.annotations["width_map"]
        selector = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        with pytest.raises(TypeError):  # a selector has no encoding, as with []
            selector.annotations.get("encoding")

    def test_annotations_are_read_only(self):
        m = rasp.Map(lambda x: x, rasp.tokens).named("m")
        with pytest.raises(TypeError):
            m.annotations["name"] = "other"
        assert m.label == "m"

    def test_annotated_copy_evaluates_the_same(self):
        m = rasp.Map(lambda x: x * 3, rasp.tokens)
        assert ev(m.named("triple"), [1, 2]) == [3, 6]
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.LT)
        assert ev(sel.named("lt"), [2, 1]) == [[F, T], [F, F]]

    @pytest.mark.parametrize("bad", ["", 3, None])
    def test_named_rejects_bad_names(self, bad):
        with pytest.raises(TypeError):
            rasp.tokens.named(bad)

    def test_numerical_rejects_selectors_and_non_expressions(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        for bad in (sel, 3):
            with pytest.raises(TypeError):
                rasp.numerical(bad)
            with pytest.raises(TypeError):
                rasp.categorical(bad)
        with pytest.raises(TypeError):
            rasp.annotate("tokens", name="x")


# ------------------------------------------------------------------------ identity


class TestIdentity:
    def test_hashable_by_identity(self):
        a = rasp.Map(lambda x: x, rasp.tokens)
        b = rasp.Map(lambda x: x, rasp.tokens)
        table = {a: "a", b: "b", rasp.tokens: "t"}
        assert table[a] == "a" and table[b] == "b" and table[rasp.tokens] == "t"
        assert len({a, b, a, rasp.tokens, rasp.tokens}) == 3
        assert hash(a) == hash(a)

    def test_selectors_hashable(self):
        s = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        t = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        assert len({s, t, s}) == 2

    def test_unique_ids(self):
        exprs = [rasp.tokens, rasp.indices, rasp.length]
        exprs += [rasp.Map(lambda x: x, rasp.tokens) for _ in range(20)]
        exprs += [rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ) for _ in range(5)]
        exprs += [e.named("same") for e in exprs[:10]]
        ids = [e.unique_id for e in exprs]
        assert len(set(ids)) == len(ids)
        assert all(isinstance(i, int) for i in ids)

    def test_ids_are_stable(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        assert m.unique_id == m.unique_id
        assert m.label == m.label

    def test_primitive_labels(self):
        assert rasp.tokens.label == "tokens"
        assert rasp.indices.label == "indices"
        assert rasp.length.label == "length"
        assert rasp.tokens.named("input").label == "input"

    def test_default_labels(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        cases = [
            (rasp.Map(abs, rasp.tokens), "map"),
            (rasp.SequenceMap(operator.add, rasp.tokens, rasp.indices), "sequence_map"),
            (rasp.LinearSequenceMap(rasp.tokens, rasp.indices, 1, 1), "linear_sequence_map"),
            (rasp.Full(0), "full"),
            (rasp.ConstantSOp([1]), "constant_sop"),
            (rasp.SelectorWidth(sel), "selector_width"),
            (rasp.Aggregate(sel, rasp.tokens), "aggregate"),
            (sel, "select"),
            (rasp.ConstantSelector([[True]]), "constant_selector"),
            (sel & sel, "selector_and"),
            (sel | sel, "selector_or"),
            (~sel, "selector_not"),
        ]
        for expr, kind in cases:
            assert expr.name == expr.label
            assert expr.label == f"{kind}_{expr.unique_id}"

    def test_copy_has_own_label(self):
        m = rasp.Map(abs, rasp.tokens)
        n = rasp.numerical(m)
        assert n.label == f"map_{n.unique_id}" != m.label

    def test_repr_mentions_label(self):
        assert "tokens" in repr(rasp.tokens)
        assert "my_map" in repr(rasp.Map(abs, rasp.tokens).named("my_map"))

    @pytest.mark.parametrize("attribute", ["f", "inner", "unique_id", "new_attribute",
                                           "_annotations"])
    def test_setattr_raises(self, attribute):
        m = rasp.Map(abs, rasp.tokens)
        before = (m.f, m.inner, m.unique_id)
        with pytest.raises(AttributeError):
            setattr(m, attribute, 1)
        assert (m.f, m.inner, m.unique_id) == before

    def test_setattr_raises_for_every_kind(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        for expr, attribute in [(rasp.tokens, "x"), (sel, "predicate"), (sel, "keys"),
                                (rasp.Aggregate(sel, rasp.tokens), "default"),
                                (rasp.Full(1), "fill"), (rasp.ConstantSOp([1]), "value")]:
            with pytest.raises(AttributeError):
                setattr(expr, attribute, None)

    def test_delattr_raises(self):
        m = rasp.Map(abs, rasp.tokens)
        with pytest.raises(AttributeError):
            del m.f
        assert m.f is abs

    def test_constant_values_are_frozen(self):
        c = rasp.ConstantSOp([1, 2])
        assert isinstance(c.value, tuple)
        s = rasp.ConstantSelector([[1, 0], [0, 1]])
        assert s.value == ((True, False), (False, True))


# ------------------------------------------------------------------------ traverse


class TestTraverse:
    def test_children_before_parents(self):
        a = rasp.Map(abs, rasp.tokens)
        b = rasp.SequenceMap(operator.add, a, rasp.indices)
        sel = rasp.Select(b, a, Comparison.EQ)
        root = rasp.Aggregate(sel, b)
        order = rasp.topological_order(root)
        ids = [e.unique_id for e in order]
        assert sorted(ids) == sorted({e.unique_id for e in (rasp.tokens, rasp.indices, a, b, sel, root)})
        assert len(ids) == len(set(ids))
        assert order[-1] is root
        position = {e.unique_id: i for i, e in enumerate(order)}
        for expr in order:
            for child in expr.children:
                assert position[child.unique_id] < position[expr.unique_id]

    def test_repeated_walks_give_fresh_equal_lists(self):
        root = rasp.SequenceMap(operator.add, rasp.Map(abs, rasp.tokens), rasp.indices)
        first = rasp.topological_order(root)
        expected = list(first)
        first.clear()  # the caller's list is its own
        assert rasp.topological_order(root) == expected and expected[-1] is root
        only_root = rasp.topological_order(root, lambda expr: ())
        assert only_root == [root]

    def test_single_node(self):
        order = rasp.topological_order(rasp.tokens)
        assert len(order) == 1 and order[0] is rasp.tokens

    def test_diamond_of_depth_200_is_linear(self):
        depth = 200
        node = rasp.tokens
        for _ in range(depth):
            node = rasp.SequenceMap(lambda x, y: max(x, y) + 1, node, node)
        start = time.perf_counter()
        order = rasp.topological_order(node)
        elapsed = time.perf_counter() - start
        # A naive tree walk would visit 2**200 paths; a DAG walk sees 201 nodes.
        assert elapsed < 1.0
        assert len(order) == depth + 1
        assert len({e.unique_id for e in order}) == depth + 1
        assert order[0] is rasp.tokens and order[-1] is node

        start = time.perf_counter()
        assert ev(node, [0, 5]) == [200, 205]
        assert time.perf_counter() - start < 1.0

    def test_diamond_with_two_branches_per_level(self):
        # Each level: two distinct Maps of the previous node, joined again.
        depth = 200
        node = rasp.tokens
        for _ in range(depth):
            left = rasp.Map(lambda x: x + 1, node)
            right = rasp.Map(lambda x: x - 1, node)
            node = rasp.SequenceMap(lambda x, y: (x + y) // 2, left, right)
        start = time.perf_counter()
        order = rasp.topological_order(node)
        assert time.perf_counter() - start < 1.0
        assert len(order) == 3 * depth + 1
        assert len({e.unique_id for e in order}) == 3 * depth + 1
        assert ev(node, [7, 9]) == [7, 9]

    def test_deep_chain_has_no_recursion_limit(self):
        node = rasp.tokens
        for _ in range(5000):
            node = rasp.Map(lambda x: x + 1, node)
        assert len(rasp.topological_order(node)) == 5001
        assert ev(node, [0, 1]) == [5000, 5001]

    def test_unique_labels_suffixes_duplicates(self):
        a = rasp.Map(lambda x: x + 1, rasp.tokens).named("x")
        b = rasp.Map(lambda x: x * 2, rasp.tokens).named("x")
        c = rasp.SequenceMap(operator.add, a, b).named("x")
        order = rasp.topological_order(c)
        labels = rasp.unique_labels(order)
        assert set(labels) == {e.unique_id for e in order}
        assert len(set(labels.values())) == len(order)
        assert labels[rasp.tokens.unique_id] == "tokens"
        assert sorted(labels[e.unique_id] for e in (a, b, c)) == ["x", "x_2", "x_3"]
        # The first one met in the order keeps the plain name.
        named = [e for e in order if e.name == "x"]
        assert labels[named[0].unique_id] == "x"

    def test_unique_labels_avoids_clash_with_a_given_suffix(self):
        a = rasp.Map(abs, rasp.tokens).named("y")
        b = rasp.Map(abs, a).named("y")
        c = rasp.Map(abs, b).named("y_2")
        labels = rasp.unique_labels(rasp.topological_order(c))
        assert len(set(labels.values())) == 4
        assert labels[a.unique_id] == "y"

    def test_unique_labels_keeps_distinct_labels(self):
        a = rasp.Map(abs, rasp.tokens).named("a")
        b = rasp.Map(abs, a)
        labels = rasp.unique_labels(rasp.topological_order(b))
        assert labels == {rasp.tokens.unique_id: "tokens", a.unique_id: "a",
                          b.unique_id: f"map_{b.unique_id}"}


# -------------------------------------------------------------------------- causal
