"""The zoo leaderboard: edge AUROC per method, overall and by source, family, size, variant.

`leaderboard_markdown(rows, manifest)` summarises benchmark rows (one per cell)
joined with the zoo's manifest: for each method the cells run, how many failed
or timed out, how many have a defined edge AUROC (undefined where a model's
circuit has no scorable true edge, or no false one), and the mean, standard
deviation and quartiles of the defined ones. Size is the model's layer count
in bands. Dictionary methods (`sae`) have no edge AUROC: they get a table of their
own (mean max cosine and the share of features recovered, beside random directions,
overall and by variant) and stay out of the AUROC tables and the plot.
`write_leaderboard` writes it as leaderboard.md, with one plot
(leaderboard.png, the distribution per method) when matplotlib is installed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

SIZE_BANDS = ((1, 2), (3, 4), (5, 6), (7, None))  # layers


def size_band(layers: int) -> str:
    """The size group of a model with `layers` layers, e.g. '3-4 layers'."""
    for low, high in SIZE_BANDS:
        if high is None or layers <= high:
            return f"{low}+ layers" if high is None else f"{low}-{high} layers"
    raise AssertionError("unreachable")


def leaderboard_markdown(rows: list[dict], manifest: list[dict]) -> str:
    """The leaderboard tables (see the module docstring) as Markdown."""
    from interp.zoo.cells_sae import DICTIONARY_METHODS

    models = {m["id"]: m for m in manifest}
    rows = [r for r in rows if r["model"] in models]
    if not rows:
        return "No benchmark results yet."
    dictionary = [r for r in rows if r["method"] in DICTIONARY_METHODS]
    rows = [r for r in rows if r["method"] not in DICTIONARY_METHODS]
    tables = [_auroc_tables(rows, models)] if rows else []
    if dictionary:
        tables.append(_dictionary_table(dictionary, models))
    return "\n\n".join(tables)


def _auroc_tables(rows: list[dict], models: dict) -> str:
    """The edge AUROC tables of the circuit methods' rows."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"{len({r['model'] for r in rows})} models, {len(rows)} cells; edge AUROC "
             "over the cells where it is defined (mean ± standard deviation, median and "
             "quartiles). n/a: no scorable true edge, or no false one.", "",
             "| method | cells | failed / timed out | AUROC defined | mean ± sd | "
             "median [q1, q3] | AUROC = 1 | mean seconds (wall / CPU) |",
             "|---|---|---|---|---|---|---|---|"]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        ok = [r for r in mine if r["status"] == "ok"]
        values = [r["edge_auroc"] for r in ok if r.get("edge_auroc") is not None]
        bad = len(mine) - len(ok)
        lines.append(f"| {method} | {len(mine)} | {bad} | {len(values)} | {_mean_sd(values)} "
                     f"| {_quartiles(values)} | {_share(values)} | {_mean(ok, 'seconds')} / "
                     f"{_mean(ok, 'cpu_seconds')} |")
    groups = (("source", lambda m: m["source"]),
              ("size", lambda m: size_band(m.get("layers", 0))),
              ("variant", lambda m: m["variant"]),
              ("family", lambda m: m["family"]))
    for title, key in groups:
        lines += ["", _grouped(title, key, rows, models, methods)]
    return "\n".join(lines)


def _dictionary_table(rows: list[dict], models: dict) -> str:
    """Dictionary methods: a row per method over all models, then one per variant."""
    lines = [f"Dictionary methods: an SAE on each model's middle residual (rotated), its "
             f"decoder rows scored against the known features: mean max cosine and the "
             f"share of features recovered at cosine ≥ 0.9 (mean ± sd over "
             f"{len({r['model'] for r in rows})} models), beside random directions.", "",
             "| method | variant | cells | failed / timed out | mean max cosine | "
             "recovered ≥ 0.9 | random directions | mean seconds (wall / CPU) |",
             "|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        variants = sorted({models[r["model"]]["variant"] for r in mine})
        for variant in ["all"] + (variants if len(variants) > 1 else []):
            group = [r for r in mine if variant == "all"
                     or models[r["model"]]["variant"] == variant]
            ok = [r for r in group if r["status"] == "ok"]
            cosines, recovered, random_ = ([r[k] for r in ok] for k in (
                "mean_max_cosine", "recovered", "random_mean_max_cosine"))
            lines.append(f"| {method} | {variant} | {len(group)} | {len(group) - len(ok)} | "
                         f"{_mean_sd(cosines)} | {_mean_sd(recovered)} | "
                         f"{_mean_sd(random_)} | {_mean(ok, 'seconds')} / "
                         f"{_mean(ok, 'cpu_seconds')} |")
    return "\n".join(lines)


def _grouped(title: str, key: Callable[[dict], str], rows, models, methods) -> str:
    """One table: a row per group, a column per method, cells 'mean ± sd (n)'."""
    groups = sorted({key(models[r["model"]]) for r in rows})
    count = {g: len({r["model"] for r in rows if key(models[r["model"]]) == g}) for g in groups}
    lines = [f"| {title} | models | " + " | ".join(methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for group in groups:
        cells = []
        for method in methods:
            values = [r["edge_auroc"] for r in rows if r["method"] == method
                      and r["status"] == "ok" and r.get("edge_auroc") is not None
                      and key(models[r["model"]]) == group]
            cells.append(f"{_mean_sd(values)} ({len(values)})" if values else "-")
        lines.append(f"| {group} | {count[group]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean(rows, field: str) -> str:
    values = [r[field] for r in rows if r.get(field) is not None]
    return f"{statistics.fmean(values):.1f}" if values else "-"


def _mean_sd(values) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def _quartiles(values) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q2:.3f} [{q1:.3f}, {q3:.3f}]"


def _share(values) -> str:
    return f"{sum(v == 1.0 for v in values) / len(values):.0%}" if values else "-"


def write_leaderboard(out, rows: list[dict], manifest: list[dict]) -> tuple[str, list[Path]]:
    """(the Markdown, the files written): out/leaderboard.md and, with matplotlib and
    some circuit method's rows, out/leaderboard.png."""
    from interp.zoo.cells_sae import DICTIONARY_METHODS

    out = Path(out)
    text = leaderboard_markdown(rows, manifest)
    files = [out / "leaderboard.md"]
    files[0].write_text(text + "\n", encoding="utf-8")
    circuit_rows = [r for r in rows if r["method"] not in DICTIONARY_METHODS]
    try:
        if circuit_rows:
            files.append(_plot(out / "leaderboard.png", circuit_rows))
    except ImportError:
        pass  # the plots extra is not installed: the table alone
    return text, files


def _plot(path: Path, rows: list[dict]) -> Path:
    """A box plot of edge AUROC per method (with each method's n)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    data = [[r["edge_auroc"] for r in rows if r["method"] == m and r["status"] == "ok"
             and r.get("edge_auroc") is not None] for m in methods]
    figure, axes = plt.subplots(figsize=(1.6 + 1.4 * len(methods), 3.6))
    shown = [(m, d) for m, d in zip(methods, data) if d]
    if shown:
        axes.boxplot([d for _, d in shown], showmeans=True)
        axes.set_xticks(range(1, len(shown) + 1),
                        [f"{m}\n(n={len(d)})" for m, d in shown], fontsize=8)
    axes.set_ylabel("edge AUROC (component)")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(f"Circuit discovery over {len({r['model'] for r in rows})} zoo models",
                   fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)
    return path
