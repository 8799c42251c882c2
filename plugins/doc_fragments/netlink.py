# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Documentation shared by topo's batched netlink modules."""


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options: {}
requirements:
  - pyroute2 >= 0.9 on the build host
  - root (C(setns) into namespaces, netlink changes)
attributes:
  check_mode:
    support: full
    description: Reports what would change, from the real kernel state, changing nothing.
  diff_mode:
    support: full
    description: Before/after lines per changed object.
  idempotent:
    support: full
    description: A second run with the same list reports no change.
notes:
  - Called once per host with the whole desired list of one resource type (batched), never
    once per object.
  - Every change is also returned as an entry of RV(changes) - C(action) (create, fix or
    remove), C(resource), C(name), C(detail) - which C(topo plan) renders.
  - The result's C(invocation) gives each list option as its length, not its contents, since
    the lists are the lab's whole desired state (megabytes at 1000 nodes) and are in the inventory.
"""
