#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab
short_description: Converge a whole topo lab - containers, namespaces, bridges, veths, tunnels, impairments, addresses, routes - in one call
description:
  - Runs, in one module process, exactly what M(topo.lab.container) (docker nodes), M(topo.lab.netns), M(topo.lab.bridge),
    M(topo.lab.veth), M(topo.lab.tunnel), M(topo.lab.impair), M(topo.lab.address) and
    M(topo.lab.route) do, in that order, with one shared set of netlink sockets.
  - Before it changes anything it checks that the running kernel has every feature in
    O(features) (each is tried in a throw-away namespace), and fails naming the missing
    one, its kernel option and module, so a lab is never half built for want of GRE. It is what C(topo apply) and the C(topo.lab.lab)
    role use.
  - Why one call - each module process costs about 0.5 s before it touches the kernel
    (AnsiballZ start, ansible's module_utils, and pyroute2's import, about 0.15-0.25 s on
    the project's 2-core reference machine), which eight separate tasks pay eight times.
  - Options are those of the eight modules; O(namespaces) is the list of namespace dicts, and
    its names are the scope in which undeclared bridges, veths, tunnels, impairments and routes
    are pruned.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name (part of every marker)., type: str, required: true}
  containers: {description: As M(topo.lab.container) O(containers)., type: list, elements: dict, default: []}
  namespaces:
    description: As M(topo.lab.netns) O(namespaces).
    type: list
    elements: dict
    default: []
  bridges: {description: As M(topo.lab.bridge) O(bridges)., type: list, elements: dict, default: []}
  veths: {description: As M(topo.lab.veth) O(veths)., type: list, elements: dict, default: []}
  tunnels: {description: As M(topo.lab.tunnel) O(tunnels)., type: list, elements: dict, default: []}
  impairments: {description: As M(topo.lab.impair) O(impairments)., type: list, elements: dict, default: []}
  features:
    description:
      - Kernel features the lab needs beyond veth and bridge - C(vxlan), C(gre), C(gretap),
        C(ip6gre), C(ip6gretap), C(netem), C(tbf). Checked before anything is built.
    type: list
    elements: str
    default: []
  addresses: {description: As M(topo.lab.address) O(interfaces)., type: list, elements: dict, default: []}
  routes: {description: As M(topo.lab.route) O(routes)., type: list, elements: dict, default: []}
  prune:
    description:
      - Remove what the lab owns but no longer declares - containers, namespaces, bridges, veths,
        tunnels, impairments and routes (each module's O(prune)).
    type: bool
    default: true
  state:
    description:
      - C(present) converges to the lists; C(absent) removes every container labelled with the
        lab and every namespace carrying its marker (and so every interface, bridge, tunnel and
        route in them), whatever the lists say - what C(topo destroy) runs, in one module call.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Build lab demo
  topo.lab.lab:
    lab: demo
    namespaces: [{name: topo-demo-h1, node: h1}, {name: topo-demo-lan, node: lan}]
    bridges: [{netns: topo-demo-lan, name: lan}]
    veths:
      - a: {netns: topo-demo-h1, ifname: eth0}
        b: {netns: topo-demo-lan, ifname: h1-eth0, master: lan}
    addresses: [{netns: topo-demo-h1, ifname: eth0, addresses: [172.16.0.1/24]}]

- name: Remove everything lab demo owns (containers, then namespaces)
  topo.lab.lab:
    lab: demo
    state: absent
"""

RETURN = r"""
changes:
  description: Every create, fix and remove, in order, each with its C(resource).
  returned: always
  type: list
  elements: dict
summary:
  description: Number of changes per resource type.
  returned: always
  type: dict
  sample: {container: 0, netns: 17, bridge: 1, veth: 16, tunnel: 0, impair: 0, address: 16, route: 0}
owned:
  description: The lab's namespaces found before the change.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, STATE, run
from ansible_collections.topo.lab.plugins.module_utils._resources import address, bridge, container, impairment, netns, route, tunnel, veth


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=LAB,
            containers=container.SPEC,
            namespaces=netns.SPEC,
            bridges=bridge.SPEC,
            veths=veth.SPEC,
            tunnels=tunnel.SPEC,
            impairments=impairment.SPEC,
            features=tunnel.FEATURES,
            addresses=address.SPEC,
            routes=route.SPEC,
            prune=PRUNE,
            state=STATE,
        ),
        supports_check_mode=True,
    )
    p = module.params
    scope = [ns["name"] for ns in p["namespaces"]]
    # Containers first: their namespaces must be named before anything is wired into them.
    # One Context for all passes: one link dump per namespace, shared by every pass.
    run(module, [
        (container.Containers, p["containers"], scope),
        (netns.Namespaces, p["namespaces"], scope),
        (bridge.Bridges, p["bridges"], scope),
        (veth.Veths, p["veths"], scope),
        (tunnel.Tunnels, p["tunnels"], scope),
        (impairment.Impairments, p["impairments"], scope),
        (address.Addresses, p["addresses"], scope),
        (route.Routes, p["routes"], scope),
    ], features=p["features"])


if __name__ == "__main__":
    main()
