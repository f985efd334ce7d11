"""The packages import one way, and exactly one module computes attention weights.

Layering (docs/compiler.md): rasp <- craft <- compiler -> rasp_runtime; interp uses
compiler and rasp_runtime; raspc uses everything and nothing uses it. rasp_runtime may
read rasp (errors, the evaluator) and craft's BlockInfo record; it reaches compiler/ and
interp/ only through the lazy delegations listed in LAZY_UPWARD, each documented where
it sits. Both checks read the source (AST), so they see imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rasp", "craft", "compiler", "rasp_runtime", "interp", "raspc")
# What each package may import, besides itself and outside libraries.
ALLOWED = {
    "rasp": set(),
    "craft": {"rasp"},
    "rasp_runtime": {"rasp", "craft"},
    "compiler": {"rasp", "craft", "rasp_runtime"},
    "interp": {"rasp", "craft", "compiler", "rasp_runtime", "examples"},
    "raspc": {"rasp", "craft", "compiler", "rasp_runtime", "interp", "examples"},
}
# (file, imported module): a convenience that imports its package when it is called.
LAZY_UPWARD = {
    ("rasp_runtime/model.py", "compiler.ground_truth"),
    ("rasp_runtime/model.py", "interp.hf_export"),
    ("rasp_runtime/model.py", "interp.tl_export"),
    ("rasp_runtime/model.py", "interp.transformer_lens"),
    ("rasp_runtime/serialize.py", "compiler.ground_truth"),
}


def _sources(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def _imports(tree) -> list[tuple[str, bool]]:
    """(module, lazy) of every import; lazy when inside a function."""
    found = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, inner))
            visit(child, inner)
    visit(tree, False)
    return found


def test_packages_import_only_downwards():
    wrong = []
    for package in PACKAGES:
        for path, tree in _sources(package):
            for module, lazy in _imports(tree):
                top = module.split(".")[0]
                if top not in PACKAGES + ("examples",) or top == package \
                        or top in ALLOWED[package]:  # an outside library, or allowed
                    continue
                if not (lazy and (path, module) in LAZY_UPWARD):
                    wrong.append(f"{path} imports {module}{' (lazily)' * lazy}")
    assert not wrong, wrong


def test_the_listed_lazy_delegations_exist():
    """LAZY_UPWARD lists only what is there (a stale entry would hide nothing, but lie)."""
    seen = {(path, module) for package in ("rasp_runtime",)
            for path, tree in _sources(package) for module, lazy in _imports(tree) if lazy}
    assert LAZY_UPWARD <= seen


def _attention_weights(tree) -> int:
    """How many places compute a softmax in jax: a `softmax(...)` call (not log_softmax)
    or a jnp/jax exp divided by something (a manual exp-normalise)."""
    def is_jax_exp(node):
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "exp" and ast.unparse(node.func.value) in
                ("jnp", "jax.numpy"))

    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            count += name == "softmax" and owner in ("jax.nn", "nn", "jnn", "")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            count += any(is_jax_exp(n) for n in ast.walk(node.left))
    return count


def test_exactly_one_module_computes_attention_weights():
    found = {path: n for package in PACKAGES for path, tree in _sources(package)
             if (n := _attention_weights(tree))}
    assert found == {"rasp_runtime/forward.py": 1}


@pytest.mark.parametrize("snippet", [
    "w = jax.nn.softmax(s, axis=-1)",
    "e = jnp.exp(s - s.max()); w = jnp.exp(s) / jnp.sum(jnp.exp(s))",
    "from jax.nn import softmax\nw = softmax(s)",
])
def test_the_scan_sees_every_form_of_softmax(snippet):
    assert _attention_weights(ast.parse(snippet)) >= 1
