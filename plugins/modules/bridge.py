#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: bridge
short_description: Converge the Linux bridges of a topo lab, in one call
description:
  - Receives every bridge the lab declares and makes each namespace match it.
  - Every attribute is compared, not only existence - kind, administrative state, MTU (when
    declared), IGMP snooping and querier - and only what differs is changed.
  - A bridge topo makes carries the alias C(topo:<lab>). An interface with the declared name
    that does not carry it (a bridge or anything else made by hand) is refused, never
    adopted; one of topo's that is not a bridge is replaced.
  - With O(prune=true), bridges with this lab's alias in O(namespaces) that are no longer
    declared are removed.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; bridges carry the alias C(topo:<lab>)., type: str, required: true}
  bridges:
    description: The bridges the lab declares.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace the bridge lives in., type: str, required: true}
      name: {description: Interface name (at most 15 characters)., type: str, required: true}
      mtu: {description: MTU in bytes; left to the kernel when omitted., type: int}
      mcast_snooping: {description: IGMP snooping (kernel default on)., type: bool, default: true}
      mcast_querier: {description: Act as IGMP querier., type: bool, default: false}
  namespaces:
    description: Namespaces in which undeclared bridges of this lab are pruned.
    type: list
    elements: str
    default: []
  prune: {description: Remove undeclared bridges of this lab., type: bool, default: true}
"""

EXAMPLES = r"""
- name: Bridges of lab demo
  topo.lab.bridge:
    lab: demo
    bridges:
      - {netns: topo-demo-lan, name: br0, mcast_querier: true}
    namespaces: [topo-demo-lan]
"""

RETURN = r"""
changes:
  description: One entry per bridge created, fixed or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: bridge, name: "topo-demo-lan/br0", detail: "mcast_querier 0 -> 1"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, SCOPE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.bridge import SPEC, Bridges


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, bridges=SPEC, namespaces=SCOPE, prune=PRUNE),
        supports_check_mode=True,
    )
    run(module, [(Bridges, module.params["bridges"], module.params["namespaces"])])


if __name__ == "__main__":
    main()
