# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``route`` kind - static IPv4 and IPv6 routes in the main table, marked as
topo's by their rtnetlink protocol number :data:`~.._netns.ROUTE_PROTO` (116), both families
the same way."""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    ROUTE_PROTO, NetlinkError, NetnsError, NotOwned, translate,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind

MAIN_TABLE = 254
#: The families of routes topo reads and makes, with the unspecified address that names a
#: default route's destination (the kernel sends none).
FAMILIES = ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"))

#: The ``routes`` option of topo.lab.route (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    routes=dict(type="list", elements="dict", default=[], options=dict(
        dst=dict(type="str", required=True),
        gateway=dict(type="str", required=True),
    )),
))


class Routes(Kind):
    """Exactly the declared routes (protocol 116) in each namespace of the items.

    Items: [{netns, routes: [{dst: prefix, gateway: address}]}], IPv4 or IPv6 (``::/0`` the
    IPv6 default route); a route's dst and gateway are of one family (ValueError otherwise),
    an IPv6 next hop a global address on a connected subnet, as an IPv4 one. A route to a declared
    destination that exists with another protocol was not made by topo and is refused
    (NotOwned), never replaced; a topo route with another gateway is replaced in place.
    Prune removes the topo routes that are not declared in the namespaces of the items and
    of the scope (after the declared ones are converged); routes of any other protocol are
    never touched. NetnsError for a missing namespace with routes (outside check mode,
    where it is reported as getting all of them).
    """

    resource = "route"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.wanted = {}
        self.tables = {}

    @staticmethod
    def check(items):
        for item in items:
            for r in item["routes"]:
                dst, gw = ipaddress.ip_network(r["dst"]), ipaddress.ip_address(r["gateway"])
                if dst.version != gw.version:
                    raise ValueError("route %s via %s in %s: the destination is IPv%d, the gateway IPv%d; "
                                     "use a gateway of the same family" % (r["dst"], r["gateway"], item["netns"],
                                                                          dst.version, gw.version))

    def declare(self, items):
        for item in items:
            table = self.wanted.setdefault(item["netns"], {})
            for r in item["routes"]:
                table[str(ipaddress.ip_network(r["dst"]))] = str(ipaddress.ip_address(r["gateway"]))
        return set((ns, dst) for ns, table in self.wanted.items() for dst in table)

    def read(self, ns):
        """({dst: (gateway, proto)} of topo's routes, the same of the others) in ``ns``'s main
        table, IPv4 and IPv6, read once; both empty for a namespace that does not exist (yet).
        The kernel's own IPv6 routes there (connected prefixes, fe80::/64) count as others.
        In check mode, routes through a device the earlier passes would delete or strip of
        its IPv4 addresses (:meth:`~.links.Tables.routes_lost`) count as gone, as in apply."""
        if ns not in self.tables:
            ours, foreign = {}, {}
            if self.ctx.exists(ns):
                ipr = self.ctx.socks.get(ns)
                for family, unspecified in FAMILIES:
                    for msg in ipr.get_routes(family=family, table=MAIN_TABLE):
                        if self.ctx.check and self.ctx.tables.routes_lost(
                                ns, msg.get_attr("RTA_OIF"), 4 if family == socket.AF_INET else 6):
                            continue
                        dst = str(ipaddress.ip_network("%s/%d" % (msg.get_attr("RTA_DST") or unspecified,
                                                                  msg["dst_len"]), strict=False))
                        (ours if msg["proto"] == ROUTE_PROTO else foreign)[dst] = (msg.get_attr("RTA_GATEWAY"),
                                                                                   msg["proto"])
            self.tables[ns] = ours, foreign
        return self.tables[ns]

    def converge(self, items, changes):
        ctx, check = self.ctx, self.ctx.check
        for ns in sorted(self.wanted):
            want = self.wanted[ns]
            if want and not check and not ctx.exists(ns):
                raise NetnsError("namespace %s does not exist" % ns)
            ours, foreign = self.read(ns)
            for dst in sorted(want):
                if dst in foreign:
                    raise NotOwned("route %s in %s exists (protocol %s) but was not made by topo; remove it "
                                   "or the declared route" % (dst, ns, foreign[dst][1]))
            for dst in sorted(want):
                gw, old = want[dst], ours.get(dst, (None, None))[0]
                if old == gw:
                    continue
                action = "fix" if dst in ours else "create"
                changes.add(action, "%s %s" % (ns, dst),
                            "via %s" % gw if action == "create" else "via %s -> %s" % (old, gw),
                            before=("via %s" % old) if dst in ours else None, after="via %s" % gw)
                if not check:
                    try:
                        ctx.socks.get(ns).route("replace", dst=dst, gateway=gw, proto=ROUTE_PROTO)
                    except NetlinkError as exc:
                        raise translate(exc, "route %s via %s in %s" % (dst, gw, ns))

    def owned(self, scope):
        for ns in sorted(set(self.wanted) | set(scope)):
            ours = self.read(ns)[0]
            for dst in sorted(ours):
                yield (ns, dst), "%s %s" % (ns, dst), ours[dst][0]

    def removal(self, gateway):
        return "via %s" % gateway, "via %s" % gateway

    def remove(self, key, gateway):
        ns, dst = key
        try:
            self.ctx.socks.get(ns).route("del", dst=dst, gateway=gateway, proto=ROUTE_PROTO)
        except NetlinkError as exc:
            raise translate(exc, "remove route %s in %s" % (dst, ns))
