# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``tunnel`` kind - VXLAN (over IPv4 or IPv6), GRE and gretap (over IPv4),
ip6gre and ip6gretap (over IPv6) devices, one per tunnel end.

Every attribute is compared. What the kernel fixes at creation (kind, local and remote
address, VNI, UDP ports, learning, GRE key, TTL: :func:`identity`) differs: the device is
removed and made again (a ``fix``, "recreated: ..."). MTU, bridge (master), up and the marker
are fixed in place (:func:`~.links.converge_end`). Bridges must exist before (the bridge pass
runs first).

A multi-host lab's stitch devices (topo.expand.stitch) are VXLANs whose UDP socket lives in
the build host's namespace while the device lives in a node's: ``underlay_netns`` names the
namespace the device is made in (``"/"``: the one the module runs in, the build host's own;
a name: one under /run/netns), and one netlink request from there makes it directly in
``netns`` (IFLA_NET_NS_FD; the kernel keeps the socket in the requesting namespace, and the
device's IFLA_LINK_NETNSID names it). The underlay namespace is part of the identity: a
device whose socket is elsewhere is made again. ``fdb`` lists underlay addresses that get
an all-zero FDB entry each (head-end replication: a VXLAN with no ``remote`` floods
broadcast, multicast and unknown unicast to each); entries are added and removed in place.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    GRE_KEY, GROUP, NetlinkError, NotOwned, _home_fd, namespace_fd, ours, translate,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import LinkKind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import (
    converge_end, differences, fix_end, label, record_fix,
)

#: Link kinds this pass makes (and prunes).
TUNNEL_KINDS = ("vxlan", "gre", "gretap", "ip6gre", "ip6gretap")
#: The underlay family (IP version) each kind can use; VXLAN either.
UNDERLAY_VERSIONS = {"vxlan": (4, 6), "gre": (4,), "gretap": (4,), "ip6gre": (6,), "ip6gretap": (6,)}

#: The ``tunnels`` option of topo.lab.tunnel (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    kind=dict(type="str", required=True, choices=list(TUNNEL_KINDS)),
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    local=dict(type="str", required=True),
    remote=dict(type="str"),
    mtu=dict(type="int"),
    master=dict(type="str"),
    ttl=dict(type="int"),
    vni=dict(type="int"),
    dstport=dict(type="int", default=4789),
    srcport=dict(type="list", elements="int"),
    learning=dict(type="bool", default=True),
    key=dict(type="int"),
    underlay_netns=dict(type="str"),
    fdb=dict(type="list", elements="str", default=[]),
    mac=dict(type="str"),
))
#: ``underlay_netns`` of a device whose socket lives in the namespace the module runs in.
HOST_NETNS = "/"
#: The all-zero MAC of a head-end replication FDB entry (flood to that VTEP).
ZERO_MAC = "00:00:00:00:00:00"
#: The ``features`` option: kernel features checked before anything is built.
FEATURES = dict(type="list", elements="str", default=[])


def underlay_ns(t):
    """The namespace tunnel ``t`` is made in, or None when that is ``t["netns"]`` itself."""
    ns = t.get("underlay_netns")
    return None if ns in (None, "", t["netns"]) else ns


def underlay(t):
    """``(local, remote, version)`` of tunnel ``t``: its underlay addresses as the kernel
    prints them (IPv6 compressed; remote None for a VXLAN flooding by ``fdb``) and their IP
    version. ValueError when they are not of one family, or of a family ``t``'s kind cannot
    carry (GRE over IPv6 is ``ip6gre``)."""
    local = ipaddress.ip_address(t["local"])
    remote = ipaddress.ip_address(t["remote"]) if t.get("remote") else None
    name = "%s %s/%s" % (t["kind"], t["netns"], t["ifname"])
    if remote is not None and local.version != remote.version:
        raise ValueError("%s: local %s is IPv%d but remote %s is IPv%d; use one underlay family"
                         % (name, local, local.version, remote, remote.version))
    if local.version not in UNDERLAY_VERSIONS[t["kind"]]:
        other = {"gre": "ip6gre", "gretap": "ip6gretap", "ip6gre": "gre", "ip6gretap": "gretap"}[t["kind"]]
        raise ValueError("%s: a %s tunnel cannot run over IPv%d (%s -> %s); use kind %s"
                         % (name, t["kind"], local.version, local, remote or "-", other))
    return str(local), None if remote is None else str(remote), local.version


def identity(t):
    """The attributes fixed at creation of tunnel ``t``, as a link summary names them: a
    device that differs in any is made anew (``underlay``: see :func:`underlay_ns`).
    ValueError from :func:`underlay`."""
    local, remote, _ = underlay(t)
    ident = {"kind": t["kind"], "local": local, "remote": remote, "ttl": t.get("ttl") or 0,
             "underlay": underlay_ns(t)}
    if t["kind"] == "vxlan":
        ident.update(vni=t["vni"], dstport=t.get("dstport") or 4789, learning=bool(t.get("learning", True)),
                     srcport=list(t.get("srcport") or [0, 0]))
    else:
        ident["key"] = t.get("key")
    return ident


def _open_ns(ns):
    """An fd of namespace ``ns`` (:data:`HOST_NETNS`: the module's own; caller closes)."""
    return os.dup(_home_fd()) if ns == HOST_NETNS else namespace_fd(ns)


def seen_underlay(tables, t, have):
    """Where the socket of the existing device ``have`` of ``t`` lives, as :func:`identity`
    names it: None (its own namespace), ``t``'s underlay_netns when the device's
    IFLA_LINK_NETNSID is that namespace's id, else ``netnsid N``."""
    nsid = have.get("peer_netnsid")
    if nsid is None:
        return None
    want = underlay_ns(t)
    if want is not None:
        fd = _open_ns(want)
        try:
            if tables.socks.get(t["netns"]).get_netnsid(fd=fd).get("nsid") == nsid:
                return want
        finally:
            os.close(fd)
    return "netnsid %d" % nsid


def wanted_fdb(t):
    """Sorted ``fdb`` of ``t`` without its ``remote`` (the kernel's own default entry)."""
    return sorted(set(t.get("fdb") or []) - {t.get("remote")})


def fdb_of(tables, t, have):
    """Sorted underlay addresses of the all-zero FDB entries of the existing device ``have``,
    but its remote's (the kernel makes that one with the device)."""
    found = tables.socks.get(t["netns"]).fdb("dump", ifindex=have["index"])
    return sorted(set(m.get_attr("NDA_DST") for m in found
                      if m["ifindex"] == have["index"] and m.get_attr("NDA_LLADDR") == ZERO_MAC
                      and m.get_attr("NDA_DST")) - {have.get("remote")})


def set_fdb(tables, t, index, have, want):
    """Add the all-zero FDB entries of ``want`` missing from ``have`` and remove the others."""
    ipr = tables.socks.get(t["netns"])
    for dst in sorted(set(have) - set(want)):
        ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=dst)
    for dst in sorted(set(want) - set(have)):
        ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=dst)


def _create_tunnel(tables, lab, t):
    under = underlay_ns(t)
    kw = {"ifname": t["ifname"], "kind": t["kind"], "mtu": t["mtu"], "group": GROUP}
    ttl = t.get("ttl") or 0
    local, remote, version = underlay(t)
    if t["kind"] == "vxlan":
        six = "6" if version == 6 else ""
        kw.update(vxlan_id=t["vni"], vxlan_port=t.get("dstport") or 4789, vxlan_ttl=ttl,
                  vxlan_learning=int(bool(t.get("learning", True))), **{"vxlan_local" + six: local})
        if remote:
            kw["vxlan_group" + six] = remote
        if t.get("srcport"):
            kw["vxlan_port_range"] = {"low": t["srcport"][0], "high": t["srcport"][1]}
    else:
        # ip6gre and ip6gretap take gre's attributes under pyroute2's ip6gre_ names, whose
        # flags pyroute2 encodes in host byte order (gre's in network order)
        prefix, flags = ("ip6gre_", socket.htons(GRE_KEY)) if version == 6 else ("gre_", GRE_KEY)
        kw.update({prefix + "local": local, prefix + "remote": remote, prefix + "ttl": ttl})
        if t.get("key") is not None:
            kw.update({prefix + "iflags": flags, prefix + "oflags": flags, prefix + "ikey": t["key"],
                       prefix + "okey": t["key"]})
    if under is None:
        tables.socks.get(t["netns"]).link("add", **kw)
    else:
        fd = namespace_fd(t["netns"])
        try:
            tables.socks.get(None if under == HOST_NETNS else under).link("add", net_ns_fd=fd, **kw)
        finally:
            os.close(fd)
    have = tables.refresh(t["netns"], t["ifname"])
    fix_end(tables, t, lab)
    if wanted_fdb(t):
        set_fdb(tables, t, have["index"], [], wanted_fdb(t))


class Tunnels(LinkKind):
    """Tunnel ends. Items: [{kind: vxlan|gre|gretap|ip6gre|ip6gretap, netns, ifname, local,
    remote (underlay addresses: IPv4 or IPv6 for vxlan, IPv4 for gre and gretap, IPv6 for
    ip6gre and ip6gretap; remote may be None for a VXLAN flooding by ``fdb``), mtu: bytes
    (1500 when None), master, ttl, vni, dstport, srcport: [low, high], learning, key,
    underlay_netns, fdb (underlay addresses), mac}]. A device under a declared name without
    the lab's marker is refused (NotOwned). The lab's undeclared tunnel devices in the scope
    are pruned first."""

    resource = "tunnel"
    link_kinds = TUNNEL_KINDS
    forget_all = False
    prune_first = True

    @staticmethod
    def check(items):
        for t in items:
            if t["kind"] != "vxlan" and not t.get("remote"):
                raise ValueError("%s: a %s tunnel needs a remote address" % (label(t), t["kind"]))
            if t.get("fdb") and t["kind"] != "vxlan":
                raise ValueError("%s: fdb entries are for vxlan tunnels" % label(t))
            underlay(t)

    def declare(self, items):
        return set((t["netns"], t["ifname"]) for t in items)

    def converge(self, items, changes):
        ctx, lab, check, tables = self.ctx, self.ctx.lab, self.ctx.check, self.ctx.tables
        for t in items:
            name = label(t)
            t = dict(t, mtu=t.get("mtu") or 1500)
            try:
                have = tables.get(t["netns"], t["ifname"])
                if have is not None and not ours(have, lab):
                    raise NotOwned("%s exists (a %s) but was not made by topo for lab %s; remove or rename it"
                                   % (name, have["kind"] or "device", lab))
                want = identity(t)
                if have is not None:
                    diff = differences(dict(have, underlay=seen_underlay(tables, t, have)), want)
                    if not diff:
                        fdb = {}
                        if t["kind"] == "vxlan":
                            fdb_have, fdb_want = fdb_of(tables, t, have), wanted_fdb(t)
                            fdb = {"fdb": (fdb_have, fdb_want)} if fdb_have != fdb_want else {}
                        converge_end(changes, tables, t, have, lab, check, extra=fdb)
                        if fdb and not check:
                            set_fdb(tables, t, have["index"], *fdb["fdb"])
                        continue
                    record_fix(changes, name, diff, "recreated: ")
                    ctx.gone(t["netns"], t["ifname"])
                    if not check:
                        ctx.socks.get(t["netns"]).link("del", index=have["index"])
                        tables.forget(t["netns"])
                        _create_tunnel(tables, lab, t)
                    continue
                changes.add("create", name, "%s %s -> %s%s" % (
                    t["kind"], t["local"], t.get("remote") or ", ".join(t.get("fdb") or []) or "none",
                    " (socket in %s)" % underlay_ns(t) if underlay_ns(t) else ""),
                            after=str(want))
                if not check:
                    _create_tunnel(tables, lab, t)
            except NetlinkError as exc:
                raise translate(exc, "%s %s" % (t["kind"], name), kind=t["kind"])

    def removal(self, link):
        return "%s no longer declared" % link["kind"], link["kind"]
