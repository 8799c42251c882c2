#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: route
short_description: Converge the static IPv4 routes of a topo lab's namespaces, in one call
description:
  - Receives, per namespace, the exact list of routes topo must hold there (main table).
  - Routes topo installs carry the rtnetlink protocol number 116, which marks them as
    topo's. Only such routes are compared and removed; connected routes the kernel makes
    and routes anyone else adds are left alone.
  - A route whose destination is right but whose gateway differs is replaced in place.
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
          dst: {description: Destination prefix (C(0.0.0.0/0) for the default route)., type: str, required: true}
          gateway: {description: Next-hop IPv4 address, on a connected subnet., type: str, required: true}
  namespaces:
    description: Namespaces whose topo routes are pruned when not listed (a namespace left out of O(routes) loses all of them).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Routes of lab demo
  topo.lab.route:
    lab: demo
    routes:
      - netns: topo-demo-h1
        routes: [{dst: 0.0.0.0/0, gateway: 172.16.0.254}]
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

import ipaddress
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._netns import (
    run,
    ROUTE_PROTO, Changes, NetlinkError, NetnsError, namespace_exists,
    translate,
)

MAIN_TABLE = 254


def topo_routes(ipr):
    """{dst: gateway} of routes with topo's protocol number in the main table."""
    have = {}
    for msg in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
        if msg["proto"] != ROUTE_PROTO:
            continue
        dst = "%s/%d" % (msg.get_attr("RTA_DST") or "0.0.0.0", msg["dst_len"])
        have[dst] = msg.get_attr("RTA_GATEWAY")
    return have


def converge(module, socks):
    p = module.params
    check = module.check_mode
    changes = Changes("route")
    wanted = {}
    for item in p["routes"]:
        table = wanted.setdefault(item["netns"], {})
        for r in item["routes"]:
            table[str(ipaddress.ip_network(r["dst"]))] = str(ipaddress.ip_address(r["gateway"]))
    for ns in sorted(set(wanted) | set(p["namespaces"])):
        want = wanted.get(ns, {})
        exists = namespace_exists(ns)
        if not exists and not check:
            if want:
                raise NetnsError("namespace %s does not exist" % ns)
            continue
        ipr = socks.get(ns) if exists else None
        have = topo_routes(ipr) if ipr is not None else {}
        for dst in sorted(have):
            if dst in want:
                continue
            changes.add("remove", "%s %s" % (ns, dst), "via %s" % have[dst],
                        before="via %s" % have[dst])
            if not check:
                try:
                    ipr.route("del", dst=dst, gateway=have[dst], proto=ROUTE_PROTO)
                except NetlinkError as exc:
                    raise translate(exc, "remove route %s in %s" % (dst, ns))
        for dst in sorted(want):
            gw = want[dst]
            if have.get(dst) == gw:
                continue
            action = "fix" if dst in have else "create"
            detail = "via %s" % gw if action == "create" else "via %s -> %s" % (have[dst], gw)
            changes.add(action, "%s %s" % (ns, dst), detail,
                        before=("via %s" % have[dst]) if dst in have else None,
                        after="via %s" % gw)
            if not check:
                try:
                    ipr.route("replace", dst=dst, gateway=gw, proto=ROUTE_PROTO)
                except NetlinkError as exc:
                    raise translate(exc, "route %s via %s in %s" % (dst, gw, ns))
    return changes.result()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", required=True),
            routes=dict(type="list", elements="dict", default=[], options=dict(
                netns=dict(type="str", required=True),
                routes=dict(type="list", elements="dict", default=[], options=dict(
                    dst=dict(type="str", required=True),
                    gateway=dict(type="str", required=True),
                )),
            )),
            namespaces=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    run(module, converge)


if __name__ == "__main__":
    main()
