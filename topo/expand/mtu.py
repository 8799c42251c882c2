"""Phase "MTU": the MTU of every tunnel end that does not declare one.

A tunnel's MTU is the smallest egress MTU on the routed underlay path between its two
ends, both ways, minus the encapsulation's :data:`OVERHEAD` (bytes; :data:`OVERHEAD6`
over an IPv6 underlay). A tunnel whose other end is outside the lab knows only its own
side: the smallest egress MTU from its node towards ``remote`` until the path leaves the
lab (an on-link remote: the interface on that subnet; else the lab's routes, up to the
first next hop no node holds).
"""

from __future__ import annotations

import netaddr

from topo.expand.routing import L3_TUNNELS
from topo.expand.state import Expansion

#: Bytes each tunnel type adds to a packet (outer IPv4 20 + ...): VXLAN UDP 8 + VXLAN 8 +
#: inner Ethernet 14; GRE 4; gretap GRE 4 + inner Ethernet 14. A GRE key adds 4 (RFC 2890).
OVERHEAD = {"vxlan": 50, "gre": 24, "gretap": 38}
#: The same over an IPv6 underlay (outer IPv6 40 instead of 20): VXLAN 70; ip6gre 52 and
#: ip6gretap 66: outer IPv6 40 + GRE 4 + the 8-byte destination-options header carrying
#: the tunnel encapsulation limit (RFC 2473 4.1.1) that Linux's ip6gre adds by default, +
#: inner Ethernet 14 for ip6gretap; measured in the kernel lane (tests/modules/test_tunnel.py).
OVERHEAD6 = {"vxlan": 70, "ip6gre": 52, "ip6gretap": 66}


def tunnel_mtus(x: Expansion) -> None:
    """Set each tunnel end's MTU (unless declared): the smallest egress MTU on the routed
    path between the two underlay addresses, both ways, minus :data:`OVERHEAD`. A tunnel
    whose path rides another tunnel waits for that one's MTU. A bridged end whose MTU is
    below a frame size the segment's other members may send is an error (the bridge would
    drop those frames silently)."""
    lab, tunnel_ends, ifaces, routes, loopbacks, segments = (x.lab, x.tunnel_ends, x.ifaces, x.routes,
                                                             x.loopbacks, x.segments)
    def nets(i):
        """The interface's addresses (IPNetwork), IPv4 then IPv6."""
        return [netaddr.IPNetwork(i[k]) for k in ("address", "address6") if i.get(k)]

    owner = {}
    for node, items in ifaces.items():
        for i in items:
            for net in nets(i):
                owner[net.ip] = node
    own_loopback = {node: {netaddr.IPNetwork(lo).ip for lo in (loopbacks.get(node), x.loopbacks6.get(node)) if lo}
                    for node in ifaces}

    def lookup(node, dst):
        """``(gateway or None, dev or None)`` of ``node``'s longest-prefix route to ``dst``, or None."""
        best = None
        for prefix, gw in routes[node].items():
            net = netaddr.IPNetwork(prefix)
            if net.version == dst.version and dst in net and (best is None or net.prefixlen > best[0].prefixlen):
                best = (net, netaddr.IPAddress(gw) if gw else None, x.route_devs.get(node, {}).get(prefix))
        return best[1:] if best else None

    def path_mtu(src, dst, outside=False):
        """Smallest egress MTU from node ``src`` to address ``dst``; None while a hop's MTU
        is unknown; a string when there is no path (the reason). ``outside``: ``dst`` is no
        lab node's; the path ends where it leaves the lab (a next hop no node holds)."""
        dst = netaddr.IPAddress(dst)
        cur, mtu, seen = src, 65535, set()
        while True:
            mine = [(i, [n for n in nets(i) if n.version == dst.version]) for i in ifaces[cur]]
            mine = [(i, ns) for i, ns in mine if ns]
            if any(n.ip == dst for _, ns in mine for n in ns) or dst in own_loopback[cur]:
                return mtu
            if cur in seen:
                return f"the routes from {src} towards {dst} loop at {cur}"
            seen.add(cur)
            if any(dst in n for _, ns in mine for n in ns):
                hop, dev = dst, None
            else:
                hop, dev = lookup(cur, dst) or (None, None)
            if dev:  # a route through a device: the gateway, an L3 tunnel's peer, or the owner on-link
                egress = next((i for i in ifaces[cur] if i["ifname"] == dev), None)
                nxt = owner.get(hop or dst)
                if egress is not None and egress["kind"] in L3_TUNNELS and hop is None and egress["peer"]:
                    nxt = egress["peer"].split(":")[0]
            else:
                egress = next((i for i, ns in mine if hop is not None and any(hop in n for n in ns)), None)
                nxt = owner.get(hop)
            if egress is None or nxt is None and not outside:
                return f"{cur} has no route to {dst}"
            if egress["mtu"] is None:
                return None
            mtu = min(mtu, egress["mtu"])
            if nxt is None:  # outside: the path leaves the lab here
                return mtu
            cur = nxt

    pending = [t for t, tunnel in enumerate(lab.tunnels) if tunnel.mtu is None]
    while pending:
        progress = []
        for t in pending:
            a = tunnel_ends[t][0]
            found = [path_mtu(e["node"], e["remote"], outside=e["peer"] is None) for e in tunnel_ends[t]]
            if any(isinstance(f, str) for f in found):
                why = next(f for f in found if isinstance(f, str))
                x.add(("tunnels", t), f"the underlay cannot carry this tunnel: {why} " + (
                    "(its peer is outside the lab: give the node a route or gateway towards it, or set mtu:)"
                    if lab.tunnels[t].outside else "(routing: auto, or routes on the nodes)"))
                progress.append(t)
            elif None not in found:
                tunnel = lab.tunnels[t]
                overhead = (OVERHEAD6 if ":" in a["local"] else OVERHEAD)[a["kind"]]
                mtu = min(found) - overhead - (4 if tunnel.key is not None else 0)
                for end in tunnel_ends[t]:
                    end["mtu"] = mtu
                progress.append(t)
        if not progress:
            for t in pending:
                x.add(("tunnels", t), "its underlay path rides on a tunnel that rides on it; "
                                      "set mtu: on one of them")
            break
        pending = [t for t in pending if t not in progress]
    for t, ends in enumerate(tunnel_ends):
        end = next((e for e in ends if e["bridge"]), None)  # both ends share the MTU and segment
        if end is None or end["mtu"] is None:
            continue
        seg = segments[end["segment"]]
        big = max((m["mtu"] for m in seg.members if m["mtu"]), default=0)
        if big > end["mtu"]:
            if (lab.tunnels[t].mtu_check or lab.mtu_check) == "warn":
                x.warn(("tunnels", t),
                       f"the tunnel's MTU is {end['mtu']} but segment {seg.name} carries frames of up to "
                       f"{big} bytes: frames of {end['mtu'] + 1} bytes and more are dropped (built anyway: "
                       f"mtu_check: warn)")
                continue
            x.add(("tunnels", t),
                  f"the tunnel's MTU is {end['mtu']} but segment {seg.name} carries frames of "
                  f"up to {big} bytes, which the bridge would drop; lower the segment's link mtu to "
                  f"{end['mtu']} or raise the underlay's MTU by {big - end['mtu']}, or build it anyway "
                  f"with mtu_check: warn")
