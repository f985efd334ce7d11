"""The reference compiler (Tracr, from the optional `bench` extra) on our example library.

Our example modules use only Tracr's RASP API, so they are loaded a second time with the
name `rasp` bound to Tracr's module: `tracr_examples()` then builds Tracr programs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_MODULES = ("examples.programs", "examples.paper", "examples.library")


def available() -> bool:
    """Whether tracr-pypi is installed."""
    return importlib.util.find_spec("tracr") is not None


def tracr_examples() -> dict:
    """name → Example whose `build(n)` gives the program in Tracr's RASP."""
    import examples

    saved = {name: sys.modules.get(name) for name in ("rasp", *EXAMPLE_MODULES)}
    saved_attributes = dict(vars(examples))
    sys.modules["rasp"] = _tracr_rasp_with_our_aliases()
    try:
        for name in EXAMPLE_MODULES:  # fresh copies, importing each other under rasp = Tracr
            path = os.path.join(ROOT, *name.split(".")) + ".py"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            setattr(examples, name.rpartition(".")[2], module)  # `from examples import x`
            spec.loader.exec_module(module)
        return sys.modules["examples.library"].EXAMPLES
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        vars(examples).clear()
        vars(examples).update(saved_attributes)


def _tracr_rasp_with_our_aliases():
    """Tracr's rasp module plus our shorthands (rasp.EQ for rasp.Comparison.EQ, ...)."""
    import types

    from tracr.rasp import rasp as tracr_rasp

    module = types.ModuleType("rasp")
    module.__dict__.update(vars(tracr_rasp))
    for comparison in tracr_rasp.Comparison:
        setattr(module, comparison.name, comparison)
    return module


def tracr_compile_seconds(example, max_len: int, vocab, repeats: int) -> float | None:
    """Median warm compile time of the reference compiler, or None if it refuses."""
    from tracr.compiler import compiling

    times = []
    for _ in range(repeats + 1):  # the first compile warms caches, as ours does
        program = example.build(max_len)
        started = time.perf_counter()
        try:
            compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=max_len,
                                            compiler_bos="BOS", compiler_pad="PAD")
        except Exception:  # noqa: BLE001  Tracr refuses many programs; that is a result
            return None
        times.append(time.perf_counter() - started)
    times = sorted(times[1:])
    return times[len(times) // 2]
