#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: netns
short_description: Converge the named network namespaces of a topo lab, in one call
description:
  - Receives the whole list of namespaces a lab declares and makes the kernel match it.
  - A namespace is created with C(lo) up and the ownership marker C(topo:<lab>:<node>) as
    the alias of C(lo), written before the namespace becomes visible under C(/run/netns),
    so a namespace that carries no marker was not made by topo and is never touched.
  - Each declared sysctl (for example C(net.ipv4.ip_forward), C(net.ipv6.conf.all.forwarding),
    C(net.ipv6.conf.default.accept_dad)) is read inside the namespace and written only when it
    differs. A new namespace gets its sysctls before any interface is moved in, so the
    C(net.ipv6.conf.default.*) ones apply to every lab interface; on re-apply a drifted
    C(default.*) value is written again but does not reach interfaces that already exist.
  - With O(prune=true), namespaces marked as this lab's but no longer declared are removed,
    with every interface in them.
  - With O(state=absent), every namespace marked as this lab's is removed, whatever the list
    says; this is how C(topo destroy) works with the topology file gone.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab:
    description: Lab name; part of every marker.
    type: str
    required: true
  namespaces:
    description: The namespaces the lab declares.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Namespace name (a file under C(/run/netns)), type: str, required: true}
      node: {description: Node or bridge the namespace holds, type: str, required: true}
      sysctls:
        description: Sysctls to hold inside the namespace, dotted keys to values.
        type: dict
        default: {}
      kind:
        description:
          - C(netns) namespaces are made here. A C(docker) node's namespace is the container's
            own, named by M(topo.lab.container), which must run first; here it only gets its
            sysctls and lo checked.
        type: str
        choices: [netns, docker]
        default: netns
  state:
    description: C(present) converges to the list; C(absent) removes all of the lab's namespaces.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description: With C(present), remove the lab's namespaces that are not in the list.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Namespaces of lab demo
  topo.lab.netns:
    lab: demo
    namespaces:
      - {name: topo-demo-h1, node: h1}
      - {name: topo-demo-r1, node: r1, sysctls: {net.ipv4.ip_forward: "1", net.ipv6.conf.all.forwarding: "1"}}

- name: Remove everything lab demo owns
  topo.lab.netns:
    lab: demo
    state: absent
"""

RETURN = r"""
changes:
  description: One entry per namespace created, fixed or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: create, resource: netns, name: topo-demo-h1, detail: "node=h1"}]
owned:
  description: Names of the lab's namespaces found before the change.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, STATE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.netns import SPEC, Namespaces


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, namespaces=SPEC, state=STATE, prune=PRUNE),
        supports_check_mode=True,
    )
    run(module, [(Namespaces, module.params["namespaces"], [])])


if __name__ == "__main__":
    main()
