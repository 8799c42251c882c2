"""Phase "segments": interface names, L2 segments and the veth pairs that make them.

Every link becomes interfaces (an undeclared name is the node's next free ``eth<n>``) and
a segment: a bridge's LAN (bridges joined by an L2 tunnel, both ends plugged into
bridges, are one segment, named after the first declared) or a point-to-point link named
``<a>.<ifname>--<b>.<ifname>``. A node-to-bridge link is a veth whose bridge-side end is
:func:`~topo.expand.names.port_name`; a node-to-node link a veth between the two nodes.
:func:`check_ports` runs after the tunnels phase, which adds the tunnels' interfaces.
"""

from __future__ import annotations

import netaddr

from topo.expand.names import netns_name, port_name
from topo.expand.state import Expansion, Segment
from topo.model import by_family


def set_subnets(seg: Segment, value: str | None, path: tuple) -> None:
    """Give ``seg`` the subnets of declared ``value`` (one per family, see
    :func:`topo.model.by_family`), declared at ``path``."""
    v4, v6 = by_family(value)
    if v4:
        seg.subnet, seg.subnet_path = netaddr.IPNetwork(v4), path
    if v6:
        seg.subnet6, seg.subnet6_path = netaddr.IPNetwork(v6), path


def new_end(node: str, ifname: str, address: str | None, path: tuple, **more) -> dict:
    """An :class:`~topo.expand.state.End` with the declared ``address`` split by family."""
    v4, v6 = by_family(address)
    return {"node": node, "ifname": ifname, "address": v4, "address6": v6, "path": path, **more}


def bridge_netns(x: Expansion, bname: str) -> str:
    """Namespace a bridge lives in: its node's, else its own (``topo-<lab>-<bridge>``)."""
    node = x.lab.bridges[bname].node
    return netns_name(x.lab.name, node if node else bname)


def segments(x: Expansion) -> None:
    """Fill ``x.segments``, ``x.seg_of_bridge``, ``x.ifaces``, ``x.veths`` and
    ``x.bridge_impairments`` from the bridges and links."""
    lab = x.lab
    nodes, bridges = lab.nodes, lab.bridges
    used_ifnames = x.used_ifnames
    counters = {n: 0 for n in nodes}

    def next_ifname(node):
        while f"eth{counters[node]}" in used_ifnames[node]:
            counters[node] += 1
        name = f"eth{counters[node]}"
        used_ifnames[node][name] = ()
        return name

    joined = {b: b for b in bridges}
    order = list(bridges)

    def root(b):
        while joined[b] != b:
            b = joined[b]
        return b

    for tunnel in lab.tunnels:
        if tunnel.outside:
            continue
        a, b = (ep.bridge for ep in tunnel.endpoints)
        if a and b and root(a) != root(b):
            joined[max(root(a), root(b), key=order.index)] = min(root(a), root(b), key=order.index)
    segs = x.segments
    seg_of_bridge = x.seg_of_bridge
    seg_of_bridge.update({b: root(b) for b in bridges})
    for bname in bridges:
        rep = seg_of_bridge[bname]
        seg = segs.get(rep) or segs.setdefault(rep, Segment(rep, "lan", ("bridges", rep), bridge=rep))
        seg.bridges.append(bname)
        for declared, attr in zip(by_family(bridges[bname].subnet), ("subnet", "subnet6")):
            if declared:
                if getattr(seg, attr) is not None and getattr(seg, attr) != netaddr.IPNetwork(declared):
                    x.add(("bridges", bname, "subnet"),
                          f"{declared} differs from {getattr(seg, attr)}, the subnet of bridge {seg.bridges[0]} "
                          "on the same L2 segment (joined by a tunnel)")
                setattr(seg, attr, netaddr.IPNetwork(declared))
                setattr(seg, attr + "_path", ("bridges", bname, "subnet"))
    ifaces = x.ifaces
    ifaces.update({n: [] for n in nodes})
    veths = x.veths

    for i, (link, (node_ends, bridge)) in enumerate(zip(lab.links, x.resolved)):
        ends = []
        for j, ep in node_ends:
            ifname = ep.ifname or next_ifname(ep.node)
            ends.append(new_end(ep.node, ifname, ep.address, ("links", i, "endpoints", j), mac=ep.mac))
        if bridge is not None:
            seg = segs[seg_of_bridge[bridge]]
            v4, v6 = by_family(link.subnet)
            set_subnets(seg, " ".join(v for v, old in ((v4, seg.subnet), (v6, seg.subnet6)) if v and old is None),
                        ("links", i, "subnet"))
        else:
            a, b = ends
            name = f"{a['node']}.{a['ifname']}--{b['node']}.{b['ifname']}"
            seg = segs[name] = Segment(name, "p2p", ("links", i))
            set_subnets(seg, link.subnet, ("links", i, "subnet"))
        for end in ends:
            seg.members.append(end)
            end["segment"], end["mtu"], end["kind"] = seg.name, link.mtu, "veth"
            end["impair"] = link.impair
            ifaces[end["node"]].append(end)
        if bridge is not None:
            end = ends[0]
            pname = port_name(end["node"], end["ifname"])
            a = {"netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"], "mtu": link.mtu}
            if end["mac"]:
                a["mac"] = end["mac"].lower()
            veths.append({"a": a, "b": {"netns": bridge_netns(x, bridge), "ifname": pname,
                                        "mtu": link.mtu, "master": bridge}})
            end["peer"] = f"{bridge}:{pname}"
            if link.impair:
                x.bridge_impairments.append((bridge_netns(x, bridge), pname, link.impair))
        else:
            pair = {}
            for key, end, other in (("a", ends[0], ends[1]), ("b", ends[1], ends[0])):
                pair[key] = {"netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"], "mtu": link.mtu}
                if end["mac"]:
                    pair[key]["mac"] = end["mac"].lower()
                end["peer"] = f"{other['node']}:{other['ifname']}"
            veths.append(pair)


def bridge_ports(x: Expansion, bname: str) -> list[str]:
    """The bridge-side veth ends plugged into bridge ``bname``, in member order."""
    return [port_name(m["node"], m["ifname"]) for m in x.segments[x.seg_of_bridge[bname]].members
            if m["peer"] == f"{bname}:{port_name(m['node'], m['ifname'])}"]


def check_ports(x: Expansion) -> None:
    """Two interfaces of one namespace may not share a name (bridge ports, the bridge
    itself, and the interfaces of the node a bridge lives in)."""
    for bname, br in x.lab.bridges.items():
        ports = bridge_ports(x, bname)
        clash = {p for p in ports if ports.count(p) > 1} | ({bname} & set(ports))
        if br.node is not None:
            clash |= set(ports) & set(x.used_ifnames[br.node])
        for p in sorted(clash):
            x.add(("bridges", bname), f"two interfaces of namespace {bridge_netns(x, bname)} would both be named "
                                      f"{p}; rename an interface")
