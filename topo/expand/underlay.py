"""Phase "underlay": the address each tunnel end leaves from (``local``) and sends to
(``remote``), IPv4 or IPv6.

A declared ``local:`` (or the other end's ``remote:``, which stands for it) must be one of
the node's addresses; otherwise the end leaves from
the node's loopback, else from its first addressed veth. Both ends use one family: the
family of a declared ``local`` (either end), else IPv4 when both ends have an IPv4 address
to leave from, else the family more ends have one of (IPv4 on a tie). An end without one of
that family is an error. A tunnel whose other end is outside the lab takes the family of
its ``remote``, which must be no lab node's address. Over IPv6, a
``gre`` / ``gretap`` tunnel's devices are the kernel's ``ip6gre`` / ``ip6gretap``
(:data:`IP6_KINDS`; the ends' ``kind`` says which).
"""

from __future__ import annotations

import netaddr

from topo.expand.state import Expansion
from topo.model import family_of

#: The kernel's device kind for a tunnel type over an IPv6 underlay (VXLAN takes either family).
IP6_KINDS = {"gre": "ip6gre", "gretap": "ip6gretap", "vxlan": "vxlan"}


def own_addresses(x: Expansion, node: str) -> list[str]:
    """The addresses (no length) of ``node``'s interfaces, then its loopback's: IPv4, then IPv6."""
    out = []
    for key, loopbacks in (("address", x.loopbacks), ("address6", x.loopbacks6)):
        out += [str(netaddr.IPNetwork(i[key]).ip) for i in x.ifaces[node] if i.get(key)]
        lo = loopbacks.get(node)
        out += [str(netaddr.IPNetwork(lo).ip)] if lo else []
    return out


def _candidate(x: Expansion, node: str, v6: bool) -> str | None:
    """Where an end on ``node`` leaves from by default: its loopback, else its first addressed veth."""
    key, loopbacks = ("address6", x.loopbacks6) if v6 else ("address", x.loopbacks)
    lo = loopbacks.get(node)
    first = next((i[key] for i in x.ifaces[node] if i["kind"] == "veth" and i.get(key)), None)
    return str(netaddr.IPNetwork(lo or first).ip) if lo or first else None


def underlay(x: Expansion) -> None:
    """Set ``local`` on every tunnel end (problems for those that have none)."""
    for t, ends in enumerate(x.tunnel_ends):
        declared = [e["local"] for e in ends if e["local"]]
        if x.lab.tunnels[t].outside:  # the family of the outside peer's address
            _outside(x, ends[0])
            v6 = ":" in ends[0]["remote"]
        elif declared:
            v6 = family_of(declared[0]) == "IPv6"
        else:  # IPv4 when both ends can; else the family more ends can leave from
            can4, can6 = (sum(bool(_candidate(x, e["node"], v6)) for e in ends) for v6 in (False, True))
            v6 = can4 < 2 and can6 > can4
        for j, end in enumerate(ends):
            if v6:
                end["kind"] = IP6_KINDS[end["kind"]]
            path = end["path"] + ("local",)
            if end["local"]:
                end["local"] = str(netaddr.IPAddress(end["local"]))  # one spelling (IPv6: compressed, lower case)
                if end["local"] not in own_addresses(x, end["node"]):
                    if x.lab.tunnels[t].endpoints[j].local is None:  # the other end's remote: stands for it
                        x.add(ends[1 - j]["path"] + ("remote",),
                              f"{end['local']} is not an address of node {end['node']}, the tunnel's other end "
                              f"(its addresses: {', '.join(own_addresses(x, end['node'])) or 'none'})")
                        continue
                    x.add(path, f"{end['local']} is not an address of node {end['node']} "
                                f"(its addresses: {', '.join(own_addresses(x, end['node'])) or 'none'})")
                continue
            found = _candidate(x, end["node"], v6)
            if found:
                end["local"] = found
            else:
                x.add(end["path"], f"node {end['node']} has no {'IPv6 ' if v6 else ''}underlay address for this "
                                   "tunnel to leave from; link it to the underlay, give it a loopback, or set local:")


def _outside(x: Expansion, end: dict) -> None:
    """Refuse an outside peer's ``remote`` that is a lab node's address (name that node instead)."""
    for node in x.lab.nodes:
        if end["remote"] in own_addresses(x, node):
            x.add(end["path"] + ("remote",),
                  f"{end['remote']} is an address of node {node}, in the lab; name it as the tunnel's second "
                  f"endpoint (endpoints: [{end['node']}, {node}]) so topo builds that end too")
            return


def remotes(x: Expansion) -> None:
    """Set ``remote`` on every tunnel end: the other end's ``local`` (run after the gate);
    an end whose peer is outside the lab keeps its declared ``remote``."""
    for ends in x.tunnel_ends:
        if len(ends) == 2:
            a, b = ends
            a["remote"], b["remote"] = b["local"], a["local"]
