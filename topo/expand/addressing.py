"""Phase "addressing": subnets, pools and addresses (netlab's model), per address family.

1. :func:`subnets`: a segment's subnets are declared (bridge, link or tunnel ``subnet:``,
   one per family) or inferred from a member's ``a.b.c.d/len`` / ``x:x::x/len``; declared
   loopbacks are /32s (IPv4) and /128s (IPv6). No two of these may overlap.
2. :func:`pools`: for each family of the lab's ``af``, every segment still without a
   subnet of that family takes the next free one of the ``lan`` pool (bridges) or ``p2p``
   pool (point-to-point); a node with a loopback takes a /32 (/128) of the ``loopback``
   pool unless it declares one of that family (segments: not with ``autoaddress: false``,
   where they stay unaddressed, their addresses left to the nodes' ``exec:`` commands).
   Pools are walked lazily and skip every subnet that overlaps one already taken. An
   allocation of ``x.prior`` is kept where it still fits, so editing a lab does not
   renumber the nodes that were not edited.
3. :func:`addresses`: declared addresses are checked against their segment's subnet of
   their family; the others take the prior address if it still fits, else the subnet's
   next free host (IPv6: from ``::1``, the Subnet-Router anycast address ``::`` is not
   handed out; a /127 uses both addresses, RFC 6164).
"""

from __future__ import annotations

from dataclasses import dataclass

import netaddr

from topo.expand.state import Expansion
from topo.model import by_family


@dataclass(frozen=True)
class Family:
    """Where one address family's decisions live: the End key (``address``/``address6``),
    the Segment attribute (``subnet``/``subnet6``), the Expansion's ``taken``/``loopbacks``
    attributes, the Pool's keys, the ``af`` name, the host length and the prior allocation's
    keys (see :func:`topo.expand.previous_allocation`)."""

    name: str
    af: str
    key: str
    subnet: str
    taken: str
    loopbacks: str
    pool_net: str
    pool_len: str
    bits: int
    prior_segments: str
    prior_addresses: str
    prior_loopbacks: str


IPV4 = Family("IPv4", "ipv4", "address", "subnet", "taken", "loopbacks", "ipv4", "prefix", 32,
              "segments", "addresses", "loopbacks")
IPV6 = Family("IPv6", "ipv6", "address6", "subnet6", "taken6", "loopbacks6", "ipv6", "prefix6", 128,
              "segments6", "addresses6", "loopbacks6")
FAMILIES = (IPV4, IPV6)


def subnets(x: Expansion) -> None:
    """Infer subnets from addresses, collect ``x.taken``/``x.taken6`` and
    ``x.loopbacks``/``x.loopbacks6`` (declared); report overlaps."""
    for fam in FAMILIES:
        for seg in x.segments.values():
            for m in seg.members:
                if m[fam.key] and "/" in m[fam.key]:
                    net = netaddr.IPNetwork(m[fam.key]).cidr
                    if getattr(seg, fam.subnet) is None:
                        setattr(seg, fam.subnet, net)
                        setattr(seg, fam.subnet + "_path", m["path"] + ("address",))
        taken = getattr(x, fam.taken)
        taken += [(getattr(s, fam.subnet), s.name, getattr(s, fam.subnet + "_path")) for s in x.segments.values()
                  if getattr(s, fam.subnet) is not None]
        for name, node in x.lab.nodes.items():
            declared = by_family(node.loopback)[fam is IPV6] if isinstance(node.loopback, str) else None
            if declared:
                ip = netaddr.IPNetwork(declared if "/" in declared else f"{declared}/{fam.bits}")
                getattr(x, fam.loopbacks)[name] = str(ip)
                taken.append((ip.cidr, f"loopback of {name}", ("nodes", name, "loopback")))
        _check_overlaps(x, taken)


def _check_overlaps(x: Expansion, taken: list) -> None:
    """Report every pair of explicit subnets of one family that overlap (sweep over sorted ranges)."""
    ordered = sorted(taken, key=lambda t: (t[0].first, -t[0].last))
    widest = None
    for net, name, path in ordered:
        if widest is not None and net.first <= widest[0].last:
            x.add(path, f"subnet {net} ({name}) overlaps {widest[0]} ({widest[1]})")
        if widest is None or net.last > widest[0].last:
            widest = (net, name, path)


def pools(x: Expansion) -> None:
    """For each family of ``af``: give every segment with members a subnet and every node
    with a loopback one of that family."""
    for fam in FAMILIES:
        if fam.af in x.lab.af:
            _pools(x, fam)


def _pools(x: Expansion, fam: Family) -> None:
    lab, prior = x.lab, x.prior
    used = netaddr.IPSet(net for net, _, _ in getattr(x, fam.taken))
    walks = {}

    def allocate(pool_name, hosts_needed, what, path, prefer=None):
        pool = lab.pool(pool_name)
        base, length = getattr(pool, fam.pool_net), getattr(pool, fam.pool_len)
        if prefer:
            net = netaddr.IPNetwork(prefer)
            if (net.version == netaddr.IPNetwork(base).version and net.prefixlen == length
                    and net in netaddr.IPNetwork(base) and not (used & netaddr.IPSet([net]))):
                used.add(net)
                return net
        if pool_name not in walks:
            walks[pool_name] = _free_subnets(netaddr.IPNetwork(base), length, used)
        spare = 2 if fam is IPV4 else 1  # network and broadcast; IPv6: the Subnet-Router anycast
        capacity = 2 ** (fam.bits - length) - (spare if length < fam.bits - 1 else 0)
        if hosts_needed > capacity:
            prefix = f"a /{length}" if fam is IPV4 else f"an IPv6 /{length}"
            x.add(path, f"{what} needs {hosts_needed} addresses; {prefix} from pool {pool_name!r} "
                        f"holds {capacity}")
            return None
        first = netaddr.IPNetwork(base).network
        for net in walks[pool_name]:
            if length == fam.bits and net.ip == first:
                continue  # a host-length pool's network address is not handed out as a loopback
            used.add(net)
            return net
        x.add(path, f"ran out of subnets in pool {pool_name!r} ({base}, /{length}) for {what}")
        return None

    for seg in x.segments.values():
        if getattr(seg, fam.subnet) is None and seg.members and lab.autoaddress:
            setattr(seg, fam.subnet, allocate("lan" if seg.kind == "lan" else "p2p", len(seg.members),
                                              f"segment {seg.name}", seg.path,
                                              prior.get(fam.prior_segments, {}).get(seg.name)))
    loopbacks = getattr(x, fam.loopbacks)
    for name, node in lab.nodes.items():
        if node.loopback and name not in loopbacks:
            what = "the loopback" if fam is IPV4 else "the IPv6 loopback"
            net = allocate("loopback", 1, f"{what} of {name}", ("nodes", name, "loopback"),
                           prior.get(fam.prior_loopbacks, {}).get(name))
            if net is not None:
                loopbacks[name] = f"{net.ip}/{fam.bits}"


def _free_subnets(pool: netaddr.IPNetwork, length: int, used: netaddr.IPSet):
    """The /``length`` subnets of ``pool`` that overlap nothing in ``used`` (read as the
    walk goes, so allocations made meanwhile count), in order. A taken range is jumped over
    at once, not walked subnet by subnet (an IPv6 /64 taken inside a /128 pool holds 2**64)."""
    step = 2 ** ((128 if pool.version == 6 else 32) - length)
    cur = pool.first
    while cur + step - 1 <= pool.last:
        net = netaddr.IPNetwork(f"{netaddr.IPAddress(cur, pool.version)}/{length}")
        if not (used & netaddr.IPSet([net])):
            yield net
            cur += step
            continue
        end = max(c.last for c in used.iter_cidrs() if c.first <= net.last and c.last >= net.first)
        cur = (end + 1 + step - 1) // step * step  # the next subnet boundary after the taken range


def addresses(x: Expansion) -> None:
    """Give every segment member an address in each of its segment's subnets
    (``a.b.c.d/len``, ``x:x::x/len``)."""
    for fam in FAMILIES:
        for seg in x.segments.values():
            if getattr(seg, fam.subnet) is not None:
                _addresses(x, fam, seg)
                continue
            for m in seg.members:  # a length-less address on a segment no pool of its family serves
                if m[fam.key]:
                    x.add(m["path"] + ("address",),
                          f"{m[fam.key]} has no prefix length and segment {seg.name} has no {fam.name} subnet "
                          f"(af: {', '.join(x.lab.af)}); write it with its length or give the segment a subnet")


def _addresses(x: Expansion, fam: Family, seg) -> None:
    prior = x.prior.get(fam.prior_addresses, {})
    net, key = getattr(seg, fam.subnet), fam.key
    two_ends = net.prefixlen >= fam.bits - 1  # /31, /32, /127, /128: every address is a host
    claimed = set()
    for m in seg.members:
        if not m[key]:
            continue
        ip = netaddr.IPNetwork(m[key] if "/" in m[key] else f"{m[key]}/{net.prefixlen}")
        path = m["path"] + ("address",)
        if ip.prefixlen != net.prefixlen or ip.ip not in net:
            x.add(path, f"{m[key]} is outside the segment's subnet {net} (segment {seg.name})")
            continue
        if fam is IPV4 and not two_ends and ip.ip in (net.network, net.broadcast):
            x.add(path, f"{ip.ip} is the {'network' if ip.ip == net.network else 'broadcast'} address of {net}")
            continue
        if fam is IPV6 and not two_ends and ip.ip == net.network:
            x.add(path, f"{ip.ip} is the Subnet-Router anycast address of {net}; give a host ::1 or above")
            continue
        if ip.ip in claimed:
            x.add(path, f"{ip.ip} is used twice on segment {seg.name}")
            continue
        claimed.add(ip.ip)
        m[key] = f"{ip.ip}/{net.prefixlen}"
    for m in seg.members:  # keep earlier allocations that still fit
        before = prior.get(f"{m['node']}:{m['ifname']}")
        if m[key] is None and before:
            ip = netaddr.IPNetwork(before)
            reserved = (net.network,) if fam is IPV6 else (net.network, net.broadcast)
            usable = two_ends or ip.ip not in reserved
            if ip.version == net.version and ip.prefixlen == net.prefixlen and ip.ip in net and usable \
                    and ip.ip not in claimed:
                claimed.add(ip.ip)
                m[key] = before
    free = (h for h in (net.iter_hosts() if not two_ends else iter(net)) if h not in claimed)
    for m in seg.members:
        if m[key] is None:
            host = next(free, None)
            if host is None:
                x.add(seg.path, f"subnet {net} of segment {seg.name} has no free address left")
                break
            m[key] = f"{host}/{net.prefixlen}"
