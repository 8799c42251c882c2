#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab
short_description: Converge a whole topo lab - namespaces, bridges, veths, tunnels, addresses, routes - in one call
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
    the project's 2-core reference machine), which five separate tasks pay five times.
  - Options are those of the five modules; O(namespaces) is the list of namespace dicts, and
    its names are the scope in which undeclared bridges, veths and routes are pruned.
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
        C(netem), C(tbf). Checked before anything is built.
    type: list
    elements: str
    default: []
  addresses: {description: As M(topo.lab.address) O(interfaces)., type: list, elements: dict, default: []}
  routes: {description: As M(topo.lab.route) O(routes)., type: list, elements: dict, default: []}
  prune: {description: Remove what the lab owns but no longer declares., type: bool, default: true}
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
from ansible_collections.topo.lab.plugins.module_utils._docker import SPEC as CONTAINERS, converge_containers
from ansible_collections.topo.lab.plugins.module_utils._netns import require_features, run
from ansible_collections.topo.lab.plugins.module_utils._qdisc import converge_impairments
from ansible_collections.topo.lab.plugins.module_utils._resources import (
    SPECS, Tables, converge_addresses, converge_bridges, converge_namespaces, converge_routes, converge_tunnels,
    converge_veths,
)


def converge(socks, p, check):
    scope = [ns["name"] for ns in p["namespaces"]]
    lab, prune = p["lab"], p["prune"]
    require_features(p["features"])
    # Containers first: their namespaces must be named before anything is wired into them.
    done = [converge_containers(lab, p["containers"], check, "present", prune)]
    tables = Tables(socks)  # one link dump per namespace, shared by every pass of the run
    done.append(converge_namespaces(socks, lab, p["namespaces"], check, "present", prune, tables))
    done.append(converge_bridges(socks, lab, p["bridges"], scope, check, prune, tables))
    done.append(converge_veths(socks, lab, p["veths"], scope, check, prune, tables))
    done.append(converge_tunnels(socks, lab, p["tunnels"], scope, check, prune, tables))
    done.append(converge_impairments(socks, lab, p["impairments"], scope, check, prune, tables))
    done.append(converge_addresses(socks, lab, p["addresses"], check, tables))
    done.append(converge_routes(socks, lab, p["routes"], scope, check))
    return done


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=SPECS["lab"],
            containers=CONTAINERS,
            namespaces=SPECS["namespaces"],
            bridges=SPECS["bridges"],
            veths=SPECS["veths"],
            tunnels=SPECS["tunnels"],
            impairments=SPECS["impairments"],
            features=SPECS["features"],
            addresses=SPECS["interfaces"],
            routes=SPECS["routes"],
            prune=SPECS["prune"],
        ),
        supports_check_mode=True,
    )
    run(module, lambda socks: converge(socks, module.params, module.check_mode))


if __name__ == "__main__":
    main()
