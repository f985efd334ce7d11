"""The fuzz property: a case compiles exactly or is refused by name; and minimising."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import random
import re
import time
import warnings
import zlib

import rasp
from examples.random_programs.model import INPUTS_PER_PROGRAM, FuzzCase

# ------------------------------------------------------------------ the property


def make_inputs(vocab, max_seq_len: int, rng: random.Random,
                count: int = INPUTS_PER_PROGRAM) -> list[list]:
    """Every input if there are at most `count`, else `count` random ones."""
    vocab = list(vocab)
    total = sum(len(vocab) ** n for n in range(1, max_seq_len + 1))
    if total <= count:
        return [list(xs) for n in range(1, max_seq_len + 1)
                for xs in itertools.product(vocab, repeat=n)]
    return [[rng.choice(vocab) for _ in range(rng.randint(1, max_seq_len))]
            for _ in range(count)]


def case_inputs(case: FuzzCase, count: int = INPUTS_PER_PROGRAM) -> list[list]:
    """Inputs for a case, seeded by its source (deterministic)."""
    seed = zlib.crc32(f"{case.program_source}|{case.vocab}|{case.max_seq_len}".encode())
    return make_inputs(case.vocab, case.max_seq_len, random.Random(seed), count)


def program_labels(program) -> set[str]:
    order = rasp.topological_order(program)
    return {e.label for e in order} | set(rasp.unique_labels(order).values())


def label_in_program(label, labels: set[str]) -> bool:
    if not isinstance(label, str):
        return False
    return label in labels or any(label.startswith(l + ".") for l in labels)


@dataclasses.dataclass
class Outcome:
    """What happened to one case. `ok` unless the property failed."""

    status: str                  # exact | refused | mismatch | error | bad_label | unsound_domain
    #                              | unsound_empty | wrong_tie_sort
    checked: int = 0             # inputs the evaluator accepted
    tried: int = 0               # inputs offered (all of them when there are few)
    reason: str = ""             # CompileError reason or exception text
    label: str | None = None
    mismatches: list = dataclasses.field(default_factory=list)
    compile_seconds: float = 0.0
    verify_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("exact", "refused")

    def describe(self, case: FuzzCase) -> str:
        text = f"{self.status}: {self.reason}\n{case!r}"
        for m in self.mismatches[:3]:
            text += f"\n  input {m.input}: evaluator {m.expected}, model {m.got}"
        return text


def check_case(case: FuzzCase, inputs: list[list] | None = None) -> Outcome:
    """Compile the case; a refusal must name a program expression, a model must be exact."""
    from compiler.compiling import compile_rasp_to_model
    from rasp_runtime.verify import verify_inputs

    program, vocab, max_seq_len, causal = case
    inputs = case_inputs(case) if inputs is None else inputs
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():  # a partial domain is checked below, not warned
            warnings.simplefilter("ignore", rasp.CompileWarning)
            model = compile_rasp_to_model(program, vocab, max_seq_len, causal=causal)
    except rasp.CompileError as error:
        elapsed = time.perf_counter() - start
        if EMPTY in error.reason and any(_valid(program, xs, causal) for xs in inputs):
            return Outcome("unsound_empty", reason=f"refused as empty, but the evaluator "
                           f"accepts some input: {error.reason}", label=error.label,
                           compile_seconds=elapsed)
        if label_in_program(error.label, program_labels(program)):
            return Outcome("refused", reason=error.reason, label=error.label,
                           compile_seconds=elapsed)
        return Outcome("bad_label", reason=f"label {error.label!r} names no expression "
                       f"of the program: {error}", label=error.label, compile_seconds=elapsed)
    except Exception as error:  # noqa: BLE001  any other exception is a failure
        return Outcome("error", reason=f"compile raised {type(error).__name__}: {error}",
                       compile_seconds=time.perf_counter() - start)
    compiled = time.perf_counter()
    try:
        result = verify_inputs(model, program, inputs)
    except Exception as error:  # noqa: BLE001
        return Outcome("error", reason=f"running raised {type(error).__name__}: {error}",
                       compile_seconds=compiled - start,
                       verify_seconds=time.perf_counter() - compiled)
    checked, mismatches = result.checked, result.mismatches
    # Soundness of model.domain: every input the evaluator rejects falls under a condition.
    unforeseen = set(result.outside) - {c.reason for c in model.domain.conditions}
    if unforeseen:
        return Outcome("unsound_domain", checked=checked, tried=len(inputs),
                       reason=f"inputs outside the domain that model.domain does not list: "
                              f"{sorted(unforeseen)}", compile_seconds=compiled - start)
    wrong = _tie_sort_errors(program, max_seq_len, model.domain)
    if wrong:
        return Outcome("wrong_tie_sort", checked=checked, tried=len(inputs), reason=wrong,
                       compile_seconds=compiled - start)
    outcome = Outcome("mismatch" if mismatches else "exact", checked=checked,
                      tried=len(inputs), mismatches=mismatches, compile_seconds=compiled - start,
                      verify_seconds=time.perf_counter() - compiled)
    if mismatches:
        outcome.reason = f"{len(mismatches)} of {checked} inputs disagree"
    return outcome


EMPTY = "no input of this vocabulary is valid"
# A colliding pair named by an ambiguity condition (compiler.uniqueness.Collision).
WITNESS = re.compile(r"gives (.+?) at position (\d+) and (.+?) at position (\d+) one key")


def _valid(program, xs, causal) -> bool:
    try:
        rasp.evaluate(program, xs, causal=causal)
        return True
    except rasp.EvaluationError:
        return False


def _tie_sort_errors(program, max_seq_len: int, domain) -> str:
    """What model.domain gets wrong about the generator's make_sort shapes (labels
    tie_sort_*, examples/random_programs): a total one must not be listed; a colliding
    one must be, at the length it was made for; and a colliding pair it names must be
    one on which the evaluator rejects an input holding it."""
    listed = {c.label: c for c in domain.conditions}
    for label in sorted(l for l in program_labels(program) if l.startswith("tie_sort_")):
        condition = listed.get(label)
        if label.startswith("tie_sort_total") and condition is not None:
            return f"{label} is provably total, but the domain lists it: {condition}"
        if condition is None:
            if label.startswith(f"tie_sort_collides_at_{max_seq_len}_"):
                return f"{label} can collide at length {max_seq_len}; the domain misses it"
            continue
        found = WITNESS.search(str(condition))
        if found is None:
            return f"{label}'s condition names no colliding pair: {condition}"
        a, i, b, j = found.groups()
        i, j = int(i), int(j)
        xs = [ast.literal_eval(b)] * (max(i, j) + 1)
        xs[i], xs[j] = ast.literal_eval(a), ast.literal_eval(b)
        if _valid(program, xs, False):
            return f"{label}'s colliding pair is no collision: the evaluator accepts {xs}"
    return ""


def reason_group(reason: str) -> str:
    """A refusal reason with its specifics (names, values, numbers) blanked out."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason.splitlines()[0] if reason else "")
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", "(…)", text)
    return re.sub(r"-?\d+(\.\d+)?", "N", text)


# ------------------------------------------------------------------ minimising


def minimise(case: FuzzCase, outcome: Outcome, inputs: list[list] | None = None):
    """A smaller failing case: the smallest failing sub-program, the smallest
    max_seq_len, and the shortest failing input. Returns (case, outcome)."""
    def fails(c: FuzzCase):
        o = check_case(c, case_inputs(c, 200) if inputs is None else
                       [xs for xs in inputs if len(xs) <= c.max_seq_len])
        return o if not o.ok else None

    best, best_outcome = case, outcome
    for var in sorted(case.sop_vars(), key=lambda v: case.with_output(v).size()):
        if var == case.output:
            break
        sub = case.with_output(var)
        if sub.size() >= best.size():
            continue
        o = fails(sub)
        if o is not None:
            best, best_outcome = sub, o
            break
    for n in range(1, best.max_seq_len):
        o = fails(best.with_max_seq_len(n))
        if o is not None:
            best, best_outcome = best.with_max_seq_len(n), o
            break
    if best_outcome.mismatches:
        best_outcome.mismatches.sort(key=lambda m: (len(m.input), repr(m.input)))
    return best, best_outcome


def repro(case: FuzzCase, outcome: Outcome) -> str:
    """A standalone script reproducing a failure."""
    text = case.source
    if outcome.mismatches:
        m = outcome.mismatches[0]
        text += (f"\nxs = {m.input!r}\n"
                 f"print('evaluator', rasp.evaluate(program, xs, causal=causal))  "
                 f"# {m.expected!r}\n"
                 f"print('model    ', model.apply([model.config.bos, *xs]).decoded[1:])  "
                 f"# {m.got!r}\n")
    else:
        text = f"# {outcome.status}: {outcome.reason}\n" + text
    return text

