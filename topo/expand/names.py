"""Phase "references": names and what refers to what.

Reserved names (Ansible's own groups and topo's), node names that are also group names,
bridges named like nodes, links and tunnels that name unknown nodes or bridges, interface
names used twice on a node. Also the naming rules every later phase uses: a node's or
bridge's namespace (:func:`netns_name`) and the bridge-side end of a veth (:func:`port_name`).
"""

from __future__ import annotations

import hashlib

from topo.expand.state import Expansion
from topo.model import by_family

NS_PREFIX = "topo"
#: Names a node or bridge may not take: Ansible's implicit groups and topo's own groups.
RESERVED = {"localhost", "all", "ungrouped", "topo_hosts", "topo_nodes", "netns", "docker"}
#: Longest interface name the kernel takes (IFNAMSIZ 16 with the terminating NUL).
IFNAMSIZ = 15


def netns_name(lab: str, name: str) -> str:
    """Namespace of a node or bridge: ``topo-<lab>-<name>``."""
    return f"{NS_PREFIX}-{lab}-{name}"


def port_name(node: str, ifname: str) -> str:
    """Name of the bridge-side veth end for ``node``'s interface ``ifname`` (<= 15 chars):
    ``<node>-<ifname>``, or ``p`` + 8 hex digits of its SHA-1 when that is longer."""
    name = f"{node}-{ifname}"
    if len(name) <= IFNAMSIZ:
        return name
    return "p" + hashlib.sha1(name.encode()).hexdigest()[:8]


def references(x: Expansion) -> None:
    """Check names and references; fill ``x.used_ifnames`` (declared interface names) and
    ``x.resolved`` (per link: its node ends ``[(index, Endpoint)]`` and its bridge or None)."""
    lab = x.lab
    nodes, bridges = lab.nodes, lab.bridges
    groups = {g for n in nodes.values() for g in n.groups}
    for name in nodes:
        if name in RESERVED:
            x.add(("nodes", name), f"{name!r} is reserved; choose another name")
        if name in groups:
            x.add(("nodes", name), f"{name!r} is also a group name; Ansible needs them distinct")
    for name in bridges:
        if name in nodes:
            x.add(("bridges", name), f"{name!r} is both a node and a bridge; names must be unique")
        if name in RESERVED:
            x.add(("bridges", name), f"{name!r} is reserved; choose another name")

    used_ifnames: dict[str, dict[str, tuple]] = {n: {} for n in nodes}
    x.used_ifnames = used_ifnames
    for i, link in enumerate(lab.links):
        node_ends, bridge = [], None
        for j, ep in enumerate(link.endpoints):
            path = ("links", i, "endpoints", j)
            if ep.node in nodes:
                node_ends.append((j, ep))
                if ep.ifname:
                    prev = used_ifnames[ep.node].get(ep.ifname)
                    if prev:
                        x.add(path + ("ifname",), f"interface {ep.ifname} is already used on node {ep.node} "
                                                  f"(line {x.where(prev)})")
                    else:
                        used_ifnames[ep.node][ep.ifname] = path + ("ifname",)
            elif ep.node in bridges:
                if bridge is not None:
                    x.add(path, "a link joins a node to a bridge or two nodes; it cannot join two bridges")
                bridge = ep.node
                for key in ("ifname", "address", "mac"):
                    if getattr(ep, key):
                        x.add(path + (key,), f"{key} belongs on the node end; {ep.node} is a bridge")
            else:
                known = ", ".join(sorted(nodes)[:8]) + (" ..." if len(nodes) > 8 else "")
                x.add(path + ("node",), f"unknown node {ep.node!r} (nodes: {known})")
        if bridge is not None and link.subnet is not None and bridges[bridge].subnet is not None and any(
                a and b and a != b for a, b in zip(by_family(link.subnet), by_family(bridges[bridge].subnet))):
            x.add(("links", i, "subnet"), f"{link.subnet} differs from bridge {bridge}'s subnet "
                                          f"{bridges[bridge].subnet}")
        x.resolved.append((node_ends, bridge))
    for bname, br in bridges.items():
        if br.node is not None and br.node not in nodes:
            x.add(("bridges", bname, "node"), f"unknown node {br.node!r}")
        elif br.node is not None and bname in used_ifnames[br.node]:
            x.add(("bridges", bname), f"node {br.node} already has an interface named {bname}")
    for t, tunnel in enumerate(lab.tunnels):
        if tunnel.outside and not tunnel.endpoints[0].remote:
            x.add(("tunnels", t, "endpoints", 0), "remote is required: a tunnel with one endpoint sends to a "
                  "peer outside the lab, at its underlay address remote: (a peer in the lab is named as the "
                  "second endpoint)", field=("tunnels", t, "endpoints", 0, "remote"))
        elif not tunnel.outside and tunnel.endpoints[0].node == tunnel.endpoints[1].node:
            x.add(("tunnels", t), "a tunnel joins two different nodes", field=("tunnels", t, "endpoints"))
        for j, ep in enumerate(tunnel.endpoints):
            path = ("tunnels", t, "endpoints", j)
            if ep.node not in nodes:
                what = "a bridge; a tunnel ends in a node" if ep.node in bridges else "unknown node"
                x.add(path + ("node",), f"{ep.node!r}: {what}")
                continue
            if ep.ifname:
                prev = used_ifnames[ep.node].get(ep.ifname)
                if prev or ep.ifname in bridges and bridges[ep.ifname].node == ep.node:
                    x.add(path + ("ifname",), f"interface {ep.ifname} is already used on node {ep.node}")
                else:
                    used_ifnames[ep.node][ep.ifname] = path + ("ifname",)
            if ep.bridge is not None:
                br = bridges.get(ep.bridge)
                if br is None:
                    x.add(path + ("bridge",), f"unknown bridge {ep.bridge!r}")
                elif br.node != ep.node:
                    x.add(path + ("bridge",), f"bridge {ep.bridge} must live in node {ep.node} for the tunnel to "
                                              f"join it (set bridges.{ep.bridge}.node: {ep.node})")
                if ep.address:
                    x.add(path + ("address",), "a tunnel end plugged into a bridge has no address of its own; "
                                               "address the bridge's other members")
