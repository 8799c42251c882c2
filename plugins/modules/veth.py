#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: veth
short_description: Converge the veth pairs of a topo lab, in one call
description:
  - Receives every veth pair the lab declares. Each pair is made in one netlink message
    with its peer placed directly in the other namespace, so no end ever appears in the
    root namespace and an interrupted create leaves no half pair behind.
  - A pair is correct only when both ends exist, are veths and are each other's peer -
    checked by ifindex and by the peer's namespace (IFLA_LINK_NETNSID), since an ifindex
    repeats across namespaces; otherwise whatever exists of it is removed (when it carries
    this lab's alias; an end topo did not make is refused, never removed) and the pair is
    made again, with MTU, MAC, master and up set in the creating message.
  - On a correct pair every attribute of both ends is compared - MTU, MAC (when declared),
    bridge membership (master), administrative state, ownership alias - and only the
    difference is set.
  - With O(prune=true), veths carrying this lab's alias in O(namespaces) that no declared pair
    uses are removed (removing one end removes its peer).
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; ends carry the alias C(topo:<lab>)., type: str, required: true}
  veths:
    description: The pairs; each has two ends, C(a) and C(b).
    type: list
    elements: dict
    default: []
    suboptions:
      a:
        description: First end.
        type: dict
        required: true
        options: &end
          netns: {description: Namespace of this end., type: str, required: true}
          ifname: {description: Interface name (at most 15 characters)., type: str, required: true}
          mtu: {description: MTU in bytes., type: int, default: 1500}
          mac: {description: MAC address; kernel-chosen when omitted., type: str}
          master: {description: Name of a bridge in the same namespace to enslave this end to., type: str}
      b:
        description: Second end.
        type: dict
        required: true
        options: *end
  namespaces:
    description: Namespaces in which undeclared veths of this lab are pruned.
    type: list
    elements: str
    default: []
  prune: {description: Remove undeclared veths of this lab., type: bool, default: true}
"""

EXAMPLES = r"""
- name: A host on a LAN bridge and a point-to-point link
  topo.lab.veth:
    lab: demo
    veths:
      - a: {netns: topo-demo-h1, ifname: eth0}
        b: {netns: topo-demo-lan, ifname: h1-eth0, master: br0}
      - a: {netns: topo-demo-r1, ifname: eth1, mtu: 9000}
        b: {netns: topo-demo-r2, ifname: eth1, mtu: 9000}
    namespaces: [topo-demo-h1, topo-demo-lan, topo-demo-r1, topo-demo-r2]
"""

RETURN = r"""
changes:
  description: One entry per pair created or removed, or end fixed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: veth, name: "topo-demo-h1/eth0", detail: "mtu 1400 -> 1500"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, SCOPE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.veth import SPEC, Veths


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, veths=SPEC, namespaces=SCOPE, prune=PRUNE),
        supports_check_mode=True,
    )
    run(module, [(Veths, module.params["veths"], module.params["namespaces"])])


if __name__ == "__main__":
    main()
