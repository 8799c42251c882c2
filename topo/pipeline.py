"""The front end as one call: load -> resolve/validate -> expand, then project to an inventory.

Each phase reports all of its problems at once and stops the run before the next phase
(InputError, exit 2), so nothing is ever built from invalid input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

from topo import inventory, labdir
from topo.expand import expand
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


def _previous(lab: str) -> dict | None:
    try:
        with open(os.path.join(labdir.lab_dir(lab), "expanded.yml")) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def write_inventory(compiled: Compiled) -> str:
    """Write the lab directory's inventory and expanded.yml; return the inventory path."""
    d = labdir.prepare(compiled.lab)
    inv = os.path.join(d, "inventory")
    inventory.write(inv, inventory.project(compiled.expanded))
    with open(os.path.join(d, "expanded.yml.tmp"), "w") as f:
        f.write(inventory.dump(compiled.expanded))
    os.replace(os.path.join(d, "expanded.yml.tmp"), os.path.join(d, "expanded.yml"))
    return inv


def destroy_inventory(lab: str) -> str:
    """A minimal inventory for destroying ``lab`` by its markers, with no topology file."""
    d = labdir.prepare(lab)
    inv = os.path.join(d, "destroy-inventory")
    inventory.write(inv, {"hosts.yml": {"all": {"vars": {"topo_lab": lab}, "children": {
        "topo_hosts": {"hosts": {"localhost": {"ansible_connection": "local"}}}}}}})
    return inv
