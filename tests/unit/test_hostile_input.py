"""Random, mutated and hand-made hostile topology files, through the CLI (``topo validate
--json``, in process): each ends in a valid lab (exit 0) or in exit 2 with an InputError whose
every problem names the file, a line inside it (or none, for the whole file), a field and a
message, printed as ``file:line: field: message``; never a crash, never another exit code."""

import contextlib
import io
import json
import os
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topo.cli import main
from topo.errors import EXIT_INPUT, EXIT_OK, InputError, Problem
from topo.pipeline import compile_file

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
SEEDS = {name: open(os.path.join(EXAMPLES, name)).read() for name in ("clusters.csv", "routed.yml")}
NASTY = st.sampled_from(["", ";", "$(x)", "../", "\u00e9", "-1", "99999999999999999999", "a" * 40, ",", ":",
                         "\n", "'", '"', "{", "[", "&", "*a", "!!python/object:os.system", "0.0.0.0/0", "eth0"])
#: What a problem's field looks like: a path into the document (``links[2].endpoints[0].node``,
#: ``nodes.h1``), a CSV column or header (``column 'peer'``, ``header``, ``row``), a ``# topo:``
#: option line, or nothing (the problem concerns the whole file). Keys are the user's text: one line.
FIELD = re.compile(r"^[^\n]*$")


def _mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 12)))
        text = text[:i] + data.draw(NASTY) + text[j:]
    return text


def _validate(path) -> tuple[int, dict]:
    """``topo validate --json PATH`` in process: (exit code, the JSON document it printed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["validate", "--json", str(path)])
    return code, json.loads(out.getvalue())


def _assert_clean_rejection(path, code: int, doc: dict, text: str) -> list[str]:
    """Exit 2 with an InputError whose problems each name ``path``, a line inside the file
    (or none), a field and a message; returns the problems as the CLI prints them."""
    assert code == EXIT_INPUT, doc
    assert doc["error"] == "InputError" and doc["exit_code"] == EXIT_INPUT
    assert doc["message"].endswith("nothing was built"), doc["message"]
    assert doc["problems"], doc
    lines = max(1, len(text.splitlines()))  # (splitlines breaks on more than YAML or CSV do: a bound)
    printed = []
    for p in doc["problems"]:
        assert p["file"] == str(path)
        assert p["line"] is None or 1 <= p["line"] <= lines, (p, lines)
        assert FIELD.match(p["field"]), p
        assert p["message"].strip() and "\n" not in p["message"] and "Traceback" not in p["message"], p
        shown = str(Problem(p["file"], p["line"], p["field"], p["message"]))
        where = str(path) if p["line"] is None else f"{path}:{p['line']}"
        assert shown == (f"{where}: {p['field']}: {p['message']}" if p["field"] else f"{where}: {p['message']}")
        printed.append(shown)
    return printed


def _check(tmp_path, suffix, text):
    path = tmp_path / f"lab{suffix}"
    path.write_text(text)
    code, doc = _validate(path)
    if code == EXIT_OK:
        assert doc["file"] == str(path) and doc["expanded"]["nodes"], doc
        return
    _assert_clean_rejection(path, code, doc, text)


@pytest.fixture(autouse=True)
def _no_lab_home(tmp_path_factory, monkeypatch):
    """validate reads the lab's last allocation from TOPO_HOME: point it at an empty folder."""
    monkeypatch.setenv("TOPO_HOME", str(tmp_path_factory.mktemp("home")))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), name=st.sampled_from(sorted(SEEDS)))
def test_mutated_examples(tmp_path, data, name):
    _check(tmp_path, os.path.splitext(name)[1], _mutate(SEEDS[name], data))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300), suffix=st.sampled_from([".csv", ".yml"]))
def test_random_text(tmp_path, text, suffix):
    _check(tmp_path, suffix, text)


#: Hand-made hostile files: (suffix, text, the problem the CLI must print, with FILE for the path).
CASES = {
    "shell-in-node-name": (".yml", "name: x\nnodes:\n  h1: {}\n  '$(reboot)': {}\n",
                           "FILE:4: nodes.$(reboot): '$(reboot)' is not a safe name: use letters, digits, "
                           "'-' and '_', starting with a letter"),
    "path-in-lab-name": (".yml", "name: ../etc\nnodes: [h1]\n",
                         "FILE:1: name: '../etc' is not a safe name: use letters, digits, '-' and '_', "
                         "starting with a letter"),
    "python-object-tag": (".yml", "name: x\nnodes: !!python/object/apply:os.system ['touch PWNED']\n",
                          "FILE:2: nodes.touch PWNED: 'touch PWNED' is not a safe name: use letters, "
                          "digits, '-' and '_', starting with a letter"),
    "unknown-node": (".yml", "name: x\nnodes: [h1]\nlinks:\n  - [h1, h2]\n",
                     "FILE:4: links[0].endpoints[1].node: unknown node 'h2' (nodes: h1)"),
    "reserved-name": (".yml", "name: x\nnodes: [all, h1]\nlinks:\n  - [all, h1]\n",
                      "FILE:2: nodes.all: 'all' is reserved; choose another name"),
    "python-tag-on-key": (".yml", "name: x\n!!python/object:os.system nodes: [h1]\n",
                          "FILE:2: bad key: could not determine a constructor for the tag "
                          "'tag:yaml.org,2002:python/object:os.system'"),
    "newline-in-key": (".yml", 'name: x\nnodes:\n  h1: {"f\\ntrue": 1}\n',
                       'FILE:3: nodes.h1."f\\ntrue": unknown key (misspelt?)'),
    "csv-shell-cell": (".csv", "node,peer\nh1,h2;rm\n", None),
    "binary": (".yml", "\x00\x01\x02name: x\n", None),
    "alias-bomb": (".yml", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                           "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                   None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_case(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)  # where a command smuggled in by a YAML tag would leave its file
    suffix, text, wanted = CASES[case]
    path = tmp_path / f"lab{suffix}"
    path.write_text(text)
    code, doc = _validate(path)
    printed = _assert_clean_rejection(path, code, doc, text)
    if wanted:
        assert wanted.replace("FILE", str(path)) in printed, printed
    assert not (tmp_path / "PWNED").exists(), "a YAML tag ran a command"


def test_huge_csv_is_refused_within_a_second(tmp_path):
    """A 100,000-row CSV is refused by the loader (rows or bytes), before validation, in < 1 s
    of this process's CPU time (not wall time: the suite runs beside the kernel lane's guest,
    and other load must not make the test fail)."""
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("node,peer\n")
        for i in range(100_000):
            f.write(f"n{i},n{i + 1}\n")
    started = time.process_time()
    with pytest.raises(InputError) as caught:
        compile_file(str(path))
    elapsed = time.process_time() - started
    assert caught.value.exit_code == EXIT_INPUT and caught.value.phase == "load"
    assert any("rows" in p.message or "bytes" in p.message for p in caught.value.problems)
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
