"""Phase "underlay": the address each tunnel end leaves from (``local``) and sends to
(``remote``).

A declared ``local:`` must be one of the node's addresses; otherwise the end leaves from
the node's loopback, else from its first addressed veth. A node with neither is an error.
"""

from __future__ import annotations

import netaddr

from topo.expand.state import Expansion


def own_addresses(x: Expansion, node: str) -> list[str]:
    """The IPv4 addresses (no length) of ``node``'s interfaces, then its loopback's."""
    found = [str(netaddr.IPNetwork(i["address"]).ip) for i in x.ifaces[node] if i["address"]]
    lo = x.loopbacks.get(node)
    return found + ([str(netaddr.IPNetwork(lo).ip)] if lo else [])


def underlay(x: Expansion) -> None:
    """Set ``local`` on every tunnel end (problems for those that have none)."""
    for ends in x.tunnel_ends:
        for end in ends:
            path = end["path"] + ("local",)
            if end["local"]:
                if end["local"] not in own_addresses(x, end["node"]):
                    x.add(path, f"{end['local']} is not an address of node {end['node']} "
                                f"(its addresses: {', '.join(own_addresses(x, end['node'])) or 'none'})")
                continue
            lo = x.loopbacks.get(end["node"])
            first = next((i["address"] for i in x.ifaces[end["node"]] if i["kind"] == "veth" and i["address"]),
                         None)
            if lo or first:
                end["local"] = str(netaddr.IPNetwork(lo or first).ip)
            else:
                x.add(end["path"], f"node {end['node']} has no underlay address for this tunnel to leave from; "
                                   "link it to the underlay, give it a loopback, or set local:")


def remotes(x: Expansion) -> None:
    """Set ``remote`` on every tunnel end: the other end's ``local`` (run after the gate)."""
    for a, b in x.tunnel_ends:
        a["remote"], b["remote"] = b["local"], a["local"]
