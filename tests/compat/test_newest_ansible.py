"""The compatibility lane: topo with the newest ansible release on the newest CPython here.

The main suite runs on the interpreter CI installs topo with (Debian 12's 3.11, where the
newest installable ``ansible`` is 12.x). ansible 13 and 14 (ansible-core 2.20, 2.21) need
Python >= 3.12, which Ubuntu 24.04 and Debian 13 ship; pyproject.toml admits every release
from 12 on, and this lane proves the newest one works: it makes its own virtualenv with the
newest CPython >= 3.12 it can find (``$TOPO_COMPAT_PYTHON``, else pyenv's, else PATH's
python3.13/3.12), installs topo with the newest ``ansible`` from PyPI, and runs there the
unit tests and one example end to end (apply, re-apply with 0 changed, destroy leaving
nothing). Skipped, with the reason, where no such interpreter exists.

The virtualenv is kept in ``$TOPO_COMPAT_VENV`` (default /var/cache/topo/compat-py<X.Y>) so a
re-run only upgrades; topo itself is reinstalled from this checkout every run.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, netns_list

pytestmark = pytest.mark.slow


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def newest_python() -> tuple[str | None, str]:
    """(interpreter, why) for the newest CPython >= 3.12 on this machine, or (None, reason)."""
    if os.environ.get("TOPO_COMPAT_PYTHON"):
        candidates = [os.environ["TOPO_COMPAT_PYTHON"]]
    else:
        root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        candidates = glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3"))
        candidates += [p for p in (shutil.which("python3.13"), shutil.which("python3.12")) if p]
    found = sorted(((v, p) for p in candidates if (v := _version(p)) and v >= (3, 12)), reverse=True)
    if not found:
        return None, ("no CPython >= 3.12 here (ansible 13+ needs one; set TOPO_COMPAT_PYTHON, or install one "
                      "with pyenv): the newest ansible cannot be tested")
    return found[0][1], ""


def _run(argv, timeout=900, check=True, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def venv():
    """A virtualenv on the newest CPython with topo (this checkout) and the newest ansible."""
    python, why = newest_python()
    if python is None:
        pytest.skip(why)
    major, minor = _version(python)
    path = os.environ.get("TOPO_COMPAT_VENV") or f"/var/cache/topo/compat-py{major}.{minor}"
    if not os.path.exists(os.path.join(path, "bin", "python")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _run([python, "-m", "venv", path])
    pip = [os.path.join(path, "bin", "python"), "-m", "pip", "install", "-q"]
    _run(pip + ["--upgrade", "pip"])
    _run(pip + ["--upgrade", "ansible", f"{ROOT}[test]"], timeout=1800)
    return path


def test_the_newest_ansible_is_installed(venv):
    versions = json.loads(_run([os.path.join(venv, "bin", "python"), "-m", "pip", "list", "--format", "json"]).stdout)
    have = {p["name"].lower(): p["version"] for p in versions}
    assert int(have["ansible"].split(".")[0]) >= 13, have["ansible"]  # 13+ exists only for Python >= 3.12
    assert tuple(int(x) for x in have["ansible-core"].split(".")[:2]) >= (2, 20), have["ansible-core"]


def test_unit_tests_pass_on_the_newest_ansible(venv):
    proc = _run([os.path.join(venv, "bin", "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "tests/unit"], cwd=ROOT, check=False, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


@pytest.mark.root
def test_an_example_end_to_end_on_the_newest_ansible(venv, tmp_path):
    env = dict(os.environ, TOPO_HOME=str(tmp_path / "home"),
               PATH=os.pathsep.join([os.path.join(venv, "bin"), os.environ.get("PATH", "")]))
    topo = [os.path.join(venv, "bin", "python"), "-m", "topo"]
    try:
        first = json.loads(_run(topo + ["apply", "examples/routed.yml", "--json"], cwd=ROOT, env=env).stdout)
        assert first["changed"] > 0 and first["checks"]["failed"] == 0 and first["checks"]["passed"] > 0, first["checks"]
        again = json.loads(_run(topo + ["apply", "examples/routed.yml", "--json", "--no-verify"], cwd=ROOT,
                                env=env).stdout)
        assert again["changed"] == 0, again["changes"]
    finally:
        _run(topo + ["destroy", "examples/routed.yml"], cwd=ROOT, env=env)
    assert not [n for n in netns_list() if n.startswith("topo-routed-")]
