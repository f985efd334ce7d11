"""Mutation testing (mutmut 3) of the modules whose output users rely on.

    python benchmarks/mutation.py                      # every module in MODULES
    python benchmarks/mutation.py interp/circuits/scoring.py [...]
    python benchmarks/mutation.py --survivors-only M   # after new tests: the survivors again
    python benchmarks/mutation.py --report-only        # rewrite docs/mutation.md from past runs

Each module runs in its own scratch copy of the repository
(build/mutation/<module>/) against only the test files that cover it, on one
worker. mutmut forks its workers from a fork server that has imported the tests
but never run a jax computation, so every mutant runs jax in a fresh child
(jax deadlocks in a child forked after its backend started). A run starts from
no verdicts; its summary (build/mutation/<module>/summary.json) feeds
docs/mutation.md: per module the mutants, killed, survived and the score, and
every survivor with its justification from benchmarks/mutation_notes.toml.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
REPORT = ROOT / "docs" / "mutation.md"
NOTES = ROOT / "benchmarks" / "mutation_notes.toml"
COPIED = ("rasp", "craft", "compiler", "rasp_runtime", "examples", "raspc", "interp", "tests",
          "pyproject.toml")
PACKAGES = ["rasp", "craft", "compiler", "rasp_runtime", "examples", "raspc", "interp"]

# Module -> the test files that cover it (missing files are skipped), a pytest -k
# expression choosing among them, and whether the fork server may compile the examples
# first. On a shared 2-core machine a mutant's child must stay cheap, so a jax-free
# module runs only its jax-free tests (a child then never starts jax).
JAX_TESTS = ("excluded_edges", "raspc_score", "activation_patching", "every_method",
             "length_is_inert", "hooked_forward", "falsifies_nothing")
NO_JAX = " and ".join(f"not {t}" for t in JAX_TESTS)
# Of the tests that run patching on every example (most of the seconds), only reverse.
PATCHING = ("not (falsifies_nothing or length_is_inert or hooked_forward "
            "or activation_patching_ranks) or reverse")
GROUND_TRUTH = ("json_round_trip or graph_and_alignment or leaves_out or hook_names "
                "or reverse_alignment or mlp_hidden or reverse_edges or reverse_hooks "
                "or canonical_names or length_is_inert or by_hand "
                # per-task truth (for_task) and a rotated residual (direction_vectors, named)
                "or circuits_differ or unknown_task or rotated_truth or save_and_load_keep")
FOLD = ("folded_forward and not sort_unique or full_width and pca or save_load or log_scales "
        "or the_start_is or decode_intermediates or bad_projection or by_hand or float32 "
        "or refused or narrow or gram_schmidt")
COMPRESS = ("not (training_lowers or restarts_run_until or hinge or pca_start_is_exact "
            "or sort_unique or full_width_compression and random)")
# compress() runs every function of compress_train.py, so each mutant would run every
# compression test: only the cheapest that still reach it (the hinge's direct loss, the
# start, the PCA recipe, exact_match), then test_mutants_compress_train.py.
TRAIN = ("hinge or log_scales or the_start_is or default_at_the_read_rank or exact_match_counts "
         "or full_width_compression and pca or bad_training or mutants_compress_train")
DATA = ("path_patching_matches or eap_ig_matches or length_is_inert and reverse "
        "or activation_patching_ranks and reverse or mutants")
TL_WEIGHTS = ("compatibility_mode or interpbench_formats or bridge_matches_model and N5 "
              "or legacy_layout or mutants")
TL_EXPORT = ("transformer_lens_export and (round_trip or formats_load or reports_mistakes "
             "or missing_extra or deterministic) or mutants or export_directory_is_one_model "
             "or re_exporting or carries_pairs")
MODULES = {
    "interp/circuits/scoring.py": (["test_circuits_scoring.py", "test_circuits_edge_names.py",
                                    "test_mutants_scoring.py"], NO_JAX, True),
    "interp/circuits/patching.py": (["test_circuits_scoring.py", "test_circuits_truth.py",
                                     "test_mutants_patching.py"], PATCHING, True),
    # Warm: compiling (constant_directions, value_blind_rows) is only tested by direct calls.
    "compiler/granularity.py": (["test_circuits_truth.py", "test_circuits_scoring.py",
                                 "test_mutants_granularity.py"], NO_JAX, True),
    # Only the attribution tests worked out by hand: every_method runs all five methods.
    "interp/circuits/attribution.py": (["test_circuits_scoring.py", "test_mutants_attribution.py"],
                                       "eap or objective", True),
    # Cold (example_model is here): the tests on reverse that make datasets and score with
    # them, not every method on hist (a surviving mutant would run all five methods).
    "interp/circuits/data.py": (["test_circuits_scoring.py", "test_circuits_truth.py",
                                 "test_mutants_data.py"], DATA, False),
    # As data.py, and the hooked forward against the compiled one on reverse.
    "interp/circuits/hooked.py": (["test_circuits_truth.py", "test_circuits_scoring.py",
                                   "test_mutants_hooked.py"],
                                  DATA + " or hooked_forward and reverse", True),
    # Without the tests that train for seconds (restarts, the loss going down, the hinge,
    # the PCA start on hist): compress's options and summary are checked without training.
    "interp/compress.py": (["test_compress.py", "test_compress_recipes.py",
                            "test_mutants_compress.py"], COMPRESS, False),
    # fold runs in every compression test: only those that fold without training (the
    # training ones cost 3-12 s each per mutant and test nothing of the fold the others miss).
    "interp/compress_fold.py": (["test_compress.py", "test_compress_recipes.py",
                                 "test_mutants_compress_fold.py"], FOLD, False),
    # test_mutants_compress_train.py stands in for the training tests (restarts on stand-in
    # starts, the loss recomputed in numpy).
    "interp/compress_train.py": (["test_compress.py", "test_compress_recipes.py",
                                  "test_mutants_compress_train.py"], TRAIN, False),
    # Only the tests that read the compressed truth or score dictionaries: none of
    # test_compress.py's does, and the SAE training and CLI tests add seconds per mutant.
    "interp/compress_truth.py": (["test_compress_score.py", "test_mutants_compress_truth.py"],
                                 "not trains and not beats and not raspc", False),
    # Only the SAE tests call sae.py (SAELens needs its own venv: test_sae_lens.py is slow).
    "interp/sae.py": (["test_compress_score.py", "test_mutants_sae.py"], "sae", False),
    # Cold (compiling runs from_model), so each child compiles: only the tests that read the
    # truth itself, not those that run models (decoding, ablation, the hooked forward).
    "compiler/ground_truth.py": (["test_ground_truth.py", "test_circuits_truth.py",
                                  "test_multitask_truth.py", "test_realism.py"],
                                 GROUND_TRUTH, False),
    # Split out of ground_truth.py after its run: its verdicts are recorded under
    # compiler.ground_truth.x__alignment / x__implicit in mutation_notes.toml.
    "compiler/alignment.py": (["test_ground_truth.py", "test_circuits_truth.py"],
                              GROUND_TRUTH, False),
    # The tests that export (test_compress_export.py exports nothing): not the README loader's
    # subprocess, and of the files that export in a fixture only the tests about the export.
    "interp/tl_export.py": (["test_transformer_lens_export.py", "test_model_file_checks.py",
                             "test_export_dataset.py", "test_mutants_tl_export.py"],
                            TL_EXPORT, False),
    # Only the tests that run the weights in TransformerLens and compare (at N = 5: default N
    # runs the same code on wider layers): a survivor runs every selected test (20 s a mutant
    # with the whole files). Left out: hook names, the README loader's subprocess and the
    # safetensors round trip (the same native weights), Tracr's converter (the legacy arrays
    # the legacy-layout tests load), the CLI and determinism checks (no numbers compared).
    "interp/tl_weights.py": (["test_transformer_lens_export.py", "test_transformer_lens.py",
                              "test_mutants_tl_weights.py"], TL_WEIGHTS, False),
    "rasp/evaluate.py": (["test_rasp_evaluation.py", "test_rasp_semantics.py",
                          "test_rasp_selectors.py"], None, False),
}
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
# A module split out of another after that one's run: its verdicts are recorded under the
# other's names (mutation_notes.toml), so it has no row until it is run on its own.
RECORDED_UNDER = {"compiler/alignment.py": "compiler/ground_truth.py"}


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def prepare(module: str, before: bool = False) -> pathlib.Path:
    """A scratch copy of the repository whose pyproject configures mutmut for `module`."""
    work = SCRATCH / slug(module)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        source, target = ROOT / name, work / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    files, keep, warm = MODULES[module]
    if before:  # the score before the tests written to kill survivors
        files = [t for t in files if not t.startswith("test_mutants_")]
    tests = [f"tests/{t}" for t in files if (ROOT / "tests" / t).exists()]
    config = {
        "source_paths": PACKAGES,
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-W", "ignore"]
        + (["-k", keep] if keep else []) + (["-p", "tests.mutation_warmup"] if warm else []),
        # Workers fork from a server that collected the tests (and maybe compiled the
        # examples) but never ran a jax computation: jax does not survive a fork once started.
        "process_isolation": "forkserver",
        "forkserver_warmup": "collect",
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    pyproject = work / "pyproject.toml"
    pyproject.write_text((ROOT / "pyproject.toml").read_text() + "\n".join(lines) + "\n")
    return work


def mutmut(work: pathlib.Path, *args: str, capture: bool = True,
           minutes: float | None = None) -> str:
    """Run mutmut in `work`; after `minutes`, interrupt it (it keeps what it tested)."""
    # Children that run jax share compiled programs through jax's on-disk cache.
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(SCRATCH / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    pipe = subprocess.PIPE if capture else None
    with subprocess.Popen([sys.executable, "-m", "mutmut", *args], cwd=work, text=True,
                          stdout=pipe, stderr=pipe, env=env) as process:
        try:
            stdout, stderr = process.communicate(timeout=minutes and minutes * 60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # mutmut 3.8 with a fork server ignores SIGINT
                process.terminate()  # its verdicts so far are already on disk
                process.wait()
            return ""
    result = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    if result.returncode != 0:
        sys.exit(f"mutmut {' '.join(args)} failed in {work}:\n{result.stdout}{result.stderr}")
    return result.stdout if capture else ""


def results(work: pathlib.Path) -> dict[str, str]:
    """{mutant name: status} of the scratch copy's last run."""
    out = mutmut(work, "results", "--all", "true")
    return dict(re.findall(r"^\s*(\S+): (.+)$", out, re.M))


def changed_line(work: pathlib.Path, module: str, name: str) -> str:
    """The mutant's first changed line against the original, as `old` → `new`.

    Read straight from mutmut's mutated copy (every mutant is a function there)
    rather than `mutmut show`, which takes seconds per mutant.
    """
    functions = _functions(work / "mutants" / module)
    short = name.removeprefix(slug(module) + ".")
    orig = short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    original = functions[orig].splitlines()
    mutated = functions[short].replace(short, orig, 1).splitlines()
    diff = [l for l in difflib.ndiff(original, mutated) if l[:1] in "-+"]
    old = next((l[1:].strip() for l in diff if l.startswith("-")), "")
    new = next((l[1:].strip() for l in diff if l.startswith("+")), "")
    return f"`{old}` → `{new}`"


@functools.cache
def _functions(path: pathlib.Path) -> dict[str, str]:
    # Whole lines by line number: ast.get_source_segment splits the whole (megabytes of
    # mutants) source again on every call.
    source = path.read_text()
    lines = source.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno])
            for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}


def run(module: str, survivors_only: bool, before: bool, minutes: float | None) -> None:
    """Mutate `module` from scratch, or test only the last run's survivors again.

    Killed mutants stay killed when tests are only added, so after new tests a
    survivors-only run gives the same counts as a full one in a fraction of the time.
    """
    work = prepare(module, before)
    summary_file = work / "summary.json"
    previous = json.loads(summary_file.read_text()) if summary_file.exists() else None
    names = list(previous["survivors"]) if survivors_only and previous else []
    if survivors_only and not names:
        print(f"{module}: no survivors to test again")
        return
    shutil.rmtree(work / "mutants", ignore_errors=True)  # no stale verdicts from older tests
    start = time.monotonic()
    mutmut(work, "run", "--max-children", "1", *names, capture=False, minutes=minutes)
    seconds = time.monotonic() - start
    status = results(work)
    if names:
        status = {**previous["status"],
                  **{n: status[n] for n in names if status[n] != "not checked"}}
    survivors = {n: changed_line(work, module, n) for n, s in status.items() if s not in KILLED}
    killed = sum(s in KILLED for s in status.values())
    runs = previous["runs"] if names else []
    tested = sum(status[n] != "not checked" for n in names or status)
    runs.append({"seconds": round(seconds), "tested": tested,
                 "killed": killed, "mutants": len(status),
                 "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    summary = {"module": module, "status": status, "survivors": survivors, "runs": runs}
    summary_file.write_text(json.dumps(summary, indent=1))


def report() -> tuple[str, str]:
    """The table rows and the survivor list of docs/mutation.md, from each module's summary."""
    notes = tomllib.loads(NOTES.read_text()) if NOTES.exists() else {}
    old_rows, old_sections = _reported()
    rows, body = [], []
    for module in MODULES:
        summary_file = SCRATCH / slug(module) / "summary.json"
        if not summary_file.exists():  # run elsewhere (build/ is not kept): keep its report
            if module in RECORDED_UNDER and module not in old_rows:
                continue  # its verdicts are in another module's row (see RECORDED_UNDER)
            rows.append(old_rows.get(module, f"| `{module}` | not run yet: "
                                             f"`make mutation MODULES={module}` | | | | | | |"))
            body.extend([old_sections[module]] if module in old_sections else [])
            continue
        summary = json.loads(summary_file.read_text())
        status, survivors, runs = summary["status"], summary["survivors"], summary["runs"]
        killed = sum(s in KILLED for s in status.values())
        equivalent = sum(1 for n in survivors if notes.get(n, "").startswith("equivalent"))
        live = len(status) - equivalent  # mutants that change behaviour
        first = f"{runs[0]['killed'] / live:.0%}" if live else "-"
        score = f"{killed / live:.0%}" if live else "-"
        wall = " + ".join(f"{r['seconds']} s ({r['tested']})" for r in runs)
        rows.append(f"| `{module}` | {len(status)} | {killed} | {len(survivors)} | {equivalent} "
                    f"| {first} | {score} | {wall} |")
        unchecked = [n for n in survivors if status[n] == "not checked"]
        if survivors:
            body.append(f"\n### `{module}`\n")
            if unchecked:
                body.append(f"- {len(unchecked)} mutants not checked: the run was stopped "
                            f"(`--minutes`); they count as survivors.")
            for name, line in survivors.items():
                if name in unchecked:
                    continue
                why = notes.get(name, "not yet justified: a test should kill it")
                body.append(f"- `{_function(name)}` #{name.split('__mutmut_')[-1]} "
                            f"({status[name]}): {line}. {why}")
    return "\n".join(rows), "\n".join(body)


def _reported() -> tuple[dict[str, str], dict[str, str]]:
    """docs/mutation.md's present table rows and survivor sections, by module."""
    text = REPORT.read_text()
    rows = {m: line for line in text.splitlines()
            for m in re.findall(r"^\| `([^`]+)` \| \d", line)}
    sections = {m: f"\n### `{m}`\n\n" + part.strip() for m, part in
                re.findall(r"^### `([^`]+)`\n(.*?)(?=^### |^<!-- end results -->)", text, re.M | re.S)}
    return rows, sections


def _function(name: str) -> str:
    return name.split(".")[-1].split("__mutmut_")[0].removeprefix("x_").removeprefix("xǁ")


def write_report() -> None:
    """Replace the results part of docs/mutation.md (between its two markers)."""
    rows, body = report()
    start, end = "<!-- results -->", "<!-- end results -->"
    table = ("| module | mutants | killed | survived | of them equivalent | first run | score "
             "| wall time (mutants tested) |\n|---|---|---|---|---|---|---|---|\n"
             + rows + "\n\n## Survivors\n" + body + "\n")
    before, rest = REPORT.read_text().split(start)
    REPORT.write_text(before + start + "\n" + table + end + rest.split(end)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all)")
    parser.add_argument("--survivors-only", action="store_true",
                        help="test only the last run's survivors again (after adding tests)")
    parser.add_argument("--before", action="store_true",
                        help="leave out tests/test_mutants_*.py (the score before them)")
    parser.add_argument("--minutes", type=float,
                        help="stop each module after this long (untested mutants: not checked)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        sys.exit(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    if not args.report_only:
        for module in args.modules or MODULES:
            run(module, args.survivors_only, args.before, args.minutes)
    write_report()


if __name__ == "__main__":
    main()
