"""Helpers shared by the snapshot tests and regenerate.py."""

import contextlib
import os

from topo.errors import InputError
from topo.inventory import dump, project, render
from topo.pipeline import compile_file

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def _here():
    """Run from tests/unit so file names in messages are short and machine-independent."""
    old = os.getcwd()
    os.chdir(HERE)
    try:
        yield
    finally:
        os.chdir(old)


def _rel(path):
    return os.path.relpath(os.path.abspath(path), HERE)


def expanded_text(path):
    """The expanded lab of ``path`` as YAML text (what expected/<case>.yml holds)."""
    with _here():
        return dump(compile_file(_rel(path)).expanded)


def error_lines(path):
    """The problems reported for ``path``, one line each (what errors/<case>.log holds)."""
    with _here():
        try:
            compile_file(_rel(path))
        except InputError as exc:
            return ["phase: " + exc.phase] + [str(p) for p in exc.problems]
    return ["(no error)"]


#: The interpreter the inventory snapshots name (project() defaults to the running one).
PYTHON = "/usr/bin/python3"


def inventory_texts(path):
    """The inventory of ``path`` as ``{relative path: text}`` (what expected-inventory/<case>/ holds):
    :func:`topo.inventory.project` of the expanded lab, with the repository's default build-host
    inventory and :data:`PYTHON`, spelt by :func:`topo.inventory.render`."""
    with _here():
        return render(project(compile_file(_rel(path)).expanded, python=PYTHON))
