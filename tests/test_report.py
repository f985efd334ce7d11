"""The HTML report, opened in a real headless Chromium (Debian's, driven by playwright).

Checks that the page is self-contained, that it renders (a screenshot that is
not blank, every SVG with a non-zero box) and that the console stays clean.
Without Chromium the browser test is skipped, except in CI where it must run.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

import rasp  # noqa: E402
from compiler import compile_rasp_to_model  # noqa: E402
from examples.library import EXAMPLES  # noqa: E402
from interp.report import program_listing, render_report  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sort_report(tmp_path_factory):
    example = EXAMPLES["sort"]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5)
    path = tmp_path_factory.mktemp("report") / "sort.html"
    path.write_text(render_report(model, [3, 1, 2, 1], "sort"), encoding="utf-8")
    return model, path


def test_the_page_holds_every_part_and_fetches_nothing(sort_report):
    model, path = sort_report
    page = path.read_text(encoding="utf-8")
    for heading in ("Program", "Layers, heads and MLPs", "Attention", "Residual stream",
                    "Decoding", "Ground-truth circuit"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<svg") == 4  # program, attention, residuals, circuit (decoding: a table)
    for c in model.components:
        assert html_escaped(c.info.predicate or c.info.exprs[0]) in page
    # no external resource: nothing is loaded by URL except the data: download
    urls = re.findall(r'(?:src|href)="([^"#][^"]*)"', page)
    assert urls and all(u.startswith("data:") for u in urls), urls
    assert "<link" not in page and "<script" not in page and "@import" not in page
    encoded = re.search(r'href="data:application/json;base64,([^"]+)"', page).group(1)
    truth = json.loads(base64.b64decode(encoded))
    assert truth == json.loads(model.ground_truth.to_json())


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_program_listing_names_every_expression():
    program = EXAMPLES["reverse"].build(5)
    listing = program_listing(program)
    assert listing.splitlines()[-1].startswith("reverse")
    assert "Select(indices, opp_idx-1, EQ)" in listing and "SelectorWidth(" in listing


def test_a_model_without_heads_or_program_still_gets_a_page(tmp_path):
    import rasp
    from compiler import CompiledModel

    model = compile_rasp_to_model(rasp.Map(lambda t: t == "a", rasp.tokens).named("is_a"),
                                  {"a", "b"}, 3)
    model.save(tmp_path / "m.npz")
    page = render_report(CompiledModel.load(tmp_path / "m.npz"), ["a", "b"])
    assert "no attention heads" in page and "without its RASP program" in page
    assert page.count("<svg") == 2  # residuals, circuit (decoding: a table)


def test_raspc_report_writes_the_page(tmp_path):
    out = tmp_path / "reverse.html"
    result = subprocess.run([sys.executable, "-m", "raspc", "report", "reverse",
                             "--max-seq-len", "4", "--input", "a", "b", "-o", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "<svg" in out.read_text(encoding="utf-8")


def _chromium() -> str:
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}; CI must install Debian's "
                    "chromium package (.ci/run does)")
    print(f"skipping the browser test: no Chromium at {CHROMIUM}")
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def test_the_report_renders_in_chromium(sort_report, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright  # never downloads a browser: we pass ours

    _, path = sort_report
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            boxes = page.eval_on_selector_all(
                "svg", "els => els.map(e => { const r = e.getBoundingClientRect();"
                       " return [r.width, r.height]; })")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert requests == [path.as_uri()], requests  # the page fetched nothing else
    assert len(boxes) == 4 and all(w > 0 and h > 0 for w, h in boxes), boxes  # no decoding figure
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] > 900  # the full page, longer than one screen
    assert float(pixels.var()) > 1e-3, "the screenshot is blank"
    if os.environ.get("REPORT_SCREENSHOT"):  # to look at it: REPORT_SCREENSHOT=path pytest ...
        shutil.copy(shot, os.environ["REPORT_SCREENSHOT"])


def test_the_summary_states_the_shape_and_the_evaluators_output(sort_report):
    """The summary table gives the real size and the output the evaluator computes."""
    model, path = sort_report
    page = path.read_text(encoding="utf-8")
    expected = rasp.evaluate(model.program, [3, 1, 2, 1])
    params = sum(a.size for weights in model.params.values() for a in weights.values())
    for name, value in (("output", " ".join(map(str, expected))),
                        ("example input", "3 1 2 1"),
                        ("d_model", str(model.config.d_model)), ("parameters", f"{params:,}"),
                        ("layers", str(len(model.config.layers)))):
        assert f"<tr><td>{name}</td><td>{value}</td></tr>" in page, name
