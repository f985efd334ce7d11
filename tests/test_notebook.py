"""docs/tour.ipynb runs top to bottom in a real Jupyter kernel and shows what it claims.

The kernel is this interpreter (a kernelspec written to a temporary folder), so
it sees the same packages as the tests, wherever Jupyter's own specs point.
"""

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "docs" / "tour.ipynb"
TIME_LIMIT = 120  # seconds, the bound for the whole notebook
KERNEL = "rasp-compiler-tests"


def _kernel_manager(folder: Path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = folder / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rasp-compiler tests", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def test_the_tour_runs_top_to_bottom(tmp_path):
    notebook = nbformat.read(TOUR, as_version=4)
    client = nbclient.NotebookClient(notebook, km=_kernel_manager(tmp_path / "kernels"),
                                     timeout=TIME_LIMIT,
                                     resources={"metadata": {"path": str(ROOT)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - start
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    plot_cells = [c for c in notebook.cells if c.cell_type == "code"
                  and c.source.startswith("plot_")]
    assert len(images) == len(plot_cells) >= 10  # every plot cell shows its figure
    texts = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                      for o in outputs)
    assert "Select(indices, opp_idx-1, EQ)" in texts and "['BOS', 1, 1, 2, 3, 4]" in texts
    # TransformerLens: the bridge decodes a b c c reversed, equal to model.apply; the
    # length MLP's legacy hook is an alias of the bridge's, and reads length 4 everywhere.
    assert "['BOS', 'c', 'c', 'b', 'a'] True" in texts
    assert "blocks.0.hook_mlp_out = blocks.0.mlp.hook_out True" in texts
    assert "['length:4', 'length:4', 'length:4', 'length:4']" in texts
    # Circuit scoring on reverse: 2 live true edges, 7 false ones, 5 constant or inert
    # (length never changes under same-length corruption). ACDC and the oracle rank both
    # true edges first; activation patching ties one false edge (embed -> output, between
    # two true nodes) with them: 6 of 7 false edges below, 6/7 = 0.857.
    counts = "(2 true, 7 false, 5 left out)"
    assert f"acdc: edge AUROC 1.000 {counts}" in texts
    assert f"activation_patching: edge AUROC 0.857 {counts}" in texts
    assert f"oracle: edge AUROC 1.000 {counts}" in texts
    assert seconds < TIME_LIMIT, f"the tour took {seconds:.0f}s"
