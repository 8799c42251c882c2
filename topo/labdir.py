"""The lab directory: where a lab's inventory, logs, state and reports live, and its lock.

Location: ``$TOPO_HOME/labs/<lab>`` (``TOPO_HOME`` defaults to ``/var/lib/topo``), so a lab is
found by name alone (``topo destroy --lab NAME`` with the topology file gone). Locks live
beside the labs, in ``$TOPO_HOME/locks/<lab>.lock``, so removing a lab directory never
removes the lock another process holds.

Layout of a lab directory::

    ansible.cfg        settings for running Ansible by hand from here
    site.yml           imports topo.lab.site (apply + verify)
    inventory/         hosts.yml, group_vars/, host_vars/ (see topo.inventory)
    expanded.yml       the expanded lab (every name, address, route, check)
    allocation.json    the pool allocations kept for the next apply
    compiled.json      the expansion the inventory was written from, and a digest of all
                       it was made from (topo.pipeline: taken instead of expanding again)
    state.json         source file, timestamps, namespaces made
    logs/              full Ansible logs, one per run
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager

import topo
from topo.errors import EnvironmentProblem

ANSIBLE_CFG = """\
# Written by topo. Lets you run Ansible by hand on this lab, from this directory:
#   ansible-playbook site.yml          (apply + verify, as topo apply does)
#   ansible NODE -m command -a 'ip -br addr'
[defaults]
inventory = inventory
collections_path = {collections}
gathering = explicit
forks = 32
host_key_checking = false
retry_files_enabled = false
interpreter_python = auto_silent
callback_result_format = yaml

[inventory]
enable_plugins = topo.lab.topo, host_list, yaml, ini, auto

[connection]
pipelining = true
"""

SITE_YML = """\
---
# Written by topo: the lab's apply + verify, as `topo apply` runs it.
- name: Apply and verify
  import_playbook: topo.lab.site
"""


def home() -> str:
    """``$TOPO_HOME`` or ``/var/lib/topo``."""
    return os.environ.get("TOPO_HOME") or "/var/lib/topo"


def lab_dir(lab: str) -> str:
    """The directory of lab ``lab``: ``$TOPO_HOME/labs/<lab>`` (it may not exist)."""
    return os.path.join(home(), "labs", lab)


def collection_root() -> str:
    """The collection topo.lab's root (galaxy.yml, playbooks/, plugins/, roles/, inventories/):
    in a checkout, the repository (reached through ``ansible_collections/topo/lab -> ../..``),
    once installed, ``site-packages/ansible_collections/topo/lab``."""
    import ansible_collections.topo.lab as coll  # namespace package, found on sys.path
    return list(coll.__path__)[0]


def collections_dir() -> str:
    """The directory holding ``ansible_collections/topo/lab`` for this installation
    (Ansible's ``collections_path``)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(collection_root())))


def playbook(name: str) -> str:
    """Absolute path of one of the collection's playbooks (site, apply, verify, destroy)."""
    return os.path.join(collection_root(), "playbooks", f"{name}.yml")


def prepare(lab: str) -> str:
    """Create the lab directory with ansible.cfg and site.yml; return its path."""
    d = lab_dir(lab)
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    _write(os.path.join(d, "ansible.cfg"), ANSIBLE_CFG.format(collections=collections_dir()))
    _write(os.path.join(d, "site.yml"), SITE_YML)
    return d


def _write(path: str, text: str) -> None:
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"  # two topo processes may prepare one lab at once
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_state(lab: str, **fields) -> None:
    """Merge ``fields`` into state.json of the lab."""
    path = os.path.join(lab_dir(lab), "state.json")
    state = read_state(lab)
    state.update(fields, topo_version=topo.__version__, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def read_state(lab: str) -> dict:
    """state.json of the lab as a dict; ``{}`` when it is missing or unreadable."""
    try:
        with open(os.path.join(lab_dir(lab), "state.json")) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):  # missing, or not readable (a user who is not root)
        return {}


def known_labs() -> list[str]:
    """Names of labs that have a lab directory."""
    try:
        return sorted(os.listdir(os.path.join(home(), "labs")))
    except FileNotFoundError:
        return []


def remove(lab: str) -> None:
    """Remove the lab directory (after destroy)."""
    shutil.rmtree(lab_dir(lab), ignore_errors=True)


@contextmanager
def locked(lab: str, wait: float = 0.0, notify=None):
    """Hold the lab's lock for the body.

    Another topo holding it makes this wait up to ``wait`` seconds (calling ``notify``
    once with a message), then raise EnvironmentProblem naming the holder's PID.
    """
    from ansible_collections.topo.lab.plugins.module_utils.api import flock_wait

    d = os.path.join(home(), "locks")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{lab}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = []

        def holder():
            return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"

        def busy():
            if notify and not told and wait > 0:
                notify(f"lab {lab} is locked by pid {holder()}; waiting up to {wait:.0f} s")
                told.append(True)

        if not flock_wait(fd, wait, busy):
            raise EnvironmentProblem(
                f"lab {lab} is locked by another topo (pid {holder()}); wait for it to finish, "
                f"or pass --wait SECONDS to wait for it")
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
