#!/usr/bin/env python3
"""Regenerate the unit snapshots: expected/<case>.yml (the expanded lab) and
expected-inventory/<case>/ (its inventory projection) from input/<case>.*, and
errors/<case>.log from errors/<case>.*. Review the diff (git diff tests/unit) before committing.

    python3 tests/unit/regenerate.py [CASE ...]
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from tests.unit.snapshot import error_lines, expanded_text, inventory_texts  # noqa: E402


def main(only):
    for name in sorted(os.listdir(os.path.join(HERE, "input"))):
        case = os.path.splitext(name)[0]
        if only and case not in only:
            continue
        with open(os.path.join(HERE, "expected", case + ".yml"), "w") as f:
            f.write(expanded_text(os.path.join(HERE, "input", name)))
        print("expected/%s.yml" % case)
        folder = os.path.join(HERE, "expected-inventory", case)
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in inventory_texts(os.path.join(HERE, "input", name)).items():
            os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
            with open(os.path.join(folder, rel), "w") as f:
                f.write(text)
        print("expected-inventory/%s/" % case)
    for name in sorted(os.listdir(os.path.join(HERE, "errors"))):
        case, ext = os.path.splitext(name)
        if ext == ".log" or (only and case not in only):
            continue
        with open(os.path.join(HERE, "errors", case + ".log"), "w") as f:
            f.write("".join(line + "\n" for line in error_lines(os.path.join(HERE, "errors", name))))
        print("errors/%s.log" % case)


if __name__ == "__main__":
    main(set(sys.argv[1:]))
