"""Phase "tunnels": one device per tunnel end (VXLAN, GRE, gretap).

An end plugged into a bridge (``bridge:``) joins that bridge's segment; a tunnel with no
bridged end is a point-to-point segment of its own, ``<a>.<ifname>--<b>.<ifname>``. An
undeclared end name is :func:`tunnel_ifname`. A tunnel whose other end is outside the lab
has one end; its point-to-point segment is ``<a>.<ifname>--<remote address>``, with one
member. Where each end leaves from is the underlay phase's (:mod:`topo.expand.underlay`),
its MTU the MTU phase's (:mod:`topo.expand.mtu`).
"""

from __future__ import annotations

import ipaddress

from topo.expand.segments import new_end, set_subnets
from topo.expand.state import Expansion, Segment
from topo.model import Tunnel


def tunnel_ifname(tunnel: Tunnel, used) -> str:
    """Default name of a tunnel end, free in ``used`` (the node's interface names):
    vxlan<VNI>, else vx<n> / gre<n> / gtap<n> from 1 (gre0 and gretap0 are the kernel's
    fallback devices in every namespace once ip_gre is loaded; ip6gre0 once ip6_gre is)."""
    if tunnel.type == "vxlan" and f"vxlan{tunnel.vni}" not in used:
        return f"vxlan{tunnel.vni}"
    stem = {"vxlan": "vx", "gre": "gre", "gretap": "gtap"}[tunnel.type]
    n = 1
    while f"{stem}{n}" in used:
        n += 1
    return f"{stem}{n}"


def tunnels(x: Expansion) -> None:
    """Fill ``x.tunnel_ends`` (``[[End, End]]`` per tunnel; ``[End]`` for a tunnel whose
    other end is outside the lab: its ``peer`` None, its ``remote`` the outside address),
    add the ends to ``x.ifaces`` and to their segments (bridged ends are bridge ports, not
    segment members)."""
    lab = x.lab
    for t, tunnel in enumerate(lab.tunnels):
        ends = []
        declared = tunnel.declared_locals()
        for j, ep in enumerate(tunnel.endpoints):
            used = x.used_ifnames[ep.node]
            ifname = ep.ifname or tunnel_ifname(tunnel, used)
            used.setdefault(ifname, ("tunnels", t, "endpoints", j))
            ends.append(new_end(ep.node, ifname, ep.address, ("tunnels", t, "endpoints", j), mac=None,
                                bridge=ep.bridge, local=declared[j], kind=tunnel.type, impair=tunnel.impair))
        if tunnel.outside:  # the other end is outside the lab: no peer in it
            a, = ends
            a["peer"], a["remote"] = None, str(ipaddress.ip_address(tunnel.endpoints[0].remote))
            far = a["remote"]
        else:
            a, b = ends
            a["peer"], b["peer"] = f"{b['node']}:{b['ifname']}", f"{a['node']}:{a['ifname']}"
            far = f"{b['node']}.{b['ifname']}"
        bridged = [e for e in ends if e["bridge"]]
        if bridged:
            seg = x.segments[x.seg_of_bridge[bridged[0]["bridge"]]]
        else:
            name = f"{a['node']}.{a['ifname']}--{far}"
            seg = x.segments[name] = Segment(name, "p2p", ("tunnels", t))
            set_subnets(seg, tunnel.subnet, ("tunnels", t, "subnet"))
        seg.tunnels.add(t)
        for end in ends:
            end["segment"], end["mtu"] = seg.name, tunnel.mtu
            if not end["bridge"]:
                seg.members.append(end)
            x.ifaces[end["node"]].append(end)
        x.tunnel_ends.append(ends)
