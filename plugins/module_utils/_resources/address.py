# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``address`` kind - exactly the declared IPv4 addresses (with their subnet's
broadcast) on each listed interface. It has no prune: an interface that is not listed keeps
its addresses (a removed link takes its addresses with it)."""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import NetlinkError, NetnsError, conf_write, translate
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind

IFA_F_SECONDARY = 0x01
#: Addresses topo never removes: (ifname, cidr).
KEEP_ADDRESSES = {("lo", "127.0.0.1/8")}

#: The ``interfaces`` option of topo.lab.address (``addresses`` in topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    addresses=dict(type="list", elements="str", default=[]),
))


def _addresses(ipr):
    """{ifindex: [(cidr, broadcast, secondary)]} of IPv4 addresses, in kernel order."""
    out = {}
    for m in ipr.get_addr(family=socket.AF_INET):
        cidr = "%s/%d" % (m.get_attr("IFA_ADDRESS"), m["prefixlen"])
        out.setdefault(m["index"], []).append(
            (cidr, m.get_attr("IFA_BROADCAST"), bool(m["flags"] & IFA_F_SECONDARY)))
    return out


def broadcast(cidr):
    """The broadcast address of ``cidr``'s subnet (str), None for a /31 or /32."""
    net = ipaddress.ip_interface(cidr).network
    return str(net.broadcast_address) if net.prefixlen < 31 else None


class Addresses(Kind):
    """Items: [{netns, ifname, addresses: ["a.b.c.d/len"]}]: every other IPv4 address on a
    listed interface is removed, a wrong broadcast is fixed (removed and added again).

    Removing a subnet's primary address makes the kernel drop its secondaries too
    (promote_secondaries is 0 in a new namespace). When a wanted secondary would go that
    way, promote_secondaries is set on that interface first, so it is promoted and kept.
    NetnsError for a missing interface (outside check mode, where it is reported as getting
    all its addresses).
    """

    resource = "address"

    def converge(self, items, changes):
        ctx, check = self.ctx, self.ctx.check
        by_ns = {}
        for item in items:
            by_ns.setdefault(item["netns"], []).append(item)
        for ns in sorted(by_ns):
            ipr = ctx.socks.get(ns) if ctx.exists(ns) else None
            have_all = _addresses(ipr) if ipr is not None else {}
            for item in by_ns[ns]:
                self._interface(changes, ns, ipr, have_all, item, check)

    def _interface(self, changes, ns, ipr, have_all, item, check):
        name = "%s/%s" % (ns, item["ifname"])
        want = [str(ipaddress.ip_interface(a)) for a in item["addresses"]]
        link = self.ctx.tables.get(ns, item["ifname"]) if ipr is not None else None
        index = link["index"] if link else None
        if index is None and not check:
            raise NetnsError("interface %s does not exist" % name)
        have = have_all.get(index, [])
        dropped_subnets = set()
        removals = []
        for cidr, brd, secondary in have:
            if (item["ifname"], cidr) in KEEP_ADDRESSES:
                continue
            if cidr in want and brd == broadcast(cidr):
                continue
            removals.append(cidr)
            if not secondary:
                dropped_subnets.add(ipaddress.ip_interface(cidr).network)
            if cidr in want:
                changes.add("fix", name, "%s broadcast %s -> %s" % (cidr, brd, broadcast(cidr)),
                            before="%s brd %s" % (cidr, brd), after="%s brd %s" % (cidr, broadcast(cidr)))
            else:
                changes.add("remove", name, cidr, before=cidr)
        present = set(c for c, _, _ in have) - set(removals)
        keep_secondaries = any(sec and c in present and ipaddress.ip_interface(c).network in dropped_subnets
                               for c, _, sec in have)
        for cidr in want:
            if cidr not in present and cidr not in removals:
                changes.add("create", name, cidr, after=cidr)
        if check:
            return
        try:
            if keep_secondaries:
                conf_write(ns, item["ifname"], "promote_secondaries", 1)
            for cidr in removals:
                iface = ipaddress.ip_interface(cidr)
                ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            now = set(c for c, _, _ in _addresses(ipr).get(index, []))
            for cidr in want:
                if cidr not in now:
                    iface = ipaddress.ip_interface(cidr)
                    kw = {"broadcast": broadcast(cidr)} if broadcast(cidr) else {}
                    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)
        except NetlinkError as exc:
            raise translate(exc, "addresses of %s" % name)
