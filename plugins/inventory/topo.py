# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
name: topo
short_description: Use a topo topology file (YAML or CSV) as an inventory
description:
  - Reads a topo topology file directly - no C(topo) CLI run needed - and builds the same
    inventory C(topo) writes into a lab directory, from the same code
    (C(topo.pipeline.compile_file) and C(topo.inventory.project)).
  - Hosts are C(localhost) in group C(topo_hosts) (it builds the lab) and every node in
    C(topo_nodes), reached with the C(topo.lab.netns) connection, plus one group per node
    kind and per group the topology declares.
  - Accepts C(.csv) files, and C(.yml)/C(.yaml) files whose top level has a C(nodes) key
    (so ordinary YAML inventories are left to the C(yaml) plugin).
  - An invalid topology fails with every problem, each naming file, line and field.
author: topo developers
requirements: [topo (the Python package)]
options:
  plugin:
    description: Not needed - the file is a topology, not a plugin config.
    type: str
    required: false
"""

EXAMPLES = r"""
# ansible.cfg:  [inventory] enable_plugins = topo.lab.topo, host_list, yaml, ini, auto
# ansible-inventory -i examples/routed.yml --graph
# ansible-playbook -i examples/routed.yml site.yml
"""

import os

import yaml

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin


class InventoryModule(BaseInventoryPlugin):
    """Inventory from a topo topology file."""

    NAME = "topo.lab.topo"

    def verify_file(self, path):
        if not super(InventoryModule, self).verify_file(path):
            return False
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".csv":
            return True
        if suffix not in (".yml", ".yaml"):
            return False
        try:
            with open(path) as f:
                data = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            return False
        return isinstance(data, dict) and "nodes" in data and "plugin" not in data

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        try:
            from topo.errors import TopoError
            from topo.inventory import project
            from topo.pipeline import compile_file
        except ImportError as exc:
            raise AnsibleParserError("the topo Python package is needed to read %s: %s" % (path, exc))
        try:
            compiled = compile_file(path)
        except TopoError as exc:
            detail = "\n".join(str(p) for p in getattr(exc, "problems", []))
            raise AnsibleParserError("%s\n%s" % (exc, detail))
        files = project(compiled.expanded)
        self._add_groups(files["hosts.yml"]["all"])
        for name, value in files["group_vars/topo_hosts.json"].items():
            self.inventory.set_variable("topo_hosts", name, value)
        for rel, data in files.items():
            if rel.startswith("host_vars/"):
                host = os.path.splitext(os.path.basename(rel))[0]
                for name, value in data.items():
                    self.inventory.set_variable(host, name, value)

    def _add_groups(self, group, name="all"):
        for key, value in (group.get("vars") or {}).items():
            self.inventory.set_variable(name, key, value)
        for host, hvars in (group.get("hosts") or {}).items():
            self.inventory.add_host(host, group=name)
            for key, value in (hvars or {}).items():
                self.inventory.set_variable(host, key, value)
        for child, sub in (group.get("children") or {}).items():
            self.inventory.add_group(child)
            self.inventory.add_child(name, child)
            self._add_groups(sub, child)
