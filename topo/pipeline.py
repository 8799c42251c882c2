"""The front end as one call: load -> resolve/validate -> expand, then project to an inventory.

Each phase reports all of its problems at once and stops the run before the next phase
(InputError, exit 2), so nothing is ever built from invalid input.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from topo import inventory, labdir
from topo.expand import expand, previous_allocation
from topo.load import RawLab, load
from topo.model import Lab, resolve


@dataclass
class Compiled:
    """A topology file, validated and expanded."""

    file: str
    raw: RawLab
    model: Lab
    expanded: dict

    @property
    def lab(self) -> str:
        return self.model.name


def compile_file(path: str, sticky: bool = False) -> Compiled:
    """Load, validate and expand ``path``. Raises InputError with every problem of a phase.

    ``sticky``: keep the pool allocations of the lab's last apply (its lab directory's
    expanded.yml), so edits do not renumber unedited nodes. The CLI sets it; tests and the
    inventory plugin see the file alone.
    """
    raw = load(path)
    model = resolve(raw)
    previous = _previous(model.name) if sticky else None
    return Compiled(path, raw, model, expand(model, raw, previous))


ALLOCATION = "allocation.json"


def _previous(lab: str) -> dict | None:
    """The allocation the lab's last apply recorded (see expand.previous_allocation)."""
    try:
        with open(os.path.join(labdir.lab_dir(lab), ALLOCATION)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_inventory(compiled: Compiled) -> str:
    """Write the lab directory's inventory and expanded.yml; return the inventory path."""
    d = labdir.prepare(compiled.lab)
    inv = os.path.join(d, "inventory")
    inventory.write(inv, inventory.project(compiled.expanded))
    for name, text in (("expanded.yml", inventory.dump(compiled.expanded)),
                       (ALLOCATION, json.dumps(previous_allocation(compiled.expanded), sort_keys=True))):
        with open(os.path.join(d, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))
    return inv


def destroy_inventory(lab: str) -> str:
    """A minimal inventory for destroying ``lab`` by its markers, with no topology file."""
    d = labdir.prepare(lab)
    inv = os.path.join(d, "destroy-inventory")
    inventory.write(inv, {"hosts.yml": {"all": {"vars": {"topo_lab": lab}, "children": {
        "topo_hosts": {"hosts": inventory.build_hosts()}}}}})
    return inv
