#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: address
short_description: Converge the IPv4 addresses of a topo lab's interfaces, in one call
description:
  - Receives, for every interface of the lab that carries addresses, the exact list it
    must carry, and makes the kernel match it - adding what is missing and removing any
    other IPv4 address on that interface (an address with the wrong prefix length counts
    as wrong). The loopback's C(127.0.0.1/8) is never touched.
  - Addresses with a prefix shorter than /31 get their subnet's broadcast address, as
    C(ip addr add ... brd +) does, so directed broadcasts work.
  - In check mode, an interface that does not exist yet (because an earlier module would
    make it) is reported as getting all its addresses.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name., type: str, required: true}
  interfaces:
    description: Interfaces and the addresses each must hold.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace of the interface., type: str, required: true}
      ifname: {description: Interface name., type: str, required: true}
      addresses: {description: IPv4 addresses with prefix length (C(a.b.c.d/len))., type: list, elements: str, default: []}
"""

EXAMPLES = r"""
- name: Addresses of lab demo
  topo.lab.address:
    lab: demo
    interfaces:
      - {netns: topo-demo-h1, ifname: eth0, addresses: [172.16.0.1/24]}
      - {netns: topo-demo-r1, ifname: lo, addresses: [10.0.0.1/32]}
"""

RETURN = r"""
changes:
  description: One entry per address added or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: create, resource: address, name: "topo-demo-h1/eth0", detail: "172.16.0.1/24"}]
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._netns import (
    run,
    Changes, NetlinkError, NetnsError, ipv4_addresses, namespace_exists,
    translate,
)

KEEP = {("lo", "127.0.0.1/8")}


def add(ipr, index, cidr):
    iface = ipaddress.ip_interface(cidr)
    kw = {"index": index, "address": str(iface.ip), "prefixlen": iface.network.prefixlen}
    if iface.network.prefixlen < 31:
        kw["broadcast"] = str(iface.network.broadcast_address)
    ipr.addr("add", **kw)


def remove(ipr, index, cidr):
    iface = ipaddress.ip_interface(cidr)
    ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def converge(module, socks):
    p = module.params
    check = module.check_mode
    changes = Changes("address")
    by_ns = {}
    for item in p["interfaces"]:
        by_ns.setdefault(item["netns"], []).append(item)
    for ns in sorted(by_ns):
        ipr = socks.get(ns) if namespace_exists(ns) else None
        have_by_index = {}
        if ipr is not None:
            for index, cidr in ipv4_addresses(ipr):
                have_by_index.setdefault(index, []).append(cidr)
        for item in by_ns[ns]:
            name = "%s/%s" % (ns, item["ifname"])
            want = [str(ipaddress.ip_interface(a)) for a in item["addresses"]]
            index = None
            if ipr is not None:
                found = ipr.link_lookup(ifname=item["ifname"])
                index = found[0] if found else None
            if index is None and not check:
                raise NetnsError("interface %s does not exist" % name)
            have = have_by_index.get(index, [])
            for cidr in have:
                if cidr in want or (item["ifname"], cidr) in KEEP:
                    continue
                changes.add("remove", name, cidr, before=cidr)
                if not check:
                    try:
                        remove(ipr, index, cidr)
                    except NetlinkError as exc:
                        raise translate(exc, "remove %s from %s" % (cidr, name))
            for cidr in want:
                if cidr in have:
                    continue
                changes.add("create", name, cidr, after=cidr)
                if not check:
                    try:
                        add(ipr, index, cidr)
                    except NetlinkError as exc:
                        raise translate(exc, "add %s to %s" % (cidr, name))
    return changes.result()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", required=True),
            interfaces=dict(type="list", elements="dict", default=[], options=dict(
                netns=dict(type="str", required=True),
                ifname=dict(type="str", required=True),
                addresses=dict(type="list", elements="str", default=[]),
            )),
        ),
        supports_check_mode=True,
    )
    run(module, converge)


if __name__ == "__main__":
    main()
