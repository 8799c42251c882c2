# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``tunnel`` kind - VXLAN (over IPv4 or IPv6), GRE and gretap (over IPv4),
ip6gre and ip6gretap (over IPv6) devices, one per tunnel end.

Every attribute is compared. What the kernel fixes at creation (kind, local and remote
address, VNI, UDP ports, learning, GRE key, TTL: :func:`identity`) differs: the device is
removed and made again (a ``fix``, "recreated: ..."). MTU, bridge (master), up and the marker
are fixed in place (:func:`~.links.converge_end`). Bridges must exist before (the bridge pass
runs first).
"""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import GRE_KEY, GROUP, NetlinkError, NotOwned, ours, translate
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
    remote=dict(type="str", required=True),
    mtu=dict(type="int"),
    master=dict(type="str"),
    ttl=dict(type="int"),
    vni=dict(type="int"),
    dstport=dict(type="int", default=4789),
    srcport=dict(type="list", elements="int"),
    learning=dict(type="bool", default=True),
    key=dict(type="int"),
))
#: The ``features`` option: kernel features checked before anything is built.
FEATURES = dict(type="list", elements="str", default=[])


def underlay(t):
    """``(local, remote, version)`` of tunnel ``t``: its underlay addresses as the kernel
    prints them (IPv6 compressed) and their IP version. ValueError when they are not of one
    family, or of a family ``t``'s kind cannot carry (GRE over IPv6 is ``ip6gre``)."""
    local, remote = ipaddress.ip_address(t["local"]), ipaddress.ip_address(t["remote"])
    name = "%s %s/%s" % (t["kind"], t["netns"], t["ifname"])
    if local.version != remote.version:
        raise ValueError("%s: local %s is IPv%d but remote %s is IPv%d; use one underlay family"
                         % (name, local, local.version, remote, remote.version))
    if local.version not in UNDERLAY_VERSIONS[t["kind"]]:
        other = {"gre": "ip6gre", "gretap": "ip6gretap", "ip6gre": "gre", "ip6gretap": "gretap"}[t["kind"]]
        raise ValueError("%s: a %s tunnel cannot run over IPv%d (%s -> %s); use kind %s"
                         % (name, t["kind"], local.version, local, remote, other))
    return str(local), str(remote), local.version


def identity(t):
    """The attributes fixed at creation of tunnel ``t``, as a link summary names them: a
    device that differs in any is made anew. ValueError from :func:`underlay`."""
    local, remote, _ = underlay(t)
    ident = {"kind": t["kind"], "local": local, "remote": remote, "ttl": t.get("ttl") or 0}
    if t["kind"] == "vxlan":
        ident.update(vni=t["vni"], dstport=t.get("dstport") or 4789, learning=bool(t.get("learning", True)),
                     srcport=list(t.get("srcport") or [0, 0]))
    else:
        ident["key"] = t.get("key")
    return ident


def _create_tunnel(tables, lab, t):
    ipr = tables.socks.get(t["netns"])
    kw = {"ifname": t["ifname"], "kind": t["kind"], "mtu": t["mtu"], "group": GROUP}
    ttl = t.get("ttl") or 0
    local, remote, version = underlay(t)
    if t["kind"] == "vxlan":
        six = "6" if version == 6 else ""
        kw.update(vxlan_id=t["vni"], vxlan_port=t.get("dstport") or 4789, vxlan_ttl=ttl,
                  vxlan_learning=int(bool(t.get("learning", True))),
                  **{"vxlan_local" + six: local, "vxlan_group" + six: remote})
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
    ipr.link("add", **kw)
    tables.refresh(t["netns"], t["ifname"])
    fix_end(tables, t, lab)


class Tunnels(LinkKind):
    """Tunnel ends. Items: [{kind: vxlan|gre|gretap|ip6gre|ip6gretap, netns, ifname, local,
    remote (underlay addresses: IPv4 or IPv6 for vxlan, IPv4 for gre and gretap, IPv6 for
    ip6gre and ip6gretap), mtu: bytes (1500 when None), master, ttl, vni, dstport, srcport:
    [low, high], learning, key}]. A device under a declared name without the lab's marker is refused
    (NotOwned). The lab's undeclared tunnel devices in the scope are pruned first."""

    resource = "tunnel"
    link_kinds = TUNNEL_KINDS
    forget_all = False
    prune_first = True

    @staticmethod
    def check(items):
        for t in items:
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
                    diff = differences(have, want)
                    if not diff:
                        converge_end(changes, tables, t, have, lab, check)
                        continue
                    record_fix(changes, name, diff, "recreated: ")
                    if not check:
                        ctx.socks.get(t["netns"]).link("del", index=have["index"])
                        tables.forget(t["netns"])
                        _create_tunnel(tables, lab, t)
                    continue
                changes.add("create", name, "%s %s -> %s" % (t["kind"], t["local"], t["remote"]),
                            after=str(want))
                if not check:
                    _create_tunnel(tables, lab, t)
            except NetlinkError as exc:
                raise translate(exc, "%s %s" % (t["kind"], name), kind=t["kind"])

    def removal(self, link):
        return "%s no longer declared" % link["kind"], link["kind"]
