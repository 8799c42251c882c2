#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: route
short_description: Converge the static IPv4 and IPv6 routes of a topo lab's namespaces, in one call
description:
  - Receives, per namespace, the exact list of routes topo must hold there (main table),
    IPv4 and IPv6 alike; both families are read, compared, marked and pruned the same way.
  - Routes topo installs carry the rtnetlink protocol number 116, which marks them as
    topo's. Only such routes are compared and removed; connected routes the kernel makes
    and routes anyone else adds are left alone.
  - A route goes through a next hop (gateway), an output interface (dev) or both.
  - A route whose destination is right but whose gateway (or declared dev) differs is replaced in place.
  - A declared destination that already has a route of another protocol (made by hand or
    by another tool) fails the task - topo never takes over a route it did not make.
  - With O(prune=true), topo's routes (protocol 116) in the namespaces of O(routes) and
    O(namespaces) that are not declared are removed, after the declared ones are converged;
    with O(prune=false) they are left alone.
  - In check mode, a namespace that does not exist yet is reported as getting all its routes.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name., type: str, required: true}
  routes:
    description: Per namespace, the routes to hold.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace., type: str, required: true}
      routes:
        description: Routes.
        type: list
        elements: dict
        default: []
        options:
          dst:
            description: Destination prefix, IPv4 or IPv6 (C(0.0.0.0/0) and C(::/0) for the default routes).
            type: str
            required: true
          gateway:
            description:
              - Next-hop address of the destination's family, on a connected subnet; for IPv6 a
                global address, or a link-local one together with O(routes[].routes[].dev).
              - A route needs a gateway, a dev or both.
            type: str
          dev:
            description:
              - Output interface of the route (a tunnel, veth or bridge of the namespace), as
                C(ip route add PREFIX dev DEV); without a gateway the destination is on that
                link (IPv4 routes get scope link, as C(ip route) gives them).
              - Compared by the route's output interface; when omitted the kernel picks the
                interface towards the gateway and it is not compared.
              - Fails when the namespace has no such interface.
            type: str
  namespaces:
    description: Namespaces whose topo routes are pruned when not listed (a namespace left out of O(routes) loses all of them).
    type: list
    elements: str
    default: []
  prune: {description: Remove topo's undeclared routes in the namespaces of O(routes) and O(namespaces)., type: bool, default: true}
"""

EXAMPLES = r"""
- name: Routes of lab demo
  topo.lab.route:
    lab: demo
    routes:
      - netns: topo-demo-h1
        routes: [{dst: 0.0.0.0/0, gateway: 172.16.0.254}, {dst: "::/0", gateway: "2001:db8:1::fe"}]
      - netns: topo-demo-leaf1
        routes: [{dst: 110.0.0.0/24, dev: gre1}]
    namespaces: [topo-demo-h1, topo-demo-r1]
"""

RETURN = r"""
changes:
  description: One entry per route added, replaced or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: create, resource: route, name: "topo-demo-h1 0.0.0.0/0", detail: "via 172.16.0.254"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, SCOPE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.route import SPEC, Routes


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, routes=SPEC, namespaces=SCOPE, prune=PRUNE),
        supports_check_mode=True,
    )
    run(module, [(Routes, module.params["routes"], module.params["namespaces"])])


if __name__ == "__main__":
    main()
