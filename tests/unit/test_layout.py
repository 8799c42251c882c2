"""The repository is the collection topo.lab (DESIGN.md 3): Ansible reads it from a checkout,
``ansible-galaxy collection build`` packs it without the front end, ``pip install .`` puts
it where Ansible finds it, and every role is used. No root needed."""

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests.conftest import ROOT

BIN = os.path.dirname(sys.executable)
#: what the collection is made of (setup.py's COLLECTION_CONTENT)
CONTENT = ("galaxy.yml", "meta/runtime.yml", "playbooks/site.yml", "playbooks/apply.yml",
           "playbooks/verify.yml", "playbooks/destroy.yml", "plugins/modules/veth.py",
           "plugins/module_utils/api.py", "plugins/connection/netns.py", "plugins/inventory/topo.py",
           "roles/lab/tasks/main.yml", "inventories/localhost.yml")


def _run(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_checkout_is_the_collection():
    assert os.path.realpath(os.path.join(ROOT, "ansible_collections", "topo", "lab")) == os.path.realpath(ROOT)
    for path in CONTENT:
        assert os.path.isfile(os.path.join(ROOT, path)), path
    galaxy = yaml.safe_load(open(os.path.join(ROOT, "galaxy.yml")))
    assert (galaxy["namespace"], galaxy["name"]) == ("topo", "lab")


def test_ansible_reads_the_collection_from_the_checkout():
    doc = _run([os.path.join(BIN, "ansible-doc"), "topo.lab.veth"], cwd=ROOT).stdout
    assert os.path.join(ROOT, "ansible_collections", "topo", "lab", "plugins", "modules", "veth.py") in doc
    graph = _run([os.path.join(BIN, "ansible-inventory"), "-i", "examples/routed.yml", "--graph"], cwd=ROOT).stdout
    assert re.search(r"@topo_hosts:\n\s*\|\s*\|--localhost\n", graph) and "@topo_nodes:" in graph, graph


def test_galaxy_build_packs_the_collection_alone_and_it_installs(tmp_path):
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", ROOT, "--output-path", str(tmp_path)])
    tarball = tmp_path / "topo-lab-0.1.0.tar.gz"
    listing = _run(["tar", "tzf", str(tarball)]).stdout.split()
    for path in CONTENT:  # galaxy.yml becomes MANIFEST.json
        assert (path if path != "galaxy.yml" else "MANIFEST.json") in listing, path
    for path in listing:  # the front end, tests and the checkout's symlink stay out
        assert not path.startswith(("topo/", "tests/", "bench/", "ansible_collections", ".git", "setup.py")), path
    install = tmp_path / "collections"
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--force", "-p", str(install), str(tarball)])
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(install), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    doc = _run([os.path.join(BIN, "ansible-doc"), "topo.lab.veth"], cwd=str(tmp_path), env=env).stdout
    assert str(install / "ansible_collections" / "topo" / "lab" / "plugins" / "modules" / "veth.py") in doc


def test_a_wheel_carries_the_collection_where_ansible_finds_it(tmp_path):
    """What ``pip install .`` (install.sh) installs: the front end and, beside it,
    ansible_collections/topo/lab with the same files as the checkout."""
    # build from a copy of the working tree: pip builds in the source folder, and a build/
    # left in the checkout would carry stale files into the next install
    src = tmp_path / "src"
    for path in _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT).stdout.splitlines():
        if os.path.lexists(os.path.join(ROOT, path)):
            os.makedirs(src / os.path.dirname(path), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, path), src / path, follow_symlinks=False)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)])
    wheel = next(tmp_path.glob("topo-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in CONTENT:
        assert f"ansible_collections/topo/lab/{path}" in names, path
    assert {"topo/cli.py", "topo/images/node/Dockerfile", "topo/images/host/Dockerfile"} <= set(names)
    tracked = _run(["git", "ls-files", *("galaxy.yml", "meta", "playbooks", "plugins", "roles", "inventories")],
                   cwd=ROOT).stdout.split()
    assert {f"ansible_collections/topo/lab/{p}" for p in tracked} <= names


@pytest.mark.parametrize("role", sorted(os.listdir(os.path.join(ROOT, "roles"))))
def test_every_role_is_used(role):
    """Each role is used by a playbook, a test or an example (issue 11)."""
    uses = _run(["git", "grep", "-l", f"topo.lab.{role}\\b", "--", "playbooks", "tests", "examples", "site.yml"],
                cwd=ROOT).stdout.split()
    assert [u for u in uses if not u.startswith(f"roles/{role}/") and u != "tests/unit/test_layout.py"], role
