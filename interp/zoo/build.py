"""`build_zoo`: compile, verify and export many models into one directory, resumably.

Each kept model is a directory named by its id in the InterpBench export layout
(interp.tl_export: weights loadable without our code, ground_truth.json,
edges.json, InterpBench's files, dataset.json), plus the program as RASP text
(program.rasp, via compiler.to_source; random programs also as program.py) and
zoo_entry.json, its manifest row. A model is kept only if the model loaded back
from its directory agrees exactly with the evaluator on its dataset.json inputs
and on further inputs (all of them where there are at most EXHAUSTIVE_LIMIT);
everything else is refused, counted by reason in refused.jsonl, never kept.
A variant (interp.zoo.sources.VARIANTS) compiles with its keyword arguments and
then applies its knob; a knob's refusal refuses that model too, and a kept model's
row lists its knobs with their parameters (`knobs`). A model is written under a
temporary name and renamed when complete, so a rerun skips finished models (and
known refusals) and redoes only a half-written one.
`manifest.jsonl` has one row per kept model, in build order.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
import json
import random
import shutil
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from interp.zoo.sources import ModelSpec, random_spec
from rasp.errors import CompileError, CompileWarning, KnobError, RaspError

MANIFEST = "manifest.jsonl"
REFUSED = "refused.jsonl"
ENTRY = "zoo_entry.json"
SUMMARY = "build.json"
EXHAUSTIVE_LIMIT = 512    # verify every input when there are at most this many
SAMPLED_INPUTS = 128      # else the dataset's inputs and this many sampled ones
MAX_DRAWS_PER_KEPT = 20   # random programs drawn per one kept, before giving up


@dataclasses.dataclass
class BuildSummary:
    """What a build did: models kept (new and reused), refusals by reason, seconds."""

    out: Path
    built: int = 0
    reused: int = 0
    refused: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0

    @property
    def kept(self) -> int:
        return self.built + self.reused

    def format(self) -> str:
        lines = [f"{self.kept} models in {self.out}/ ({self.built} built, {self.reused} "
                 f"already there) in {self.seconds:.0f} s; {sum(self.refused.values())} refused"]
        lines += [f"  {count:5d}  {reason}" for reason, count in self.refused.most_common()]
        return "\n".join(lines)


def build_zoo(out, library: Sequence[ModelSpec] = (), random_programs: int = 0,
              seed: int = 0, variants: Sequence[str] = ("plain",),
              random_max_len: int | None = None, progress: bool = True,
              recheck_truth: bool = False) -> BuildSummary:
    """Build (or finish building) a zoo in `out`: every spec of `library`, then
    `random_programs` random programs of `seed` that compile and verify, in each variant.
    `recheck_truth`: path patching re-checks each knobbed variant's carried truth too
    (interp.realism.recheck_truth; about twice the cost of building the model)."""
    from interp.extras import import_extra

    for module in ("safetensors.numpy", "torch"):  # the InterpBench layout: before any model
        import_extra(module)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    summary = BuildSummary(out)
    refused_before = _read_jsonl(out / REFUSED)
    known_refusals = {r["id"]: r["reason"] for r in refused_before}
    rows, seen = [], {}
    bar = _progress(len(library) + random_programs * len(variants), progress)

    def attempt(spec: ModelSpec) -> bool:
        row, reason = _existing_or_new(spec, out, known_refusals, seen, summary, recheck_truth)
        if row is not None:
            rows.append(row)
            seen.setdefault(_identity(row), row["id"])
        elif spec.id not in known_refusals:
            known_refusals[spec.id] = reason
            _append_jsonl(out / REFUSED, {"id": spec.id, "reason": reason})
        if row is None:
            summary.refused[reason] += 1
        bar.set_postfix(kept=summary.kept, refused=sum(summary.refused.values()))
        return row is not None

    for spec in library:
        attempt(spec)
        bar.update()
    kept_random = 0
    for index in itertools.count():
        if kept_random >= random_programs or index >= MAX_DRAWS_PER_KEPT * random_programs:
            break
        kwargs = {} if random_max_len is None else {"max_len": random_max_len}
        kept_here = [attempt(random_spec(seed, index, variant, **kwargs)) for variant in variants]
        if any(kept_here):  # a program some knob refuses still counts when another kept it
            kept_random += 1
            bar.update(len(variants))
    bar.close()
    summary.seconds = time.perf_counter() - start
    _write_jsonl(out / MANIFEST, rows)
    (out / SUMMARY).write_text(json.dumps(
        {"kept": summary.kept, "built_now": summary.built, "reused": summary.reused,
         "refused": dict(summary.refused.most_common()), "seconds": round(summary.seconds, 1),
         "cpu_seconds": round(time.process_time() - cpu_start, 1),
         "seed": seed, "random_programs": random_programs}, indent=1) + "\n")
    return summary


def read_manifest(zoo) -> list[dict]:
    """The manifest rows of the zoo directory `zoo` (InputError when it has none)."""
    from rasp.errors import InputError

    path = Path(zoo) / MANIFEST
    if not path.is_file():
        raise InputError(f"{zoo} is not a zoo: it has no {MANIFEST} (build one with "
                         f"`raspc zoo build {zoo}`)")
    return _read_jsonl(path)


def _existing_or_new(spec, out: Path, known_refusals, seen, summary, recheck: bool = False):
    """(manifest row, None) for a model kept now or before, else (None, reason)."""
    entry = out / spec.id / ENTRY
    if entry.is_file():
        summary.reused += 1
        return json.loads(entry.read_text()), None
    if spec.id in known_refusals:
        return None, known_refusals[spec.id]
    try:
        row, reason = build_model(spec, out, seen, recheck)
    except Exception as error:  # noqa: BLE001  a crash refuses this model, never the build
        row, reason = None, f"internal error: {type(error).__name__}: {_first_line(error)}"
    if row is not None:
        summary.built += 1
    return row, reason


def build_model(spec: ModelSpec, out: Path, seen: dict | None = None, recheck: bool = False):
    """Compile, export and verify one model into out/<id>; (row, None) or (None, reason).
    `recheck`: also re-check a knobbed variant's truth by path patching."""
    from compiler import compile_rasp_to_model, to_source

    program = spec.build()
    rasp_text, rasp_error = _rasp_text(to_source, program, spec)
    program_hash = hashlib.sha256(_program_text(program, spec).encode())
    row = {"id": spec.id, "source": spec.source, "family": spec.family,
           "origin": spec.origin, "program_hash": program_hash.hexdigest()[:16],
           "vocab": [_plain(t) for t in spec.vocab], "max_seq_len": spec.max_seq_len,
           "causal": spec.causal, "variant": spec.variant}
    if seen is not None and _identity(row) in seen:
        return None, "duplicate of a model already in the zoo"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CompileWarning)
            model = compile_rasp_to_model(program, set(spec.vocab), spec.max_seq_len,
                                          causal=spec.causal, **spec.compile_kwargs)
        model.source = spec.model_source
        model = spec.apply_knob(model)
    except CompileError as error:
        return None, f"refused by the compiler: {error.reason}"
    except KnobError as error:
        return None, f"refused by the {spec.variant} knob: {_first_line(error)}"
    except RaspError as error:
        return None, f"refused: {_first_line(error)}"
    final, partial = out / spec.id, out / f".{spec.id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save(partial, f"zoo model {spec.id}", format="interpbench")
    try:
        reason = _finish(partial, row, model, program, spec, rasp_text, rasp_error, recheck)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if reason is not None:
        shutil.rmtree(partial, ignore_errors=True)
        return None, reason
    shutil.rmtree(final, ignore_errors=True)  # a directory without its entry is incomplete
    partial.rename(final)
    return row, None


def _finish(directory: Path, row, model, program, spec, rasp_text, rasp_error, recheck):
    """Verify the model loaded back from `directory`; fill `row` and write the extra
    files; the reason to refuse it, or None."""
    from interp.tl_export import DATASET_FILE
    from rasp_runtime.model import CompiledModel
    from rasp_runtime.verify import verify_inputs

    if not (directory / DATASET_FILE).is_file():
        return "too few inputs the evaluator accepts to write dataset.json"
    loaded = CompiledModel.load(directory)
    inputs, exhaustive = _verification_inputs(model, json.loads(
        (directory / DATASET_FILE).read_text()), spec.id)
    result = verify_inputs(loaded, program, inputs)
    if result.mismatches:
        return f"disagrees with the evaluator (a compiler bug; e.g. {result.mismatches[0]})"
    if result.checked == 0:
        return "no input the evaluator accepts"
    if recheck and loaded.knobs:
        from interp.realism import recheck_truth
        check = recheck_truth(loaded)
        if not check.ok:
            return f"its truth fails the path-patching re-check: {check.failures[0]}"
        row["truth_recheck"] = {"edges": check.edges, "failures": 0}
    truth = model.ground_truth
    circuit = truth.circuit_graph("component")
    row.update({
        "layers": len(model.config.layers), "d_model": model.config.d_model,
        "heads": sum(layer.num_heads for layer in model.config.layers),
        "params": int(sum(np.size(w) for module in model.params.values()
                          for w in module.values())),
        "circuit_edges": circuit.number_of_edges(), "circuit_nodes": circuit.number_of_nodes(),
        "verification": {"checked": result.checked, "mismatches": 0,
                         "outside_domain": sum(result.outside.values()),
                         "exhaustive": exhaustive},
        "knobs": _knobs(model),
        "rasp_source": "program.rasp" if rasp_text is not None else None,
        "rasp_source_refused": rasp_error})
    if rasp_text is not None:
        (directory / "program.rasp").write_text(rasp_text)
    if spec.python_source is not None:
        (directory / "program.py").write_text(
            f"# random program {spec.origin}; builds `program` with `import bisect, rasp`\n"
            f"{spec.python_source}\n")
    row["bytes"] = sum(p.stat().st_size for p in directory.iterdir())
    (directory / ENTRY).write_text(json.dumps(row, indent=1) + "\n")
    return None


def _knobs(model) -> list[dict]:
    """The model's compile-time knobs and its interp.realism knobs with their parameters
    (seed, block, scale; soft attention's logit gap per head), in the order applied."""
    knobs = []
    if model.config.normalization != "none":
        knobs.append({"knob": "layer_norm", "normalization": model.config.normalization})
    if model.attention_gaps is not None:
        knobs.append({"knob": "soft_attention", "gaps": dict(sorted(model.attention_gaps.items()))})
    return knobs + [dict(knob) for knob in model.knobs]


def _verification_inputs(model, dataset: dict, key: str):
    """(inputs, exhaustive): every input if there are few, else the dataset's and sampled."""
    from interp.circuits.dataset_file import export_sampler

    vocab, n = list(model.config.vocab), model.config.max_seq_len
    if sum(len(vocab) ** k for k in range(1, n + 1)) <= EXHAUSTIVE_LIMIT:
        return [list(xs) for k in range(1, n + 1)
                for xs in itertools.product(vocab, repeat=k)], True
    inputs = dataset_inputs(model, dataset)
    sampler, _ = export_sampler(model)
    rng = random.Random(f"verify:{key}")
    inputs += [sampler(rng, vocab, rng.randint(1, n)) for _ in range(SAMPLED_INPUTS)]
    return inputs, False


def dataset_inputs(model, dataset: dict) -> list[list]:
    """The clean and corrupted inputs of a dataset.json's pairs, in the model's tokens."""
    tokens = {str(t): t for t in model.config.vocab}  # JSON turned tuples into lists
    return [[tokens.get(str(t), t) for t in pair[side]] for pair in dataset["pairs"]
            for side in ("clean", "corrupted")]


def _rasp_text(to_source, program, spec):
    """(the program as RASP text, None), or (None, why to_source refused it)."""
    try:
        return to_source(program, spec.vocab, spec.max_seq_len, name="program") + "\n", None
    except RaspError as error:
        return None, _first_line(error)


def _program_text(program, spec) -> str:
    """Text identifying the program: a random one's source; a library one's structure
    (labels aside: unnamed expressions' labels carry rasp's global ids)."""
    from rasp_runtime.serialize import describe_program, program_structure

    if spec.python_source is not None:
        return spec.python_source
    return f"{spec.family}: {program_structure(describe_program(program))!r}"


def _identity(row) -> tuple:
    """What makes two models the same: program, vocabulary, length, causality, variant."""
    return (row["program_hash"], tuple(map(str, row["vocab"])), row["max_seq_len"],
            row["causal"], row["variant"])


def _plain(value):
    from interp.tl_export import _plain as plain
    return plain(value)


def _first_line(error) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="zoo build", unit="model", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
