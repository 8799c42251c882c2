"""The front end as one call: load -> resolve/validate -> expand, then project to an inventory.

Each phase reports all of its problems at once and stops the run before the next phase
(InputError, exit 2), so nothing is ever built from invalid input.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from topo import inventory, labdir
from topo.expand import expand, previous_allocation
from topo.expand.shape import Expanded
from topo.load import load
from topo.model import Lab, resolve


@dataclass
class Compiled:
    """A topology file, validated and expanded: ``file`` (its path), ``model`` (the
    validated Lab, which carries its source positions) and ``expanded`` (see
    :class:`topo.expand.shape.Expanded`)."""

    file: str
    model: Lab
    expanded: Expanded

    @property
    def lab(self) -> str:
        """The lab's name."""
        return self.model.name


def compile_file(path: str, sticky: bool = False,
                 hosts: dict | Callable[[str], dict | None] | None = None) -> Compiled:
    """Load, validate and expand ``path``. Raises InputError (exit 2) with every problem of
    the first phase that has any (load, validate, then the expansion's phases); the raw
    document is dropped once validated.

    ``sticky``: keep the pool allocations of the lab's last apply (its lab directory's
    expanded.yml), so edits do not renumber unedited nodes. The CLI sets it; tests and the
    inventory plugin see the file alone.

    ``hosts``: the build hosts ``{name: vars}`` (:func:`topo.inventory.build_hosts`) the lab
    is placed on, or a function of the lab's name that gives them (or None); default one
    host, localhost (:func:`topo.expand.expand`).
    """
    model = resolve(load(path))
    if callable(hosts):
        hosts = hosts(model.name)
    previous = _previous(model.name) if sticky else None
    foreign = _foreign_vnis(model.name, hosts) if sticky and hosts and len(hosts) > 1 else None
    return Compiled(path, model, expand(model, previous, hosts, foreign))


ALLOCATION = "allocation.json"


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


def write_inventory(compiled: Compiled, hosts: str | None = None) -> str:
    """Write the lab directory's inventory and expanded.yml; return the inventory path.
    ``hosts``: the build-host inventory (default: this machine, see inventory.build_hosts)."""
    d = labdir.prepare(compiled.lab)
    inv = os.path.join(d, "inventory")
    inventory.write(inv, inventory.project(compiled.expanded, hosts=inventory.build_hosts(hosts)))
    inventory.write_dump(os.path.join(d, "expanded.yml"), compiled.expanded)
    with open(os.path.join(d, ALLOCATION + ".tmp"), "w") as f:
        f.write(json.dumps(previous_allocation(compiled.expanded), sort_keys=True))
    os.replace(os.path.join(d, ALLOCATION + ".tmp"), os.path.join(d, ALLOCATION))
    return inv


#: Kept here for callers of the pipeline; lives in :mod:`topo.inventory`, which destroy imports
#: without the front end's model and expansion.
destroy_inventory = inventory.destroy_inventory
