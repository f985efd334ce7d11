"""Test-run ordering: the files that take longest start first.

pytest-xdist's `--dist loadfile` (make test) hands each worker whole files in collection
order. Alphabetically, test_zoo.py (Ray, about 90 s) comes last, so one of CI's two
workers finished alone while the other waited. Sorting is stable: tests keep their order
within a file, and every other file keeps its place.
"""

SLOW_FIRST = ("test_zoo.py", "test_fuzz.py", "test_zoo_variants.py", "test_notebook.py",
              "test_sae_lens.py", "test_compress_recipes.py", "test_circuits_truth.py")


def pytest_collection_modifyitems(config, items):
    """Move the files of SLOW_FIRST to the front, in that order."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
