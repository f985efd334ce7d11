"""What raspc compiles: an example name or path/to/file.py:function, or a saved model.

Parsing a target reports every user mistake (unknown example, bad vocabulary,
missing function, exception in user code) as a one-line CliError.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import random
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rasp
from examples.library import EXAMPLES, uniform

if TYPE_CHECKING:  # the compiler imports jax (seconds); import it only when compiling
    from compiler import CompiledModel

DEFAULT_VOCAB = ("a", "b", "c")  # for user program files
DEFAULT_MAX_SEQ_LEN = 8
MODEL_SUFFIXES = (".npz", ".json")
TARGET_HELP = "an example name (see `raspc list`) or path/to/file.py:function"


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Target:
    """A program to compile, with the settings to compile and sample it."""

    name: str
    description: str
    program: rasp.SOp
    vocab: tuple[Any, ...]
    max_seq_len: int
    causal: bool
    sample: Callable[[random.Random], list[Any]]

    def compile(self, strict: bool = False) -> tuple[CompiledModel, float]:
        """The compiled model and the wall time in seconds it took, importing the
        compiler (and with it jax) included; the domain warning is left to the caller
        (see `domain_warnings`)."""
        start = time.perf_counter()
        from compiler import compile_rasp_to_model  # the first import loads jax: a wait too

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasp.CompileWarning)
            model = compile_rasp_to_model(self.program, self.vocab, self.max_seq_len,
                                          self.causal, strict=strict)
        return model, time.perf_counter() - start


def domain_warnings(model: CompiledModel) -> list[str]:
    """One `raspc: warning: ...` line per condition of a domain that is not total."""
    if model.domain.total:
        return []
    return [f"raspc: warning: the program is partial: {line}" for line in model.domain.lines()]


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def parse_number(text: str) -> int | float | None:
    """An int or float written in decimal (e.g. -1, 1.5, 2e3), else None."""
    if _INT.fullmatch(text):
        return int(text)
    return float(text) if _FLOAT.fullmatch(text) else None


def parse_vocab(text: str) -> tuple[Any, ...]:
    """Comma-separated tokens: numbers if every token is one (all floats if any is not
    an int), else strings."""
    tokens = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in tokens):
        raise CliError(f"bad --vocab {text!r}: give comma-separated non-empty tokens, "
                       "e.g. --vocab a,b,c or --vocab 1,2,3")
    numbers = [parse_number(t) for t in tokens]
    values: list[Any] = tokens
    if all(n is not None for n in numbers):
        values = numbers if all(isinstance(n, int) for n in numbers) else \
            [float(n) for n in numbers]
    duplicates = sorted({str(t) for t in values if values.count(t) > 1})
    if duplicates:
        raise CliError(f"bad --vocab {text!r}: repeated token(s) {', '.join(duplicates)}")
    for special in ("BOS", "PAD"):
        if special in values:
            raise CliError(f"bad --vocab {text!r}: {special} is reserved for the compiler's "
                           f"{special} token and cannot be a vocabulary token")
    return tuple(values)


def load_target(spec: str, vocab: str | None = None, max_seq_len: int | None = None,
                causal: bool = False) -> Target:
    """An example name or `path/to/file.py:function`, with optional overrides."""
    if spec.endswith(MODEL_SUFFIXES):
        raise CliError(f"{spec} is a saved model; only `raspc run` takes a saved model")
    tokens = parse_vocab(vocab) if vocab is not None else None
    if spec.endswith(".py") or ".py:" in spec:
        return _program_file_target(spec, tokens or DEFAULT_VOCAB,
                                    max_seq_len or DEFAULT_MAX_SEQ_LEN, causal)
    if spec not in EXAMPLES:
        close = difflib.get_close_matches(spec, EXAMPLES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CliError(f"unknown example {spec!r}{hint}; known examples: {', '.join(EXAMPLES)}"
                       " (or give path/to/file.py:function)")
    example = EXAMPLES[spec]
    tokens = tokens or example.vocab
    n = max_seq_len or example.max_seq_len
    return Target(spec, example.description, example.build(n), tokens, n,
                  causal or example.causal, lambda rng: example.sample(rng, n, tokens))


def _program_file_target(spec: str, vocab, max_seq_len: int, causal: bool) -> Target:
    file, _, function = spec.rpartition(":") if ".py:" in spec else (spec, "", "")
    if not function:
        raise CliError(f"name the function that builds the program: {file}:FUNCTION")
    path = Path(file)
    if not path.is_file():
        raise CliError(f"no such program file: {file}")
    module = _import_file(path)
    if not hasattr(module, function):
        found = [n for n, v in vars(module).items() if inspect.isfunction(v) and n[0] != "_"]
        raise CliError(f"{file} defines no {function!r}; functions: {', '.join(found) or 'none'}")
    obj = getattr(module, function)
    program = obj
    if not isinstance(obj, rasp.RASPExpr) and callable(obj):
        try:
            takes_length = bool(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            takes_length = False
        try:
            program = obj(max_seq_len) if takes_length else obj()
        except Exception as error:  # noqa: BLE001  user code: report, don't crash
            raise CliError(f"{spec} raised {_describe(error, path)}", 1) from None
    if not isinstance(program, rasp.SOp):
        raise CliError(f"{spec} must be a RASP SOp or a function returning one, "
                       f"got {type(program).__name__}")
    doc = (inspect.getdoc(obj) or "").strip().splitlines() if callable(obj) else []
    description = doc[0] if doc else f"{function} from {path.name}"
    return Target(spec, description, program, tuple(vocab), max_seq_len, causal,
                  lambda rng: uniform(rng, list(vocab), rng.randint(1, max_seq_len)))


def _import_file(path: Path):
    name = f"_raspc_program_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # let the file import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001
        raise CliError(f"importing {path} raised {_describe(error, path)}", 1) from None
    finally:
        sys.path.remove(folder)
    return module


def _describe(error: BaseException, path: Path) -> str:
    """'Type: message (file.py, line N)', naming the innermost line in the user's file."""
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__)
             if Path(f.filename).resolve() == path.resolve()]
    where = f" ({path.name}, line {lines[-1]})" if lines else ""
    return f"{type(error).__name__}: {error}{where}"


def load_model_file(spec: str) -> tuple[CompiledModel, str]:
    """A saved model and its description, without recompiling."""
    from compiler import CompiledModel
    from compiler.serialize import ModelFileError, read_metadata

    try:
        description = read_metadata(spec)["program"].get("description") or spec
        return CompiledModel.load(spec), description
    except ModelFileError as error:
        raise CliError(str(error)) from None
