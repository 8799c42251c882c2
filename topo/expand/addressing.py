"""Phase "addressing": subnets, pools and addresses (netlab's model).

1. :func:`subnets`: a segment's subnet is declared (bridge, link or tunnel ``subnet:``)
   or inferred from a member's ``a.b.c.d/len``; declared loopbacks are /32s. No two of
   these may overlap.
2. :func:`pools`: every segment still without one takes the next free subnet of the
   ``lan`` pool (bridges) or ``p2p`` pool (point-to-point); ``loopback: true`` takes a /32
   of the ``loopback`` pool (not with ``autoaddress: false``: such segments stay
   unaddressed, their addresses left to the nodes' ``exec:`` commands). Pools are walked lazily and skip every subnet that overlaps
   one already taken. An allocation of ``x.prior`` is kept where it still fits, so editing
   a lab does not renumber the nodes that were not edited.
3. :func:`addresses`: declared addresses are checked against their segment's subnet; the
   others take the prior address if it still fits, else the subnet's next free host.
"""

from __future__ import annotations

import netaddr

from topo.expand.state import Expansion


def subnets(x: Expansion) -> None:
    """Infer subnets from addresses, collect ``x.taken`` and ``x.loopbacks`` (declared);
    report overlaps."""
    for seg in x.segments.values():
        for m in seg.members:
            if m["address"] and "/" in m["address"]:
                net = netaddr.IPNetwork(m["address"]).cidr
                if seg.subnet is None:
                    seg.subnet, seg.subnet_path = net, m["path"] + ("address",)
    x.taken = [(s.subnet, s.name, s.subnet_path) for s in x.segments.values() if s.subnet is not None]
    for name, node in x.lab.nodes.items():
        if isinstance(node.loopback, str):
            ip = netaddr.IPNetwork(node.loopback if "/" in node.loopback else node.loopback + "/32")
            x.loopbacks[name] = str(ip)
            x.taken.append((ip.cidr, f"loopback of {name}", ("nodes", name, "loopback")))
    _check_overlaps(x)


def _check_overlaps(x: Expansion) -> None:
    """Report every pair of explicit subnets that overlap (sweep over sorted ranges)."""
    ordered = sorted(x.taken, key=lambda t: (t[0].first, -t[0].last))
    widest = None
    for net, name, path in ordered:
        if widest is not None and net.first <= widest[0].last:
            x.add(path, f"subnet {net} ({name}) overlaps {widest[0]} ({widest[1]})")
        if widest is None or net.last > widest[0].last:
            widest = (net, name, path)


def pools(x: Expansion) -> None:
    """Give every segment with members a subnet and every ``loopback: true`` node a /32."""
    lab, prior = x.lab, x.prior
    used = netaddr.IPSet(net for net, _, _ in x.taken)
    walks = {}

    def allocate(pool_name, hosts_needed, what, path, prefer=None):
        pool = lab.pool(pool_name)
        if prefer:
            net = netaddr.IPNetwork(prefer)
            if (net.prefixlen == pool.prefix and net in netaddr.IPNetwork(pool.ipv4)
                    and not (used & netaddr.IPSet([net]))):
                used.add(net)
                return net
        if pool_name not in walks:
            walks[pool_name] = netaddr.IPNetwork(pool.ipv4).subnet(pool.prefix)
        capacity = 2 ** (32 - pool.prefix) - (2 if pool.prefix < 31 else 0)
        if hosts_needed > capacity:
            x.add(path, f"{what} needs {hosts_needed} addresses; a /{pool.prefix} from pool {pool_name!r} "
                        f"holds {capacity}")
            return None
        first = netaddr.IPNetwork(pool.ipv4).network
        for net in walks[pool_name]:
            if pool.prefix == 32 and net.ip == first:
                continue  # a /32 pool's network address is not handed out as a loopback
            if not (used & netaddr.IPSet([net])):
                used.add(net)
                return net
        x.add(path, f"ran out of subnets in pool {pool_name!r} ({pool.ipv4}, /{pool.prefix}) for {what}")
        return None

    for seg in x.segments.values():
        if seg.subnet is None and seg.members and lab.autoaddress:
            seg.subnet = allocate("lan" if seg.kind == "lan" else "p2p", len(seg.members),
                                  f"segment {seg.name}", seg.path, prior["segments"].get(seg.name))
    for name, node in lab.nodes.items():
        if node.loopback is True:
            net = allocate("loopback", 1, f"the loopback of {name}", ("nodes", name, "loopback"),
                           prior["loopbacks"].get(name))
            if net is not None:
                x.loopbacks[name] = f"{net.ip}/32"


def addresses(x: Expansion) -> None:
    """Give every segment member an ``a.b.c.d/len`` address in its segment's subnet."""
    prior = x.prior
    for seg in x.segments.values():
        net = seg.subnet
        if net is None:
            continue
        claimed = set()
        for m in seg.members:
            if not m["address"]:
                continue
            ip = netaddr.IPNetwork(m["address"] if "/" in m["address"] else f"{m['address']}/{net.prefixlen}")
            path = m["path"] + ("address",)
            if ip.prefixlen != net.prefixlen or ip.ip not in net:
                x.add(path, f"{m['address']} is outside the segment's subnet {net} (segment {seg.name})")
                continue
            if net.prefixlen < 31 and ip.ip in (net.network, net.broadcast):
                x.add(path, f"{ip.ip} is the {'network' if ip.ip == net.network else 'broadcast'} address of {net}")
                continue
            if ip.ip in claimed:
                x.add(path, f"{ip.ip} is used twice on segment {seg.name}")
                continue
            claimed.add(ip.ip)
            m["address"] = f"{ip.ip}/{net.prefixlen}"
        for m in seg.members:  # keep earlier allocations that still fit
            before = prior["addresses"].get(f"{m['node']}:{m['ifname']}")
            if m["address"] is None and before:
                ip = netaddr.IPNetwork(before)
                usable = net.prefixlen >= 31 or ip.ip not in (net.network, net.broadcast)
                if ip.prefixlen == net.prefixlen and ip.ip in net and usable and ip.ip not in claimed:
                    claimed.add(ip.ip)
                    m["address"] = before
        free = (h for h in (net.iter_hosts() if net.prefixlen < 31 else iter(net)) if h not in claimed)
        for m in seg.members:
            if m["address"] is None:
                host = next(free, None)
                if host is None:
                    x.add(seg.path, f"subnet {net} of segment {seg.name} has no free address left")
                    break
                m["address"] = f"{host}/{net.prefixlen}"
