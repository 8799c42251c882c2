"""Load + expand snapshots: input/<case>.* must expand to exactly expected/<case>.yml, and
project (topo.inventory.project) to exactly the files under expected-inventory/<case>/.

Regenerate with ``python3 tests/unit/regenerate.py`` and review the diff.
"""

import difflib
import os

import pytest

from tests.unit.snapshot import HERE, error_lines, expanded_text, inventory_texts

INPUTS = sorted(os.listdir(os.path.join(HERE, "input")))
ERRORS = sorted(n for n in os.listdir(os.path.join(HERE, "errors")) if not n.endswith(".log"))


def _compare(got: str, expected_path: str):
    with open(expected_path) as f:
        expected = f.read()
    if got != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), got.splitlines(True),
                                            "expected", "got"))
        pytest.fail(f"{os.path.relpath(expected_path, HERE)} differs (regenerate.py if intended):\n{diff}")


@pytest.mark.parametrize("name", INPUTS)
def test_expand_snapshot(name):
    case = os.path.splitext(name)[0]
    _compare(expanded_text(os.path.join(HERE, "input", name)), os.path.join(HERE, "expected", case + ".yml"))


@pytest.mark.parametrize("name", INPUTS)
def test_inventory_snapshot(name):
    folder = os.path.join(HERE, "expected-inventory", os.path.splitext(name)[0])
    got = inventory_texts(os.path.join(HERE, "input", name))
    on_disk = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)
    assert sorted(got) == on_disk, f"{os.path.relpath(folder, HERE)}: other files (regenerate.py if intended)"
    for rel, text in got.items():
        _compare(text, os.path.join(folder, rel))


@pytest.mark.parametrize("name", ERRORS)
def test_error_snapshot(name):
    lines = error_lines(os.path.join(HERE, "errors", name))
    assert lines != ["(no error)"], f"{name} should be rejected"
    _compare("".join(line + "\n" for line in lines),
             os.path.join(HERE, "errors", os.path.splitext(name)[0] + ".log"))
