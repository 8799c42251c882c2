"""The front end as one call: load -> resolve/validate -> expand, then project to an inventory.

Each phase reports all of its problems at once and stops the run before the next phase
(InputError, exit 2), so nothing is ever built from invalid input.

A lab directory keeps the expansion of its last inventory (``compiled.json``, see
:func:`compile_file`), so verify, plan, show or a re-apply of an unchanged file take it
instead of importing the model and expanding again (0.6-0.7 s of a 50-node star's verify on
this project's 2-core build host: importing pydantic, netaddr and the expansion, then
running it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from topo import inventory, labdir
from topo.load import RawLab, load

if TYPE_CHECKING:  # the model and the expansion load only when a file is expanded
    from topo.expand.shape import Expanded
    from topo.model import Lab


@dataclass
class Compiled:
    """A topology file, validated and expanded: ``file`` (its path), ``model`` (the
    validated Lab, which carries its source positions; None when the expansion was taken
    from the lab directory's record, see :func:`compile_file`) and ``expanded`` (see
    :class:`topo.expand.shape.Expanded`). ``inputs``: what the expansion was made from
    (:func:`_inputs`), with ``sticky``; else None."""

    file: str
    model: Lab | None
    expanded: Expanded
    inputs: dict | None = None

    @property
    def lab(self) -> str:
        """The lab's name."""
        return self.model.name if self.model is not None else self.expanded["lab"]


def compile_file(path: str, sticky: bool = False,
                 hosts: dict | Callable[[str], dict | None] | None = None, raw: RawLab | None = None) -> Compiled:
    """Load, validate and expand ``path``. Raises InputError (exit 2) with every problem of
    the first phase that has any (load, validate, then the expansion's phases); the raw
    document is dropped once validated.

    ``sticky``: keep the pool allocations of the lab's last apply (its lab directory's
    allocation.json), so edits do not renumber unedited nodes. The CLI sets it; tests and the
    inventory plugin see the file alone. With ``sticky``, the expansion the lab directory
    recorded when its inventory was last written (``compiled.json``, :func:`write_inventory`)
    is taken instead of expanding again when everything it was made from is the same
    (:func:`_inputs`: the file's bytes and those of every other file it read, the build
    hosts, the allocation, the VNIs other labs hold, topo's code); the file is still loaded
    (its name, and a loader's warnings).

    ``hosts``: the build hosts ``{name: vars}`` (:func:`topo.inventory.build_hosts`) the lab
    is placed on, or a function of the lab's name that gives them (or None); default one
    host, localhost (:func:`topo.expand.expand`).

    ``raw``: ``path`` already loaded (:func:`topo.load.load`), else it is loaded here.
    """
    raw = raw if raw is not None else load(path)
    code = _code() if sticky else ""
    record = _record(path, raw, code) if sticky else None
    model = None
    if record is None:
        from topo.model import resolve
        model = resolve(raw)
    name = model.name if model is not None else record["lab"]
    if callable(hosts):
        hosts = hosts(name)
    previous = _previous(name) if sticky else None
    foreign = _foreign_vnis(name, hosts) if sticky and hosts and len(hosts) > 1 else None
    inputs = _inputs(code, path, raw, hosts, previous, foreign) if sticky else None
    if record is not None:
        if record.get("digest") == _digest(inputs):
            return Compiled(path, None, record["expanded"], inputs)
        from topo.model import resolve
        model = resolve(raw)
    from topo.expand import expand
    return Compiled(path, model, expand(model, previous, hosts, foreign), inputs)


ALLOCATION = "allocation.json"
#: The lab directory's record of the expansion its inventory was written from:
#: ``{lab, code, file, sources, digest, inventory, expanded}`` (see :func:`write_inventory`).
RECORD = "compiled.json"


def _previous(lab: str) -> dict | None:
    """The allocation the lab's last apply recorded (see expand.previous_allocation)."""
    try:
        with open(os.path.join(labdir.lab_dir(lab), ALLOCATION)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _foreign_vnis(lab: str, hosts: dict) -> dict[int, str]:
    """``{VNI: lab}`` of the stitch VNIs other labs of this machine's lab directories hold
    on any of ``hosts`` (their allocation.json), which this lab must not take."""
    out = {}
    for other in labdir.known_labs():
        if other == lab:
            continue
        alloc = _previous(other) or {}
        if set((alloc.get("placement") or {}).values()) & set(hosts):
            for vni in (alloc.get("vnis") or {}).values():
                out.setdefault(vni, other)
    return out


def _code() -> str:
    """A digest of the code an expansion and its inventory come from: topo's version, this
    Python, and the size and modification time of every ``.py`` file of the ``topo`` package
    and of the collection's ``module_utils`` (the model's limits live there), and of the
    default build-host inventory. Stats only (about 60 files: well under a millisecond)."""
    import topo
    parts = [topo.__version__, sys.executable]
    roots = [os.path.dirname(os.path.abspath(topo.__file__))]
    collection = labdir.collection_root()
    roots.append(os.path.join(collection, "plugins", "module_utils"))
    files = [os.path.join(collection, inventory.DEFAULT_HOSTS)]
    while roots:
        with os.scandir(roots.pop()) as entries:
            for e in entries:
                if e.is_dir() and not e.name.startswith((".", "__")):
                    roots.append(e.path)
                elif e.name.endswith(".py"):
                    files.append(e.path)
    for f in sorted(files):
        try:
            st = os.stat(f)
            parts.append(f"{f} {st.st_size} {st.st_mtime_ns}")
        except OSError:
            parts.append(f"{f} missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _inputs(code: str, path: str, raw: RawLab, hosts: dict | None, previous: dict | None,
            foreign: dict | None) -> dict:
    """Everything an expansion of ``path`` is made from: ``code`` (:func:`_code`), ``file``
    (the path as given: problems and warnings name it), ``sources`` (``{path: sha256}`` of the
    file and of every other file its loader read), ``hosts``, ``previous`` (the allocation
    kept) and ``foreign`` (VNIs other labs hold)."""
    return {"code": code, "file": path,
            "sources": {p: _file_digest(p) for p in [path, *raw.sources]},
            "hosts": hosts, "previous": previous, "foreign": foreign}


def _digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _record(path: str, raw: RawLab, code: str) -> dict | None:
    """The lab directory's record (:data:`RECORD`) of the lab ``raw`` names, when it was made
    by this code (``code``, :func:`_code`) from this file with these bytes (and the same
    other files); else None. The
    rest of the inputs (build hosts, allocation) are compared by :func:`compile_file`."""
    name = raw.lab_name
    if name is None:
        return None
    try:
        with open(os.path.join(labdir.lab_dir(name), RECORD)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("lab") != name or record.get("file") != path:
        return None
    if record.get("sources") != {p: _file_digest(p) for p in [path, *raw.sources]} or record.get("code") != code:
        return None
    return record


def _stats(directory: str) -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of what :func:`write_inventory` writes into lab
    directory ``directory``: every file under ``inventory/``, expanded.yml, allocation.json."""
    out = {}
    paths = [os.path.join(directory, ALLOCATION), os.path.join(directory, "expanded.yml")]
    for root, _, files in os.walk(os.path.join(directory, "inventory")):
        paths += [os.path.join(root, name) for name in files]
    for full in paths:
        try:
            st = os.stat(full)
        except OSError:
            continue
        out[os.path.relpath(full, directory)] = [st.st_size, st.st_mtime_ns]
    return out


def write_inventory(compiled: Compiled, hosts: str | None = None) -> str:
    """Write the lab directory's inventory and expanded.yml; return the inventory path.
    ``hosts``: the build-host inventory (default: this machine, see inventory.build_hosts).

    With ``compiled.inputs`` (a sticky compile), the expansion is recorded beside them
    (:data:`RECORD`) for the next :func:`compile_file`, keyed by its inputs with the
    allocation just written; and when the record says this inventory was written from the
    same expansion and build hosts, and no file of it changed since (sizes and times), it is
    not written again (0.15 s for a 50-node star).

    :func:`inventory_written` writes the same files, the inventory before and the rest while
    a playbook runs."""
    inv, rest = _write_inventory(compiled, hosts)
    if rest is not None:
        rest()
    return inv


@contextmanager
def inventory_written(compiled: Compiled, hosts: str | None = None) -> Iterator[tuple[str, Callable[[], None]]]:
    """:func:`write_inventory` as a context, for a playbook run: the inventory and
    allocation.json are written before it yields ``(inventory path, start)``; expanded.yml
    and the record (:data:`RECORD`), which no playbook reads, are written in a thread of
    their own that ``start()`` starts (call it once ansible-playbook was given the inventory,
    from :meth:`topo.runner.PlaybookRun.run`'s ``started``; later calls do nothing). When the context
    ends the thread is started if it was not, and waited for, also when the body raised; an
    error of the thread is raised then, unless the body raised first.

    So the run starts without waiting for expanded.yml's YAML dump (0.1-0.3 s of CPU for a
    new 50-node star or chain on this project's 2-core build host), which runs on the other
    core while the playbook runs."""
    inv, rest = _write_inventory(compiled, hosts)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            rest()
        except BaseException as exc:  # raised in the caller's thread when the context ends
            failed.append(exc)

    writer = threading.Thread(target=run, name="topo-lab-files") if rest is not None else None

    def start() -> None:
        if writer is not None and writer.ident is None:
            writer.start()

    try:
        yield inv, start
    finally:
        if writer is not None:
            start()
            writer.join()
    if failed:
        raise failed[0]


def _write_inventory(compiled: Compiled, hosts: str | None) -> tuple[str, Callable[[], None] | None]:
    """Write the inventory and allocation.json of :func:`write_inventory`; return the
    inventory's path and what is left to write (expanded.yml, then the record, whose file
    sizes and times cover expanded.yml), or None when nothing is (an unchanged inventory)."""
    d = labdir.prepare(compiled.lab)
    inv = os.path.join(d, "inventory")
    table = inventory.build_hosts(hosts)
    record_path = os.path.join(d, RECORD)
    key = _digest([compiled.inputs, table]) if compiled.inputs is not None else None
    if key is not None and compiled.model is None:  # the expansion came from the record
        try:
            with open(record_path) as f:
                old = json.load(f)
            if old.get("inventory") == key and old.get("stats") == _stats(d):
                return inv, None
        except (OSError, ValueError, AttributeError):
            pass
    inventory.write(inv, inventory.project(compiled.expanded, hosts=table))
    from topo.expand import previous_allocation
    allocation = json.dumps(previous_allocation(compiled.expanded), sort_keys=True)
    with open(os.path.join(d, ALLOCATION + ".tmp"), "w") as f:
        f.write(allocation)
    os.replace(os.path.join(d, ALLOCATION + ".tmp"), os.path.join(d, ALLOCATION))

    def rest() -> None:
        inventory.write_dump(os.path.join(d, "expanded.yml"), compiled.expanded)
        if compiled.inputs is None:
            return
        # the next compile reads the allocation just written: an unchanged file then expands
        # to the same lab (tests/unit/test_pipeline.py checks this on every example)
        inputs = dict(compiled.inputs, previous=json.loads(allocation))
        record = {"lab": compiled.lab, "code": inputs["code"], "file": inputs["file"], "sources": inputs["sources"],
                  "digest": _digest(inputs), "inventory": _digest([inputs, table]), "stats": _stats(d),
                  "expanded": compiled.expanded}
        with open(record_path + ".tmp", "w") as f:
            f.write(json.dumps(record))
        os.replace(record_path + ".tmp", record_path)

    return inv, rest


#: Kept here for callers of the pipeline; lives in :mod:`topo.inventory`, which destroy imports
#: without the front end's model and expansion.
destroy_inventory = inventory.destroy_inventory
