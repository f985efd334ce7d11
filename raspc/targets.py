"""What raspc compiles: an example name or path/to/file.py:function, or a saved model.

Parsing a target reports every user mistake (unknown example, bad vocabulary,
missing function, exception in user code) as a one-line CliError. A saved
model is a target when its program can be rebuilt without running code the
model file names: from a library example it records by name, from a program
the user names (`--program`), or, only with `--trust-program-source`, by
importing the file it records.
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
TARGET_HELP = ("an example name (see `raspc list`), path/to/file.py:function or "
               "path/to/file.rasp:name")
PROGRAM_HELP = ("for a saved model: rebuild its program from this example name, "
                "path/to/file.py:FUNCTION or path/to/file.rasp:NAME (it must match the saved "
                "program's structure) instead of from the file the model records")
TRUST_HELP = ("for a saved model compiled from a file: import and run the Python file (or "
              "parse the .rasp file) whose path the model's JSON records, to rebuild its "
              "program. Importing a Python file runs its code: pass this only for a model "
              "file you trust")
RASP_PATH_HELP = ("let `load` in a .rasp program also read files under DIR (repeatable); "
                  "otherwise a load reads only files under the program's own directory")


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
    source: dict[str, Any] | None = None  # how to rebuild the program; saved with the model
    loaded: tuple[CompiledModel, float] | None = None  # a saved model, seconds to load it
    form: str = "per-position"  # or "completion" (compile_rasp_to_model's `form`)
    prefer: str = "depth"  # compile_rasp_to_model's layout choice (--prefer)
    fuse: bool = True  # False: one block per SOp (--no-fuse)

    def compile(self, strict: bool = False, layer_norm: bool = False, attention: str = "hard"
                ) -> tuple[CompiledModel, float]:
        """The compiled (or loaded) model and the wall time in seconds it took, importing
        the compiler (and with it jax) included; the domain warning is left to the caller
        (see `domain_warnings`). `layer_norm`: compile a pre-LN model; `attention`: "soft"
        for the gentlest logit gaps the bounds accept."""
        if self.loaded is not None:
            if layer_norm:
                raise CliError("--layer-norm applies when compiling, not to a saved model")
            if attention != "hard":
                raise CliError("--soft-attention applies when compiling, not to a saved model")
            return self.loaded
        start = time.perf_counter()
        from compiler import compile_rasp_to_model  # the first import loads jax: a wait too

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasp.CompileWarning)
            model = compile_rasp_to_model(self.program, self.vocab, self.max_seq_len,
                                          self.causal, strict=strict, form=self.form,
                                          layer_norm=layer_norm, prefer=self.prefer,
                                          fuse=self.fuse, attention=attention)
        model.source = self.source
        return model, time.perf_counter() - start


def domain_warnings(model: CompiledModel) -> list[str]:
    """One `raspc: warning: ...` line per condition of a domain that is not total."""
    if model.domain.total:
        return []
    return [f"raspc: warning: the program is partial: {line}"
            for line in model.domain.lines(fixes=True)]


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


def add_program_options(parser) -> None:
    """--program and --trust-program-source, for commands that rebuild a saved model's
    program (see `saved_model_target`)."""
    parser.add_argument("--program", metavar="FILE:FUNCTION", help=PROGRAM_HELP)
    parser.add_argument("--trust-program-source", action="store_true", help=TRUST_HELP)


def add_layer_norm_option(parser) -> None:
    """--layer-norm, for commands that compile a model to keep (compile, export)."""
    parser.add_argument("--layer-norm", action="store_true",
                        help="compile pre-LN blocks (a LayerNorm before each attention and "
                             "MLP sublayer and before the unembedding, as GPT-2), exact "
                             "within a proved bound (docs/compiler.md, LayerNorm)")


def target_options(args) -> dict[str, Any]:
    """`load_target`'s keyword options from a command's --rasp-path, --program,
    --trust-program-source, --prefer and --no-fuse (absent options take their defaults)."""
    return {"search_path": tuple(getattr(args, "rasp_path", None) or ()),
            "program": getattr(args, "program", None),
            "trust_source": getattr(args, "trust_program_source", False),
            "verify": getattr(args, "verify", True),
            "prefer": getattr(args, "prefer", "depth"),
            "fuse": getattr(args, "fuse", True)}


def load_target(spec: str, vocab: str | None = None, max_seq_len: int | None = None,
                causal: bool = False, *, search_path=(), program: str | None = None,
                trust_source: bool = False, verify: bool = True, prefer: str = "depth",
                fuse: bool = True) -> Target:
    """An example name, `path/to/file.py:function`, `file.rasp:name` or a saved model,
    with optional overrides. `search_path`: more directories a .rasp `load` may read;
    `program` and `trust_source`: how a saved model's program is rebuilt; `verify`: False
    loads a saved model whose checksum is missing or wrong; `prefer` and `fuse`: how a
    program is compiled (see compile_rasp_to_model)."""
    if spec.endswith(MODEL_SUFFIXES):
        _refuse_compile_flags(None, None, prefer != "depth", not fuse)
        from raspc.saved_targets import saved_model_target  # it builds on this module
        return saved_model_target(spec, vocab, max_seq_len, causal, search_path=search_path,
                                  program=program, trust_source=trust_source, verify=verify)
    target = _program_target(spec, vocab, max_seq_len, causal, search_path, program,
                             trust_source)
    target.prefer, target.fuse = prefer, fuse
    return target


def _program_target(spec, vocab, max_seq_len, causal, search_path, program, trust_source
                    ) -> Target:
    """`load_target` of a program (not a saved model)."""
    if program is not None or trust_source:
        raise CliError("--program and --trust-program-source apply to a saved model "
                       "(model.npz), not to a program")
    if _kind_of(spec) == "rasp":
        return rasp_file_target(spec, vocab, max_seq_len or DEFAULT_MAX_SEQ_LEN, causal,
                                search_path)
    tokens = parse_vocab(vocab) if vocab is not None else None
    if _kind_of(spec) == "file":
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
                  causal or example.causal, lambda rng: example.sample(rng, n, tokens),
                  {"kind": "example", "name": spec, "args": [n]})


def _program_file_target(spec: str, vocab, max_seq_len: int, causal: bool) -> Target:
    file, function = _file_and_name(spec, ".py")
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
    args = None
    if not isinstance(obj, rasp.RASPExpr) and callable(obj):
        try:
            args = [max_seq_len] if inspect.signature(obj).parameters else []
        except (TypeError, ValueError):
            args = []
        try:
            program = obj(*args)
        except Exception as error:  # noqa: BLE001  user code: report, don't crash
            raise CliError(f"{spec} raised {_describe(error, path)}", 1) from None
    if not isinstance(program, rasp.SOp):
        raise CliError(f"{spec} must be a RASP SOp or a function returning one, "
                       f"got {type(program).__name__}")
    doc = (inspect.getdoc(obj) or "").strip().splitlines() if callable(obj) else []
    description = doc[0] if doc else f"{function} from {path.name}"
    source = {"kind": "file", "file": str(path.resolve()), "function": function,
              "args": args}
    return Target(spec, description, program, tuple(vocab), max_seq_len, causal,
                  _uniform_sampler(vocab, max_seq_len), source)


def rasp_file_target(spec: str, vocab: str | None, max_seq_len: int, causal: bool,
                     search_path=()) -> Target:
    """`file.rasp:name`: the SOp a RASP-syntax file binds to `name`, with the
    vocabulary read as the type the program reads its tokens as (tokens_int: ints);
    its loads may read under its own directory and `search_path`."""
    from rasp.syntax import parse_file

    file, name = _file_and_name(spec, ".rasp")
    if not Path(file).is_file():
        raise CliError(f"no such RASP file: {file}")
    definitions = parse_file(file, search_path=search_path)
    sops = [n for n, v in definitions.items() if isinstance(v, rasp.SOp)]
    if not name and len(sops) == 1:
        name = sops[0]
    if name not in sops:
        raise CliError(f"{file} binds no s-op {name!r}; name one: {file}:NAME with NAME in "
                       f"{', '.join(sops) or 'none'}" if name else
                       f"name the s-op to compile: {file}:NAME with NAME in {', '.join(sops)}")
    kind = definitions.input_type
    tokens = tuple(_as_input_type(t, kind, vocab) for t in parse_vocab(
        vocab if vocab is not None else _DEFAULT_RASP_VOCAB[kind]))
    source = {"kind": "rasp", "file": str(Path(file).resolve()), "name": name}
    return Target(f"{Path(file).name}:{name}", f"{name} from {Path(file).name}",
                  definitions[name], tokens, max_seq_len, causal,
                  _uniform_sampler(tokens, max_seq_len), source)


def _file_and_name(spec: str, suffix: str) -> tuple[str, str]:
    """`path/to/file<suffix>:name` as (file, name); name is "" when not given."""
    file, _, name = spec.rpartition(":") if f"{suffix}:" in spec else (spec, "", "")
    return file, name


def _uniform_sampler(vocab, max_seq_len: int) -> Callable[[random.Random], list[Any]]:
    """Inputs of uniform tokens and a uniform length from 1 to max_seq_len."""
    return lambda rng: uniform(rng, list(vocab), rng.randint(1, max_seq_len))


_DEFAULT_RASP_VOCAB = {"str": "a,b,c", "int": "1,2,3", "float": "0.5,1,2", "bool": "False,True"}


def _as_input_type(token, kind: str, vocab: str | None):
    text = str(token)
    try:
        if kind == "bool":
            return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
        return {"str": str, "int": int, "float": float}[kind](text)
    except (KeyError, ValueError):
        raise CliError(f"bad --vocab {vocab!r}: the program reads tokens_{kind}, and "
                       f"{text!r} is not a {kind}") from None


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


def load_model_file(spec: str, verify: bool = True) -> tuple[CompiledModel, str]:
    """A saved model and its description, without recompiling (`verify`: check its
    checksum, see rasp_runtime.serialize.load_model)."""
    from compiler import CompiledModel
    from rasp_runtime.serialize import ModelFileError, read_metadata

    try:
        model = CompiledModel.load(spec, verify)
        return model, read_metadata(spec)["program"].get("description") or spec
    except ModelFileError as error:
        raise CliError(str(error)) from None


def _refuse_compile_flags(vocab, max_seq_len, *flags) -> None:
    """Refuse compile flags (truthy `flags`: --causal, --form, --layer-norm, a --prefer
    other than depth, --no-fuse) given with a saved model."""
    if vocab is not None or max_seq_len or any(flags):
        raise CliError("--vocab, --max-seq-len, --causal, --form, --layer-norm, --prefer and "
                       "--no-fuse apply when compiling, not to a saved model")


FORM_HELP = ("per-position (default): the program's value at each input position; "
             "completion: a causal decoder that reads the prompt then SEP and writes the "
             "output one token per step, then EOS (see raspc generate)")


def with_form(target: Target, form: str | None) -> Target:
    """`target` compiled in `form` (None: as it is)."""
    if form is None:
        return target
    if target.loaded is not None:
        _refuse_compile_flags(None, None, form)
    return dataclasses.replace(target, form=form)


def load_model_or_target(args, strict: bool = False
                         ) -> tuple[CompiledModel, str, Target | None]:
    """(model, description, target) for a command's `target` argument: a saved model
    (then target is None, and the compile flags are refused; its program is not rebuilt,
    so nothing its JSON names is imported or read) or a compiled program."""
    form = getattr(args, "form", None)
    layer_norm = getattr(args, "layer_norm", False)
    if args.target.endswith(MODEL_SUFFIXES):
        _refuse_compile_flags(args.vocab, args.max_seq_len, args.causal, form, layer_norm,
                              getattr(args, "prefer", "depth") != "depth",
                              not getattr(args, "fuse", True))
        model, description = load_model_file(args.target, args.verify)
        return model, description, None
    target = with_form(load_target(args.target, args.vocab, args.max_seq_len, args.causal,
                                   **target_options(args)), form)
    model, _ = target.compile(strict, layer_norm)
    return model, f"{target.name}: {target.description}", target


def _kind_of(spec: str) -> str:
    """"rasp", "file" (Python) or "example": what kind of program `spec` names."""
    if spec.endswith(".rasp") or ".rasp:" in spec:
        return "rasp"
    return "file" if spec.endswith(".py") or ".py:" in spec else "example"
