# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``address`` kind - exactly the declared IPv4 and IPv6 addresses on each listed
interface: IPv4 ones with their subnet's broadcast, IPv6 ones with IFA_F_NODAD (usable at
once, no duplicate address detection). The kernel's own IPv6 addresses (link-local
fe80::/10, autoconfigured ones: :func:`~.._netns.kernel_made`) are neither compared nor
removed. It has no prune: an interface that is not listed keeps its addresses (a removed
link takes its addresses with it)."""

from __future__ import annotations

import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_SECONDARY, IFA_F_TENTATIVE, NetlinkError, NetnsError, address_change,
    address_records, conf_read, conf_write, ip_interface, translate,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind

#: Addresses topo never removes: (ifname, cidr).
KEEP_ADDRESSES = {("lo", "127.0.0.1/8"), ("lo", "::1/128")}

#: The ``interfaces`` option of topo.lab.address (``addresses`` in topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    addresses=dict(type="list", elements="str", default=[]),
))


def _extra(record):
    """What topo sets besides the address itself (``record``: an
    :func:`~.._netns.address_record`): an IPv4 address's broadcast (None when none), an IPv6
    address's duplicate address detection state (``nodad``, ``dadfailed``, ``tentative`` or
    ``done``)."""
    if record["family"] == socket.AF_INET:
        return record["broadcast"]
    flags = record["flags"]
    for flag, state in ((IFA_F_NODAD, "nodad"), (IFA_F_DADFAILED, "dadfailed"), (IFA_F_TENTATIVE, "tentative")):
        if flags & flag:
            return state
    return "done"


def _addresses(sock):
    """{ifindex: [(cidr, extra, secondary)]} of the IPv4 then IPv6 addresses topo compares
    seen by ``sock`` (a plain netlink socket, :meth:`~.._netns.Sockets.raw`), in kernel
    order (``extra``: :func:`_extra`)."""
    out = {}
    for index, cidr, record in address_records(sock):
        out.setdefault(index, []).append((cidr, _extra(record), bool(record["flags"] & IFA_F_SECONDARY)))
    return out


def broadcast(cidr):
    """The broadcast address of ``cidr``'s subnet (str), None for a /31 or /32 (and for IPv6,
    which has none)."""
    net = ip_interface(cidr).network
    return str(net.broadcast_address) if net.version == 4 and net.prefixlen < 31 else None


def wanted_extra(cidr):
    """:func:`_extra` as topo makes it: the subnet's broadcast for IPv4, ``nodad`` for IPv6."""
    return broadcast(cidr) if ip_interface(cidr).version == 4 else "nodad"


def canonical(cidr):
    """``cidr`` as the kernel prints it (IPv6 compressed, lower case). ValueError for a
    link-local IPv6 address: the kernel makes those, topo does not manage them."""
    iface = ip_interface(cidr)
    if iface.version == 6 and iface.ip.is_link_local:
        raise ValueError("%s is an IPv6 link-local address: the kernel makes one per interface; "
                         "declare global addresses only" % cidr)
    return str(iface)


def missing_from(want, have):
    """The addresses of ``want`` (a list) not in ``have`` (a set), in order."""
    return [c for c in want if c not in have]


def _fix_words(cidr):
    """(detail word, diff word) of a fixed :func:`_extra`."""
    return ("broadcast", "brd") if ip_interface(cidr).version == 4 else ("dad", "dad")


class Addresses(Kind):
    """Items: [{netns, ifname, addresses: ["a.b.c.d/len" | "2001:db8::1/64"]}]: every other
    IPv4 address and every other IPv6 address but the kernel's own (link-local,
    autoconfigured) on a listed interface is removed; a wrong broadcast, or an IPv6 address
    without IFA_F_NODAD (tentative, failed or passed DAD), is fixed (removed and added again).
    ``lo``'s 127.0.0.1/8 and ::1/128 are kept.

    Removing a subnet's primary IPv4 address makes the kernel drop its secondaries too
    (promote_secondaries is 0 in a new namespace). When a wanted secondary would go that
    way, promote_secondaries is set on that interface first, so it is promoted and kept.
    An interface whose IPv6 is disabled (``disable_ipv6``, as Docker leaves a container's
    interfaces) gets it enabled before an IPv6 address is added. NetnsError for a missing
    interface (outside check mode, where it is reported as getting all its addresses);
    ValueError for a declared link-local address.
    """

    resource = "address"

    @staticmethod
    def check(items):
        for item in items:
            for cidr in item["addresses"]:
                canonical(cidr)

    def converge(self, items, changes):
        ctx, check = self.ctx, self.ctx.check
        by_ns = {}
        for item in items:
            by_ns.setdefault(item["netns"], []).append(item)
        for ns in sorted(by_ns):
            exists = ctx.exists(ns)
            # a namespace this run created has no address but lo's (127.0.0.1/8, ::1/128)
            fresh = ns in ctx.created and all(item["ifname"] != "lo" for item in by_ns[ns])
            have_all = _addresses(ctx.socks.raw(ns)) if exists and not fresh else {}
            for item in by_ns[ns]:
                self._interface(changes, ns, exists, have_all, item, check)

    def _interface(self, changes, ns, exists, have_all, item, check):
        name = "%s/%s" % (ns, item["ifname"])
        want = [canonical(a) for a in item["addresses"]]
        link = self.ctx.tables.get(ns, item["ifname"]) if exists else None
        index = link["index"] if link else None
        if index is None and not check:
            raise NetnsError("interface %s does not exist" % name)
        have = have_all.get(index, [])
        dropped_subnets = set()
        removals = []
        for cidr, extra, secondary in have:
            if (item["ifname"], cidr) in KEEP_ADDRESSES:
                continue
            if cidr in want and extra == wanted_extra(cidr):
                continue
            removals.append(cidr)
            if not secondary:
                dropped_subnets.add(ip_interface(cidr).network)
            if cidr in want:
                word, short = _fix_words(cidr)
                changes.add("fix", name, "%s %s %s -> %s" % (cidr, word, extra, wanted_extra(cidr)),
                            before="%s %s %s" % (cidr, short, extra), after="%s %s %s" % (cidr, short, wanted_extra(cidr)))
            else:
                changes.add("remove", name, cidr, before=cidr)
        present = set(c for c, _, _ in have) - set(removals)
        keep_secondaries = any(sec and c in present and ip_interface(c).network in dropped_subnets
                               for c, _, sec in have)
        for cidr in want:
            if cidr not in present and cidr not in removals:
                changes.add("create", name, cidr, after=cidr)
        if check:
            v4 = [c for c, _, _ in have if ip_interface(c).version == 4]
            if v4 and all(c in removals for c in v4):
                # apply removes every IPv4 address before adding: the kernel flushes the
                # device's IPv4 routes then, and the route pass makes them again
                self.ctx.tables.lose_routes(ns, index, 4)
            return
        if not removals and not missing_from(want, present) and not keep_secondaries:
            return
        sock = self.ctx.socks.raw(ns)
        try:
            if keep_secondaries:
                conf_write(ns, item["ifname"], "promote_secondaries", 1)
            for cidr in removals:
                address_change(sock, "del", index, cidr)
            # removing a primary IPv4 address may take its secondaries: read back only then
            now = set(c for c, _, _ in _addresses(sock).get(index, [])) if removals else present
            missing = missing_from(want, now)
            if any(ip_interface(c).version == 6 for c in missing) and \
                    conf_read(ns, item["ifname"], "disable_ipv6", "ipv6") == "1":
                conf_write(ns, item["ifname"], "disable_ipv6", 0, "ipv6")
            for cidr in missing:
                address_change(sock, "add", index, cidr, broadcast=broadcast(cidr),
                               nodad=ip_interface(cidr).version == 6)
        except NetlinkError as exc:
            raise translate(exc, "addresses of %s" % name)
