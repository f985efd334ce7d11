"""A saved model as a raspc target: its program rebuilt without running code the model
file names, unless the user asks (`--trust-program-source`); see raspc.targets."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from examples.library import EXAMPLES
from raspc.targets import (MODEL_SUFFIXES, CliError, Target, _kind_of, _program_file_target,
                           _refuse_compile_flags, load_model_file, load_target,
                           rasp_file_target)


def saved_model_target(spec: str, vocab: str | None = None, max_seq_len: int | None = None,
                       causal: bool = False, *, search_path=(), program: str | None = None,
                       trust_source: bool = False, verify: bool = True) -> Target:
    """A saved model with its program rebuilt, never by running code the model file names
    unless asked: from `program` (a target the user gives), else from the library example
    the model records by name, else, only with `trust_source`, from the file it records."""
    from rasp_runtime.serialize import describe_program, program_structure, read_metadata

    _refuse_compile_flags(vocab, max_seq_len, causal)
    start = time.perf_counter()
    model, description = load_model_file(spec, verify)
    seconds = time.perf_counter() - start
    source, config = model.source, model.config
    if program is not None:
        if program.endswith(MODEL_SUFFIXES):
            raise CliError(f"--program {program}: name the program (an example name, "
                           "FILE.py:FUNCTION or FILE.rasp:NAME), not a saved model")
        where, kind = program, _kind_of(program)
    else:
        where, kind = _recorded_program(spec, source, trust_source)
    target = _rebuilt_target(spec, where, kind, config, search_path, program is None)
    expressions = read_metadata(spec)["program"].get("expressions")
    if expressions and program_structure(describe_program(target.program)) != \
            program_structure(expressions):
        raise CliError(f"the program {where} no longer matches the one {spec} was compiled "
                       "from; give the matching program or recompile the model")
    vocab, _, causal = _program_settings(config)
    return dataclasses.replace(target, name=spec, description=description, vocab=vocab,
                               causal=causal, source=source, loaded=(model, seconds),
                               form=config.form)


def _program_settings(config) -> tuple[tuple, int, bool]:
    """(vocab, max_seq_len, causal) of the program a saved model computes: for a completion
    model, its prompt's, not those of the raw sequence it runs."""
    if config.form == "completion":
        return config.prompt_vocab, config.prompt_len, config.completion_causal
    return config.vocab, config.max_seq_len, config.causal


def _recorded_program(spec: str, source: Any, trust_source: bool) -> tuple[str, str]:
    """(where, kind) of the program `source` records: an example's name, or, with
    `trust_source` only, a file and the name in it. The JSON is not trusted: opening a
    model must not import (run) or read a file it names unless the user says so."""
    kind = source.get("kind") if isinstance(source, dict) else None
    if kind == "example" and isinstance(source.get("name"), str):
        if source["name"] not in EXAMPLES:  # looked up by name: nothing in the file runs
            raise CliError(f"{spec} was compiled from the example {source['name']!r}, "
                           "which no longer exists; recompile the model")
        return source["name"], kind
    name = source.get("function") or source.get("name") if kind in ("file", "rasp") else None
    if not (isinstance(name, str) and isinstance(source.get("file"), str)):
        raise CliError(f"{spec} does not record where its program came from (only models "
                       "saved by `raspc compile -o` do); give the program with --program "
                       "EXAMPLE, FILE.py:FUNCTION or FILE.rasp:NAME")
    where = f"{source['file']}:{name}"
    if not trust_source:
        raise CliError(f"{spec} says its program came from {where}, and raspc does not "
                       "import or read a file a model names: give the program with --program "
                       "FILE.py:FUNCTION (or FILE.rasp:NAME), or pass --trust-program-source "
                       "to import the recorded file if you trust this model")
    return where, kind


def _rebuilt_target(spec: str, where: str, kind: str, config, search_path,
                    recorded: bool) -> Target:
    """The Target of a saved model's program: `where` is an example name (kind
    "example"), FILE.py:FUNCTION ("file") or FILE.rasp:NAME ("rasp"), `recorded` in
    the model or given by the user."""
    vocab, length, causal = _program_settings(config)
    if kind == "rasp":
        return rasp_file_target(where, ",".join(map(str, vocab)), length, causal, search_path)
    if kind == "example":
        target = load_target(where, max_seq_len=length)
        target.sample = lambda rng: EXAMPLES[where].sample(rng, length, vocab)
        return target
    try:
        return _program_file_target(where, vocab, length, causal)
    except CliError as error:
        if not recorded:
            raise
        raise CliError(f"{spec} was compiled from {where}, which cannot be re-imported: "
                       f"{error}", error.status) from None
