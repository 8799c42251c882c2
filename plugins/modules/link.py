#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: link
short_description: Set interfaces of a topo lab up or down at runtime, in one call
description:
  - Receives a list of the lab's interfaces, each with the administrative state it should
    have (C(up) or C(down)), reads each from the kernel and sets only those that differ.
  - Setting one end of a veth down takes the link down in both directions (the peer loses
    its carrier), which is how C(topo link) and a check's C(during) take a link down.
  - Nothing is created or removed. Every interface must exist and carry this lab's alias
    C(topo:<lab>); a missing interface or any other interface fails the task, naming it.
  - The lab's declared state is up; the next apply (topo.lab.lab, topo.lab.veth,
    topo.lab.tunnel) sets a downed interface of the lab up again.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; interfaces must carry the alias C(topo:<lab>)., type: str, required: true}
  links:
    description: One item per interface.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace of the interface., type: str, required: true}
      ifname: {description: Interface name., type: str, required: true}
      state: {description: Administrative state it should have., type: str, choices: [up, down], required: true}
"""

EXAMPLES = r"""
- name: Take the link r1-r2 down (r1's end)
  topo.lab.link:
    lab: demo
    links: [{netns: topo-demo-r1, ifname: eth1, state: down}]

- name: And up again
  topo.lab.link:
    lab: demo
    links: [{netns: topo-demo-r1, ifname: eth1, state: up}]
"""

RETURN = r"""
changes:
  description: One entry per interface whose state was changed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: link, name: "topo-demo-r1/eth1", detail: "up -> down"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, run
from ansible_collections.topo.lab.plugins.module_utils._resources.linkstate import SPEC, LinkStates


def main():
    module = AnsibleModule(argument_spec=dict(lab=LAB, links=SPEC), supports_check_mode=True)
    run(module, [(LinkStates, module.params["links"], [])])


if __name__ == "__main__":
    main()
