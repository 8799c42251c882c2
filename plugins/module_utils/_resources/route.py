# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``route`` kind - static IPv4 and IPv6 routes in the main table, through a
next hop (``gateway``), an output device (``dev``) or both, marked as topo's by their
rtnetlink protocol number :data:`~.._netns.ROUTE_PROTO` (116), both families the same way."""

from __future__ import annotations

import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    ROUTE_PROTO, NetlinkError, NetnsError, NotOwned, ip_address, ip_network, route_dump, route_replace, translate,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind

MAIN_TABLE = 254
#: rtnetlink scope of an IPv4 route without a next hop (iproute2's ``scope link``, which
#: ``ip route add PREFIX dev DEV`` sets); every other route is scope universe (0).
SCOPE_LINK = 253
#: The scope that matches any in a route deletion (RT_SCOPE_NOWHERE).
SCOPE_NOWHERE = 255
#: The families of routes topo reads and makes, with the unspecified address that names a
#: default route's destination (the kernel sends none).
FAMILIES = ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"))

#: The ``routes`` option of topo.lab.route (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    routes=dict(type="list", elements="dict", default=[], options=dict(
        dst=dict(type="str", required=True),
        gateway=dict(type="str"),
        dev=dict(type="str"),
    )),
))


class Routes(Kind):
    """Exactly the declared routes (protocol 116) in each namespace of the items.

    Items: [{netns, routes: [{dst: prefix, gateway: address, dev: interface}]}], IPv4 or IPv6
    (``::/0`` the IPv6 default route); each route has a gateway, a dev or both (ValueError
    otherwise); a route's dst and gateway are of one family (ValueError otherwise), an IPv6
    next hop a global address on a connected subnet, as an IPv4 one. A route with a dev
    leaves through that interface of the namespace (compared by the route's output
    interface; NetnsError when the namespace has no such interface); one without takes the
    kernel's choice for its gateway (the output interface is then not compared). A route to a declared
    destination that exists with another protocol was not made by topo and is refused
    (NotOwned), never replaced; a topo route with another gateway or dev is replaced in place.
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
                if not r.get("gateway") and not r.get("dev"):
                    raise ValueError("route %s in %s: give a gateway, a dev or both" % (r["dst"], item["netns"]))
                if not r.get("gateway"):
                    ip_network(r["dst"])
                    continue
                dst, gw = ip_network(r["dst"]), ip_address(r["gateway"])
                if dst.version != gw.version:
                    raise ValueError("route %s via %s in %s: the destination is IPv%d, the gateway IPv%d; "
                                     "use a gateway of the same family" % (r["dst"], r["gateway"], item["netns"],
                                                                          dst.version, gw.version))

    def declare(self, items):
        for item in items:
            table = self.wanted.setdefault(item["netns"], {})
            for r in item["routes"]:
                gw = str(ip_address(r["gateway"])) if r.get("gateway") else None
                table[str(ip_network(r["dst"]))] = (gw, r.get("dev") or None)
        return set((ns, dst) for ns, table in self.wanted.items() for dst in table)

    def read(self, ns):
        """({dst: ((gateway, dev), proto)} of topo's routes, the same of the others) in ``ns``'s
        main table, IPv4 and IPv6, read once (gateway None for a route without one, dev the
        output interface's name); both empty for a namespace that does not exist (yet).
        The kernel's own IPv6 routes there (connected prefixes, fe80::/64) count as others.
        In check mode, routes through a device the earlier passes would delete or strip of
        its IPv4 addresses (:meth:`~.links.Tables.routes_lost`) count as gone, as in apply.

        Only a namespace with declared routes needs the others (a declared destination
        held by another protocol is refused): elsewhere the kernel is asked for topo's
        routes alone (:func:`~.._netns.route_dump`), and a namespace this run created
        (:attr:`~.Context.created`) is not read at all - it holds no route of topo's but
        those this pass made, all declared."""
        if ns not in self.tables:
            ours, foreign = {}, {}
            if self.wanted.get(ns) and self.ctx.exists(ns):
                msgs = route_dump(self.ctx.socks.raw(ns), MAIN_TABLE)
            elif ns not in self.ctx.created and self.ctx.exists(ns):
                msgs = route_dump(self.ctx.socks.raw(ns), MAIN_TABLE, ROUTE_PROTO)
            else:
                msgs = []
            names = self.ifnames(ns) if msgs else {}
            for msg in msgs:
                self._add(ns, msg, names, ours, foreign)
            self.tables[ns] = ours, foreign
        return self.tables[ns]

    def _add(self, ns, msg, names, ours, foreign):
        """File one route ``msg`` (a :func:`~.._netns.route_record`) of ``ns`` under ``ours`` or ``foreign`` (see :meth:`read`);
        ``names``: :meth:`ifnames` of ``ns``."""
        family = msg["family"]
        if self.ctx.check and self.ctx.tables.routes_lost(ns, msg["oif"], 4 if family == socket.AF_INET else 6):
            return
        unspecified = dict(FAMILIES)[family]
        dst = str(ip_network("%s/%d" % (msg["dst"] or unspecified, msg["dst_len"]), strict=False))
        via = (msg["gateway"], names.get(msg["oif"]))
        (ours if msg["proto"] == ROUTE_PROTO else foreign)[dst] = (via, msg["proto"])

    def ifnames(self, ns):
        """{ifindex: name} of the interfaces in ``ns``, from the run's link table (read once
        per namespace for every pass, :class:`~.links.Tables`)."""
        return {link["index"]: name for name, link in self.ctx.tables.links(ns).items()}

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
                (gw, dev), old = want[dst], ours.get(dst, ((None, None), None))[0]
                if old == (gw, dev) or (dev is None and gw is not None and old[0] == gw):
                    continue
                after = describe((gw, dev))
                action = "fix" if dst in ours else "create"
                before = describe(old if dev else (old[0], None)) if dst in ours else None
                change = after if action == "create" else "%s -> %s" % (
                    before, gw if not dev and old[0] is not None else after)  # "via A -> B" for a new gateway
                changes.add(action, "%s %s" % (ns, dst), change, before=before, after=after)
                if not check:
                    self.make(ns, dst, gw, dev)

    def make(self, ns, dst, gw, dev):
        """Create or replace the route ``dst`` (via ``gw`` and/or dev ``dev``) in ``ns``."""
        where = "route %s %s in %s" % (dst, describe((gw, dev)), ns)
        oif, scope = None, 0
        if dev:
            link = self.ctx.tables.get(ns, dev)  # the run's link table, current after every pass
            if link is None:
                raise NetnsError("%s: %s has no interface %s (it has %s)" % (
                    where, ns, dev, ", ".join(sorted(self.ifnames(ns).values()))))
            oif = link["index"]
            if not gw and ":" not in dst:
                scope = SCOPE_LINK
        try:
            route_replace(self.ctx.socks.raw(ns), dst, MAIN_TABLE, ROUTE_PROTO, gateway=gw, oif=oif, scope=scope)
        except NetlinkError as exc:
            raise translate(exc, where)

    def owned(self, scope):
        for ns in sorted(set(self.wanted) | set(scope)):
            ours = self.read(ns)[0]
            for dst in sorted(ours):
                yield (ns, dst), "%s %s" % (ns, dst), ours[dst][0]

    def removal(self, via):
        text = describe((via[0], None) if via[0] else via)
        return text, text

    def remove(self, key, via):
        ns, dst = key
        spec = dict(dst=dst, proto=ROUTE_PROTO)
        if via[0]:
            spec["gateway"] = via[0]
        if ":" not in dst:
            # any scope, as ``ip route del`` asks: an IPv4 route without a gateway is scope link
            spec["scope"] = SCOPE_NOWHERE
        try:
            self.ctx.socks.get(ns).route("del", **spec)
        except NetlinkError as exc:
            raise translate(exc, "remove route %s in %s" % (dst, ns))


def describe(via):
    """``via GW``, ``dev DEV`` or ``via GW dev DEV`` of a route's ``(gateway, dev)``: a
    read route always has a dev, so callers pass ``(gateway, None)`` where the dev is not
    compared."""
    gw, dev = via
    return " ".join(part for part in ("via %s" % gw if gw else "", "dev %s" % dev if dev else "") if part)
