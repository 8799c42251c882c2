"""The front end as one call: load -> resolve/validate -> expand, then project to an inventory.

Each phase reports all of its problems at once and stops the run before the next phase
(InputError, exit 2), so nothing is ever built from invalid input.
"""

from __future__ import annotations

import json
import os
import sys
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


def compile_file(path: str, sticky: bool = False) -> Compiled:
    """Load, validate and expand ``path``. Raises InputError (exit 2) with every problem of
    the first phase that has any (load, validate, then the expansion's phases); the raw
    document is dropped once validated.

    ``sticky``: keep the pool allocations of the lab's last apply (its lab directory's
    expanded.yml), so edits do not renumber unedited nodes. The CLI sets it; tests and the
    inventory plugin see the file alone.
    """
    model = resolve(load(path))
    previous = _previous(model.name) if sticky else None
    return Compiled(path, model, expand(model, previous))


ALLOCATION = "allocation.json"


def _previous(lab: str) -> dict | None:
    """The allocation the lab's last apply recorded (see expand.previous_allocation)."""
    try:
        with open(os.path.join(labdir.lab_dir(lab), ALLOCATION)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_inventory(compiled: Compiled, hosts: str | None = None) -> str:
    """Write the lab directory's inventory and expanded.yml; return the inventory path.
    ``hosts``: the build-host inventory (default: this machine, see inventory.build_hosts)."""
    d = labdir.prepare(compiled.lab)
    inv = os.path.join(d, "inventory")
    inventory.write(inv, inventory.project(compiled.expanded, hosts=inventory.build_hosts(hosts)))
    for name, text in (("expanded.yml", inventory.dump(compiled.expanded)),
                       (ALLOCATION, json.dumps(previous_allocation(compiled.expanded), sort_keys=True))):
        with open(os.path.join(d, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))
    return inv


def destroy_inventory(lab: str, hosts: str | None = None) -> str:
    """A minimal inventory for destroying ``lab`` by its markers on every build host of
    ``hosts`` (default: this machine), with no topology file."""
    d = labdir.prepare(lab)
    inv = os.path.join(d, "destroy-inventory")
    inventory.write(inv, {"hosts.yml": {"all": {"vars": {"topo_lab": lab}, "children": {
        "topo_hosts": {"hosts": inventory.host_vars(inventory.build_hosts(hosts), sys.executable)}}}}})
    return inv
