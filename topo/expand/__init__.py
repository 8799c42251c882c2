"""Phase 3, expand: a validated :class:`~topo.model.Lab` becomes the expanded lab.

The expanded lab is the single source of truth (DESIGN.md 3): every name, address, route
and check is decided here, deterministically (same file, byte-identical result), and the
playbooks only read it. It is plain data, also what the snapshot tests compare; its every
key, with units, is documented in :mod:`topo.expand.shape` (:class:`~topo.expand.shape.Expanded`)::

    lab, routing, features
    nodes:       {name: {kind, netns, groups, forwarding, sysctls, loopback, loopback6?,
                         interfaces: [{ifname, kind, address, address6?, mtu, segment, peer}],
                         routes: [{dst, gateway}], anycast?, container?: {image, cmd, env, binds}}}
    bridges:     {name: {netns, node, ifname, subnet, subnet6?, segment, mtu, mcast_snooping, mcast_querier, ports}}
    segments:    {name: {kind: lan|p2p, subnet, subnet6?, members: ["node:ifname", ...], bridges?, tunnels?}}
    veths:       [{a: {netns, ifname, mtu, mac?}, b: {netns, ifname, mtu, mac?, master?}}]
    tunnels:     [{kind, netns, ifname, local, remote, mtu, master, ttl, vni?, dstport?, srcport?, learning?, key?}]
    impairments: [{netns, ifname, delay, jitter, loss, rate}]
    checks:      [{type: ping, from, targets: [{node, address, expect}]}, capture, cast and iperf3 checks]
    several build hosts only: host on nodes, veths, tunnels, impairments; hosts on bridges;
    stitches:    [{kind: vxlan, host, netns, ifname, underlay_netns, local, remote, mtu, master, vni, dstport, fdb, stitch}]
    hosts:       {name: {underlay, underlay_mtu, nodes}}

The phases, one module each, in order, over one :class:`~topo.expand.state.Expansion`;
the run stops between phases when one found problems (InputError, exit 2, naming the
phase and every problem as ``file:line: field: message``):

===========  =================================================  =====================
phase        module                                             gate
===========  =================================================  =====================
references   :mod:`topo.expand.names`                           ``references``
placement    :mod:`topo.expand.placement`                       ``placement``
segments     :mod:`topo.expand.segments`, :mod:`~.tunnels`
stitching    :mod:`topo.expand.stitch` (several build hosts)    ``stitching``
subnets      :mod:`topo.expand.addressing` (subnets, pools)     ``addressing``
addresses    :mod:`topo.expand.addressing` (addresses)          ``addressing``
underlay     :mod:`topo.expand.underlay`                        ``tunnels``
routing      :mod:`topo.expand.routing`                         ``routing``
MTU          :mod:`topo.expand.mtu`                             ``tunnels``
checks       :mod:`topo.expand.checks`, :mod:`~.casts`          ``checks``
output       :mod:`topo.expand.output`
===========  =================================================  =====================

Addressing follows netlab's model: an explicit address or subnet wins; otherwise a LAN
(bridge) segment takes the next free subnet of the ``lan`` pool, a point-to-point link one
of the ``p2p`` pool, and a node with ``loopback: true`` a /32 of the ``loopback`` pool.
Pools are walked lazily and skip every subnet that overlaps one already taken. The lab's
``af`` (default ``[ipv4]``) says which families the pools hand out; the keys marked ``?``
above (IPv6: address6, loopback6, subnet6) exist only in a lab that has IPv6
(:attr:`topo.model.Lab.has_ipv6`), so an IPv4-only lab expands as it always did.

Names: a node or bridge lives in namespace ``topo-<lab>-<name>``; a bridge's device is
named after the bridge; the bridge-side end of a node's veth is ``<node>-<ifname>``, or
``p`` + 8 hex digits of its SHA-1 when that is longer than 15 characters (IFNAMSIZ).
"""

from __future__ import annotations

from topo.errors import Problems
from topo.expand import (addressing, checks, mtu, names, output, placement, routing, segments, stitch, tunnels,
                         underlay)
from topo.expand.names import IFNAMSIZ, NS_PREFIX, RESERVED, netns_name, port_name
from topo.expand.mtu import OVERHEAD
from topo.expand.shape import Expanded
from topo.expand.state import Expansion
from topo.model import Lab

__all__ = ["expand", "previous_allocation", "netns_name", "port_name", "Expanded", "Expansion",
           "IFNAMSIZ", "NS_PREFIX", "OVERHEAD", "RESERVED"]


def previous_allocation(expanded: dict | None) -> dict:
    """What an expansion allocated, for a later :func:`expand` to keep:
    ``{"segments": {name: subnet}, "addresses": {"node:ifname": cidr}, "loopbacks": {node: cidr},
    "segments6": ..., "addresses6": ..., "loopbacks6": ...}`` (the ``6`` maps: IPv6, empty
    when the earlier expansion had none), and when the lab was placed on several build hosts
    ``"placement": {node: host}`` and ``"vnis": {stitch: VNI}``. Given that dict itself,
    returns it."""
    keys = ("segments", "addresses", "loopbacks", "segments6", "addresses6", "loopbacks6")
    if not expanded:
        return {k: {} for k in keys}
    if "addresses" in expanded:
        return {k: {} for k in keys} | expanded
    nodes = expanded.get("nodes") or {}
    segments = expanded.get("segments") or {}
    spread = {}
    if expanded.get("stitches") is not None:
        spread = {"placement": {n: node["host"] for n, node in nodes.items() if node.get("host")},
                  "vnis": {s["stitch"]: s["vni"] for s in expanded["stitches"]}}
    return spread | {
        "segments": {name: s.get("subnet") for name, s in segments.items()},
        "addresses": {f"{n}:{i['ifname']}": i["address"] for n, node in nodes.items()
                      for i in node.get("interfaces") or [] if i.get("address")},
        "loopbacks": {n: node.get("loopback") for n, node in nodes.items()},
        "segments6": {name: s["subnet6"] for name, s in segments.items() if s.get("subnet6")},
        "addresses6": {f"{n}:{i['ifname']}": i["address6"] for n, node in nodes.items()
                       for i in node.get("interfaces") or [] if i.get("address6")},
        "loopbacks6": {n: node["loopback6"] for n, node in nodes.items() if node.get("loopback6")},
    }


def expand(lab: Lab, previous: dict | None = None, hosts: dict | None = None,
           foreign_vnis: dict | None = None) -> Expanded:
    """Expand ``lab`` (validated by :func:`topo.model.resolve`, which gives it its source
    positions); raises InputError with every problem of the first phase that has any.

    ``previous`` is an earlier expanded lab of the same name (the lab directory's
    expanded.yml), or its :func:`previous_allocation`. Pool allocations in it are kept where
    they still fit, so editing a lab (adding or removing a node) does not renumber the nodes
    that were not edited. The result is a function of (file, previous) alone: deterministic
    either way.

    ``hosts`` are the build hosts, ``{name: vars}`` in inventory order
    (:func:`topo.inventory.build_hosts`); default one host, ``localhost``, on which the lab
    expands exactly as it always has. With several, the nodes are placed
    (:mod:`~topo.expand.placement`, sticky through ``previous`` too) and what crosses hosts
    is stitched with VXLAN (:mod:`~topo.expand.stitch`). ``foreign_vnis`` ``{VNI: lab}``:
    the VNIs other labs hold on the same build hosts; new stitches skip them, and a kept VNI
    among them is refused (before anything is built).
    """
    x = Expansion(lab, previous_allocation(previous), Problems(lab.source.file),
                  hosts=dict(hosts) if hosts else {"localhost": {}}, foreign_vnis=dict(foreign_vnis or {}))
    names.references(x)
    x.gate("references")
    placement.placement(x)
    x.gate("placement")
    segments.segments(x)
    tunnels.tunnels(x)
    segments.check_ports(x)
    if len(x.hosts) > 1:
        stitch.stitch(x)
        x.gate("stitching")
    addressing.subnets(x)
    x.gate("addressing")
    addressing.pools(x)
    x.gate("addressing")
    addressing.addresses(x)
    x.gate("addressing")
    underlay.underlay(x)
    x.gate("tunnels")
    underlay.remotes(x)
    routing.routing(x)
    x.gate("routing")
    mtu.tunnel_mtus(x)
    x.gate("tunnels")
    output.nodes(x)
    found = checks.checks(x)
    x.gate("checks")
    expanded = output.result(x, found)
    stitch.hosts_of(x, expanded)
    return expanded
