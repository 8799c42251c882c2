# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``tunnel`` kind - VXLAN, GRE and gretap devices, one per tunnel end.

Every attribute is compared. What the kernel fixes at creation (kind, local and remote
address, VNI, UDP ports, learning, GRE key, TTL: :func:`identity`) differs: the device is
removed and made again (a ``fix``, "recreated: ..."). MTU, bridge (master), up and the marker
are fixed in place (:func:`~.links.converge_end`). Bridges must exist before (the bridge pass
runs first).
"""

from __future__ import annotations

from ansible_collections.topo.lab.plugins.module_utils._netns import GRE_KEY, GROUP, NetlinkError, NotOwned, ours, translate
from ansible_collections.topo.lab.plugins.module_utils._resources import LinkKind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import (
    converge_end, differences, fix_end, label, record_fix,
)

#: Link kinds this pass makes (and prunes).
TUNNEL_KINDS = ("vxlan", "gre", "gretap")

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


def identity(t):
    """The attributes fixed at creation of tunnel ``t``, as a link summary names them: a
    device that differs in any is made anew."""
    ident = {"kind": t["kind"], "local": t["local"], "remote": t["remote"], "ttl": t.get("ttl") or 0}
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
    if t["kind"] == "vxlan":
        kw.update(vxlan_id=t["vni"], vxlan_local=t["local"], vxlan_group=t["remote"],
                  vxlan_port=t.get("dstport") or 4789, vxlan_learning=int(bool(t.get("learning", True))),
                  vxlan_ttl=ttl)
        if t.get("srcport"):
            kw["vxlan_port_range"] = {"low": t["srcport"][0], "high": t["srcport"][1]}
    else:
        kw.update(gre_local=t["local"], gre_remote=t["remote"], gre_ttl=ttl)
        if t.get("key") is not None:
            kw.update(gre_iflags=GRE_KEY, gre_oflags=GRE_KEY, gre_ikey=t["key"], gre_okey=t["key"])
    ipr.link("add", **kw)
    tables.refresh(t["netns"], t["ifname"])
    fix_end(tables, t, lab)


class Tunnels(LinkKind):
    """Tunnel ends. Items: [{kind: vxlan|gre|gretap, netns, ifname, local, remote (underlay
    IPv4), mtu: bytes (1500 when None), master, ttl, vni, dstport, srcport: [low, high],
    learning, key}]. A device under a declared name without the lab's marker is refused
    (NotOwned). The lab's undeclared tunnel devices in the scope are pruned first."""

    resource = "tunnel"
    link_kinds = TUNNEL_KINDS
    forget_all = False
    prune_first = True

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
