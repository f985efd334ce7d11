"""Compiled models stay byte-identical: a pinned fingerprint per example and length.

Each fingerprint hashes the float32 weights (names, shapes and bytes) and, apart, the
saved metadata (residual labels, components, value records, alignment, domain) and the
warnings of the compile. The pins DETECT CHANGES; they cannot tell right from wrong. A
pin records what the compiler produced the day it was taken, not that it was correct:
correctness is checked elsewhere (models against the evaluator, constructions against
their bounds). So an optimisation that changes any weight, label or domain fails here,
and a fix that rightly changes a model fails here too.

A change that means to alter compiled models regenerates the pins, naming why:
`FINGERPRINT_REGENERATE="why the models change" python tests/test_compile_fingerprint.py`
rewrites PINNED in this file and appends the date and the reason to PIN_HISTORY.
Without the reason it refuses.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES, unique
from rasp_runtime.serialize import model_metadata

# Slow to compile at 16, so pinned at 5 only.
SLOW_AT_16 = {"paper_sort", "most_freq", "dyck1", "dyck2", "dyck3", "rasp_sort",
              "rasp_most_freq", "rasp_dyck1", "rasp_dyck2", "rasp_dyck3"}
CASES = [(name, n) for n in (5, 16) for name in EXAMPLES if n == 5 or name not in SLOW_AT_16]

# A default label `<kind>_<id>` depends on how many expressions the process built before.
DEFAULT_LABEL = re.compile(r"\b((?:aggregate|constant_selector|constant_sop|expr|full|"
                           r"linear_sequence_map|map|select|selector|selector_and|selector_not|"
                           r"selector_or|selector_width|sequence_map|sop)_)(\d+)\b")

# Why the pins are what they are, oldest first; the regeneration appends to it.
PIN_HISTORY = (
    "pinned before the compile-speed work",
    "dyck2@5 and dyck3@5 re-pinned: fusion keeps unfused chains that are narrower",
    '2026-12-07: metadata only: unnamed operator results are labelled by what they compute (tokens_gt_2, indicator_balance_lt_0) instead of map_<id>; weights unchanged',
    "2026-12-07: metadata only: derived labels never embed an operand's id label (map_7 > 0 keeps map_<id>), so they do not vary with what a process built before; weights unchanged",
)

# name@N → (weights sha256, metadata sha256, warnings sha256), first 16 hex digits each.
PINNED = {
    'length@5': ('9391aeede9daa087', '076a84d53b234dcf', 'e3b0c44298fc1c14'),
    'reverse@5': ('2331cf076e5fd893', '1f7589606ad6f41c', 'e3b0c44298fc1c14'),
    'hist@5': ('ff832a9b3db622d8', 'f4df4a2c21c4af67', 'e3b0c44298fc1c14'),
    'sort_unique@5': ('415b4b7d346fbee4', '3c1902192b93ebb2', '1d96facc6dd02392'),
    'sort@5': ('5cf2a6ababb1d872', '7162967939a1f1df', 'e3b0c44298fc1c14'),
    'sort_freq@5': ('702206e44433e9c4', '41f50fb2bde5de79', 'e3b0c44298fc1c14'),
    'frac_prevs@5': ('92c8d6f2a6f9c268', 'a87eb92c09502de3', 'e3b0c44298fc1c14'),
    'pair_balance@5': ('b247762bc63b5777', '0bf432bfd167e7ea', 'e3b0c44298fc1c14'),
    'shuffle_dyck1@5': ('ce97492b40812361', '2abb3c050fc301fe', 'e3b0c44298fc1c14'),
    'shuffle_dyck2@5': ('909582bfd9c0eb75', 'b716a2b3d5877023', 'e3b0c44298fc1c14'),
    'shift_by@5': ('a37e3c37572bd25a', '6e319e2367e6f99a', 'e3b0c44298fc1c14'),
    'detect_pattern@5': ('5b9270472eeda9ca', '81f6691a39c428db', 'e3b0c44298fc1c14'),
    'count@5': ('f85e48ca15e7447a', 'f0aa3f209f35ad9a', 'e3b0c44298fc1c14'),
    'count_less_freq@5': ('6dd5bf3acdc5e817', '498459caebbc832f', 'e3b0c44298fc1c14'),
    'nary_sequencemap@5': ('d7b71723b83bc51c', '533413a0f0c80e04', 'e3b0c44298fc1c14'),
    'paper_reverse@5': ('6f2fb9e320f15966', '4ef1d7ffc2087fb1', 'e3b0c44298fc1c14'),
    'paper_hist@5': ('ff832a9b3db622d8', 'f4df4a2c21c4af67', 'e3b0c44298fc1c14'),
    'double_hist@5': ('1c60c4ddcd70aec4', 'd97669d55ee10b12', 'e3b0c44298fc1c14'),
    'paper_sort@5': ('5cf2a6ababb1d872', 'f4e99ccf1cebe0d5', 'e3b0c44298fc1c14'),
    'most_freq@5': ('abe27f9f591551ae', '85f084afc7ee52d2', 'e3b0c44298fc1c14'),
    'dyck1@5': ('6a82004019ac5096', 'a3bbbd0ccc49f46b', 'e3b0c44298fc1c14'),
    'dyck2@5': ('8bff47234092b9c1', 'fd93894a7b57ff24', 'e3b0c44298fc1c14'),
    'dyck3@5': ('8cf165ea4170727a', 'fd4f602ae51a6010', 'e3b0c44298fc1c14'),
    'previous_token@5': ('575ef009307c3f52', '50204bb4407eda38', 'e3b0c44298fc1c14'),
    'induction@5': ('c3ba878f9efb228e', '5223015deff2c6e5', '40c191dad94b5cb8'),
    'first_occurrence@5': ('8e09028b960b5930', '65ee2dcf11e9ae0c', 'e3b0c44298fc1c14'),
    'rasp_reverse@5': ('9844f9cbb1e8f4fd', '38eed44595ebf21c', 'e3b0c44298fc1c14'),
    'rasp_hist@5': ('ff832a9b3db622d8', 'fb1d7faf3d0b584e', 'e3b0c44298fc1c14'),
    'rasp_double_hist@5': ('da5fbbe7f495bd94', '790227c20f9368e3', 'e3b0c44298fc1c14'),
    'rasp_sort@5': ('74a2c99ff631c68d', '4243febfb207b571', 'e3b0c44298fc1c14'),
    'rasp_most_freq@5': ('f896f4cbbc075eac', 'a2962acecafd5f45', 'e3b0c44298fc1c14'),
    'rasp_dyck1@5': ('b7b48e7c934e3402', 'cb3cdc42f87160fd', 'e3b0c44298fc1c14'),
    'rasp_dyck2@5': ('0a1feef7fa98b84a', '44ad66ee3a3d8667', 'e3b0c44298fc1c14'),
    'rasp_dyck3@5': ('3f4f56fba3bc1884', '55d203d2f3a5a947', 'e3b0c44298fc1c14'),
    'length@16': ('15acb02f01734e9f', 'bdceb45e7a799c95', 'e3b0c44298fc1c14'),
    'reverse@16': ('d4c6d22b9a5903df', 'b63f77cf58b57add', 'e3b0c44298fc1c14'),
    'hist@16': ('a855749b1ba3491c', '0e884d7849d0263e', 'e3b0c44298fc1c14'),
    'sort_unique@16': ('2c2f86966e85d955', '59d3bd8b4287f607', '1d96facc6dd02392'),
    'sort@16': ('a0a0fa20ca0ccfcd', '0033becdf038845c', 'e3b0c44298fc1c14'),
    'sort_freq@16': ('be7435584ab28bee', '87f70a1d19b6cbc9', 'e3b0c44298fc1c14'),
    'frac_prevs@16': ('ecefa1401e6f7536', '66387c0132fcdddb', 'e3b0c44298fc1c14'),
    'pair_balance@16': ('51c998212321ab3e', 'a65456f84e505a23', 'e3b0c44298fc1c14'),
    'shuffle_dyck1@16': ('a96cab0b513113e8', '240104d4089840e5', 'e3b0c44298fc1c14'),
    'shuffle_dyck2@16': ('3624b28f84e9138a', '124c42721e081807', 'e3b0c44298fc1c14'),
    'shift_by@16': ('738e1ec43b8ef217', '3c8810c91b83fe7c', 'e3b0c44298fc1c14'),
    'detect_pattern@16': ('c7a2eb3e0e434756', 'f177da61a953a44b', 'e3b0c44298fc1c14'),
    'count@16': ('fb58e3953a9c8adf', 'f96d124c3fc6c6bd', 'e3b0c44298fc1c14'),
    'count_less_freq@16': ('8f7a803c64bba552', '6d053e9500f8c7c8', 'e3b0c44298fc1c14'),
    'nary_sequencemap@16': ('e532c553ef786ce2', '2e57fa8f837a6d5e', 'e3b0c44298fc1c14'),
    'paper_reverse@16': ('df4c5f3f10b44cd9', '5713e4a7fba5f4ce', 'e3b0c44298fc1c14'),
    'paper_hist@16': ('a855749b1ba3491c', '0e884d7849d0263e', 'e3b0c44298fc1c14'),
    'double_hist@16': ('368dac1e4c8265dc', '8231412e725ed79a', 'e3b0c44298fc1c14'),
    'previous_token@16': ('91307512bcbe2cda', '41378b8c9a1c712b', 'e3b0c44298fc1c14'),
    'induction@16': ('aa24a9e05f5c62a9', '112564a349dfd040', '40c191dad94b5cb8'),
    'first_occurrence@16': ('fd5e090f7701ff7a', '3c6755b316e802fe', 'e3b0c44298fc1c14'),
    'rasp_reverse@16': ('a77dcfdebe7d8129', '43f12f29f6692962', 'e3b0c44298fc1c14'),
    'rasp_hist@16': ('a855749b1ba3491c', '2b3f4931d753205b', 'e3b0c44298fc1c14'),
    'rasp_double_hist@16': ('bebfd37bc26dd6d5', '5587f526d45d7be8', 'e3b0c44298fc1c14'),
}


def fingerprint(name: str, max_seq_len: int) -> tuple[str, str, str]:
    """The three hashes of `name` compiled at `max_seq_len` over its own vocabulary
    (distinct-token examples: the tokens 1..max_seq_len, as the benchmark uses)."""
    example = EXAMPLES[name]
    vocab = tuple(range(1, max_seq_len + 1)) if example.sampler is unique else example.vocab
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = compile_rasp_to_model(example.build(max_seq_len), vocab, max_seq_len,
                                      causal=example.causal)
    weights = hashlib.sha256()
    for module in sorted(model.params):
        for key in sorted(model.params[module]):
            array = np.asarray(model.params[module][key])
            weights.update(f"{module}/{key}/{array.dtype}/{array.shape}".encode())
            weights.update(array.tobytes())
    # In the order the compiler builds it: sorting keys would sort default labels by id.
    metadata = json.dumps(model_metadata(model), default=repr)
    messages = "\n".join(f"{w.category.__name__}: {w.message}" for w in caught)
    return (weights.hexdigest()[:16], _short(metadata), _short(messages))


def _short(text: str) -> str:
    """A hash of `text` with default labels numbered by first appearance."""
    numbers: dict[str, int] = {}
    text = DEFAULT_LABEL.sub(
        lambda m: f"{m[1]}#{numbers.setdefault(m[0], len(numbers))}", text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name,max_seq_len", CASES)
def test_compiled_model_is_unchanged(name, max_seq_len):
    assert fingerprint(name, max_seq_len) == PINNED[f"{name}@{max_seq_len}"]


def regenerate(reason: str, path: Path = Path(__file__)) -> None:
    """Rewrite PINNED in `path` (this file) with fresh fingerprints and record `reason`."""
    if not reason.strip():
        sys.exit("test_compile_fingerprint: the pins detect changes and cannot tell right "
                 "from wrong; to regenerate them, say why the models change: "
                 "FINGERPRINT_REGENERATE=\"reason\" python tests/test_compile_fingerprint.py")
    source = path.read_text()
    table = "".join(f"    {'@'.join(map(str, case))!r}: {fingerprint(*case)!r},\n"
                    for case in CASES)
    source = re.sub(r"(?ms)^PINNED = \{\n.*?^\}\n", lambda _: f"PINNED = {{\n{table}}}\n",
                    source, count=1)
    entry = f"{datetime.date.today().isoformat()}: {reason.strip()}"
    source = re.sub(r"(?ms)^(PIN_HISTORY = \(\n.*?)^\)\n",
                    lambda m: f"{m[1]}    {entry!r},\n)\n", source, count=1)
    path.write_text(source)


def test_regenerating_needs_a_reason_and_records_it(tmp_path, monkeypatch):
    copy = tmp_path / "pins.py"
    copy.write_text(Path(__file__).read_text())
    with pytest.raises(SystemExit, match="say why the models change"):
        regenerate("  ", copy)
    monkeypatch.setattr(sys.modules[__name__], "fingerprint", lambda *case: ("a", "b", "c"))
    regenerate("a test of the regeneration", copy)
    namespace = {"__file__": str(copy), "__name__": "pins"}
    exec(compile(copy.read_text(), str(copy), "exec"), namespace)
    assert namespace["PINNED"] == {f"{n}@{k}": ("a", "b", "c") for n, k in CASES}
    assert namespace["PIN_HISTORY"][:-1] == PIN_HISTORY
    assert namespace["PIN_HISTORY"][-1].endswith(": a test of the regeneration")


if __name__ == "__main__":
    regenerate(os.environ.get("FINGERPRINT_REGENERATE", ""))
