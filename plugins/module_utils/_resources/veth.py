# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``veth`` kind - veth pairs across namespaces, each checked end to end (peer
and namespace), every attribute of both ends compared (:func:`~.links.converge_end`)."""

from __future__ import annotations

import os

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    GROUP, NetlinkError, NetnsError, NotOwned, if_marker, link_set, namespace_fd, ours, translate, veth_add,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import LinkKind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import (
    Peers, converge_end, fix_end, label,
)

_END = dict(
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    mtu=dict(type="int", default=1500),
    mac=dict(type="str"),
    master=dict(type="str"),
)
#: The ``veths`` option of topo.lab.veth (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    a=dict(type="dict", required=True, options=_END),
    b=dict(type="dict", required=True, options=_END),
))


def _paired(peers, a, b, ha, hb):
    """True when the two existing ends are veths and each other's peer, namespaces included.

    An ifindex alone proves nothing (every fresh namespace numbers its first device 2), so
    each end's IFLA_LINK_NETNSID must name the other end's namespace, or be absent when
    both ends share one.
    """
    if ha is None or hb is None or ha["kind"] != "veth" or hb["kind"] != "veth":
        return False
    if ha["peer"] != hb["index"] or hb["peer"] != ha["index"]:
        return False
    if a["netns"] == b["netns"]:
        return ha["peer_netnsid"] is None and hb["peer_netnsid"] is None
    return (ha["peer_netnsid"] is not None
            and ha["peer_netnsid"] == peers.nsid(a["netns"], b["netns"])
            and hb["peer_netnsid"] == peers.nsid(b["netns"], a["netns"]))


def _create_pair(tables, lab, pair):
    """Make a pair in one message: the end with a master (the bridge port) is created in its
    namespace with MTU, MAC, master and up; its peer goes straight into the other namespace
    with MTU and MAC. Then two sets: the alias of both, and up for the peer."""
    a, b = pair["a"], pair["b"]
    first, second = (b, a) if b.get("master") and not a.get("master") else (a, b)
    socks = tables.socks
    kw = {"ifname": first["ifname"], "mtu": first["mtu"], "group": GROUP}
    if first.get("mac"):
        kw["address"] = first["mac"]
    if first.get("master"):
        br = tables.get(first["netns"], first["master"])
        if br is None:
            raise NetnsError("bridge %s for %s does not exist" % (first["master"], label(first)))
        kw["master"] = br["index"]
    peer = {"ifname": second["ifname"], "mtu": second["mtu"], "group": GROUP}
    if second.get("mac"):
        peer["address"] = second["mac"]
    fd = None
    if second["netns"] != first["netns"]:
        fd = namespace_fd(second["netns"])
        peer["net_ns_fd"] = fd
    try:
        veth_add(socks.raw(first["netns"]), kw, peer)
    finally:
        if fd is not None:
            os.close(fd)
    link_set(socks.raw(first["netns"]), first["ifname"], alias=if_marker(lab))
    link_set(socks.raw(second["netns"]), second["ifname"], alias=if_marker(lab), up=True)
    if second.get("master"):
        tables.refresh(second["netns"], second["ifname"])
        fix_end(tables, second, lab)


class Veths(LinkKind):
    """veth pairs. Items: [{a: end, b: end}], an end {netns, ifname, mtu: bytes, mac, master:
    bridge name}. A pair that is not whole (both ends, veths, each other's peer) is made
    again, after removing what exists of it (the lab's; anything else is refused,
    NotOwned). The lab's undeclared veths in the scope are pruned first (removing one end
    removes its peer), so a pair made anew may reuse their names."""

    resource = "veth"
    link_kinds = ("veth",)
    prune_first = True

    def declare(self, items):
        return set((end["netns"], end["ifname"]) for pair in items for end in (pair["a"], pair["b"]))

    def converge(self, items, changes):
        ctx, lab, check, tables = self.ctx, self.ctx.lab, self.ctx.check, self.ctx.tables
        peers = Peers(ctx.socks)
        for pair in items:
            a, b = pair["a"], pair["b"]
            name = "%s <-> %s" % (label(a), label(b))
            try:
                ha, hb = tables.get(a["netns"], a["ifname"]), tables.get(b["netns"], b["ifname"])
                if _paired(peers, a, b, ha, hb):
                    for end, have in ((a, ha), (b, hb)):
                        converge_end(changes, tables, end, have, lab, check)
                    continue
                found = []
                for end, have in ((a, ha), (b, hb)):
                    if have is None:
                        continue
                    if not ours(have, lab):
                        raise NotOwned("%s exists (a %s) but was not made by topo for lab %s; remove or "
                                       "rename it" % (label(end), have["kind"] or "device", lab))
                    found.append(label(end))
                    ctx.gone(end["netns"], end["ifname"])
                    if not check:
                        ctx.socks.get(end["netns"]).link("del", index=have["index"])
                        tables.invalidate()
                changes.add("create", name, "replaces %s" % ", ".join(found) if found else "",
                            after="mtu=%s" % a["mtu"])
                if not check:
                    _create_pair(tables, lab, pair)
                    tables.refresh(a["netns"], a["ifname"])
                    tables.refresh(b["netns"], b["ifname"])
            except NetlinkError as exc:
                raise translate(exc, "veth %s" % name, kind="veth")
