"""Phase "stitching": a lab placed on several build hosts, joined by VXLAN over their underlay.

Runs after the segments and tunnels phases (and before addressing) when there is more than
one build host; with one host it does nothing. What crosses hosts:

* **a veth whose two ends are on different hosts** (a node-to-node link, or a node linked
  to a bridge that lives inside a node on another host) becomes a point-to-point VXLAN:
  one device per end, made in its build host's own namespace (``underlay_netns``
  :data:`HOST_NETNS`) with ``local`` that host's underlay address and ``remote`` the
  other's, then moved into the node's (or bridge's) namespace under the end's name (the
  kernel keeps the device's UDP socket in the namespace it was made in);
* **a bridge in its own namespace with members on several hosts** is made on every host
  that has members (the same namespace and device names on each: they are separate
  machines), and the copies are joined by one VXLAN device per host, ``vxlan<VNI>``,
  plugged into the bridge, with head-end replication: no remote, and an all-zero FDB
  entry toward every other host's underlay address (``fdb``), so broadcast, multicast and
  unknown unicast reach every member. The member veths stay local.

Underlay, per build host (its inventory vars): ``topo_underlay`` (the IPv4 address VXLAN
leaves from; default ``ansible_host``) and ``topo_underlay_mtu`` (bytes; the front end
reads it from each remote host that does not set it, :func:`topo.hosts.with_underlay_mtus`;
default 1500).

VNIs: one per stitched link or bridge, from the lab's ``multihost.vni_base`` (default
10000) upwards in declaration order (links, then bridges), skipping VNIs taken, also those
other labs hold on the same build hosts (``x.foreign_vnis``); a VNI of the previous
expansion (``x.prior["vnis"]``) is kept while it is at or above the base, and refused when
another lab holds it. UDP
destination port: ``multihost.port`` (default 4789).

MTU: a stitched link or segment carries ``min(underlay MTU of its hosts) - 50`` bytes
(:data:`~topo.expand.mtu.OVERHEAD` of VXLAN); its member links take that MTU unless they
declare one, and a declared MTU above it is an error naming the numbers. User tunnels
between nodes on different hosts ride the stitched links, so the MTU phase derives their
MTU through both encapsulations.
"""

from __future__ import annotations

import netaddr

from topo.expand.mtu import OVERHEAD
from topo.expand.names import netns_name
from topo.expand.segments import bridge_netns
from topo.expand.state import Expansion

#: ``underlay_netns`` of a stitch device: the build host's own namespace (where the tunnel
#: module runs), not a named one under /run/netns.
HOST_NETNS = "/"
#: Underlay MTU of a build host that does not give ``topo_underlay_mtu`` (bytes).
DEFAULT_UNDERLAY_MTU = 1500


def underlays(x: Expansion) -> dict[str, tuple[str, int]]:
    """``{host: (underlay IPv4 address, underlay MTU)}`` of the build hosts that carry
    nodes; problems (naming the host) for a missing or non-IPv4 address or a bad MTU."""
    out = {}
    for h in dict.fromkeys(x.placement.values()):
        v = x.hosts[h]
        addr = v.get("topo_underlay") or v.get("ansible_host")
        mtu = v.get("topo_underlay_mtu", DEFAULT_UNDERLAY_MTU)
        if not isinstance(addr, str) or not netaddr.valid_ipv4(addr.strip()):
            x.problems.add(None, f"build host {h}", f"underlay address {addr!r} is not an IPv4 address; set "
                                                   "topo_underlay (or ansible_host) to the address VXLAN leaves from")
            continue
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 + OVERHEAD["vxlan"] <= mtu <= 65535:
            x.problems.add(None, f"build host {h}", f"topo_underlay_mtu {mtu!r} is not a whole number of bytes "
                                                   f"from {68 + OVERHEAD['vxlan']} to 65535")
            continue
        out[h] = (addr.strip(), mtu)
    return out


def _end_node(x: Expansion, node_ends, bridge, side: int) -> str | None:
    """The node whose namespace holds side ``side`` (0: a, 1: b) of a link's veth; None for
    the bridge-side end in a bridge's own namespace (it goes wherever its member is)."""
    if side == 0 or bridge is None:
        return node_ends[side][1].node
    return x.lab.bridges[bridge].node


def stitch(x: Expansion) -> None:
    """Fill ``x.veth_hosts``, ``x.bridge_hosts`` and ``x.stitches``, drop the veths that
    cross hosts and set the MTU of every link on a stitched segment (see the module)."""
    lab, place = x.lab, x.placement
    under = underlays(x)
    if len(under) != len(set(place.values())):
        return
    names, port = list(x.hosts), lab.multihost.port
    end_at = {e["path"]: e for items in x.ifaces.values() for e in items if e["kind"] == "veth"}

    def limit(hosts):
        low = min(under[h][1] for h in hosts)
        return low - OVERHEAD["vxlan"], low, "build hosts " + ", ".join(hosts[:-1]) + " and " + hosts[-1]

    seg_limit: dict[str, tuple[int, int, str]] = {}

    def tighten(seg, found):
        if seg not in seg_limit or found[0] < seg_limit[seg][0]:
            seg_limit[seg] = found

    # A bridge in a node is on the node's host; one in its own namespace on every host
    # with members (the first host when it has none).
    for bname, br in lab.bridges.items():
        x.bridge_hosts[bname] = [place[br.node]] if br.node else []
    for node_ends, bridge in x.resolved:
        if bridge is not None and not lab.bridges[bridge].node:
            h = place[node_ends[0][1].node]
            if h not in x.bridge_hosts[bridge]:
                x.bridge_hosts[bridge].append(h)
    for bname, hs in x.bridge_hosts.items():
        hs.sort(key=names.index)
        hs[:] = hs or [names[0]]

    wanted = []  # (key, [device]) in declaration order: links, then bridges
    carriers: dict[int, list[dict]] = {}  # link index: the dicts whose mtu is the link's
    keep_veths = []
    for i, ((node_ends, bridge), veth) in enumerate(zip(x.resolved, x.veths)):
        a_node, b_node = _end_node(x, node_ends, bridge, 0), _end_node(x, node_ends, bridge, 1)
        ha = place[a_node]
        hb = place[b_node] if b_node else ha
        if ha == hb:
            keep_veths.append(veth)
            x.veth_hosts.append(ha)
            carriers[i] = [veth["a"], veth["b"]]
            continue
        tighten(end_at[("links", i, "endpoints", node_ends[0][0])]["segment"], limit((ha, hb)))
        key = f"link {a_node}:{veth['a']['ifname']}--{b_node}:{veth['b']['ifname']}"
        devices = [_device(h, side["netns"], side["ifname"], under[h][0], under[other][0], side.get("master"),
                           [], port, key, side.get("mac"))
                   for side, h, other in ((veth["a"], ha, hb), (veth["b"], hb, ha))]
        carriers[i] = devices
        wanted.append((key, devices))
    x.veths[:] = keep_veths
    for bname, hs in x.bridge_hosts.items():
        if lab.bridges[bname].node or len(hs) < 2:
            continue
        found = limit(hs)
        tighten(x.seg_of_bridge[bname], found)
        key = f"bridge {bname}"
        devices = [_device(h, bridge_netns(x, bname), None, under[h][0], None, bname,
                           [under[o][0] for o in hs if o != h], port, key, None) for h in hs]
        for dev in devices:
            dev["mtu"] = found[0]
        wanted.append((key, devices))
        if lab.bridges[bname].mtu is not None and lab.bridges[bname].mtu > found[0]:
            x.add(("bridges", bname, "mtu"), _too_big(lab.bridges[bname].mtu, *found))
    for i, (link, (node_ends, _)) in enumerate(zip(lab.links, x.resolved)):
        ends = [end_at[("links", i, "endpoints", j)] for j, _ in node_ends]
        if ends[0]["segment"] not in seg_limit:
            continue
        found = seg_limit[ends[0]["segment"]]
        mtu = link.mtu if "mtu" in link.model_fields_set else found[0]
        if mtu > found[0]:
            x.add(("links", i, "mtu"), _too_big(mtu, *found))
        for item in ends + carriers[i]:
            item["mtu"] = mtu
    _vnis(x, wanted)


def _device(host, netns, ifname, local, remote, master, fdb, port, key, mac) -> dict:
    """One stitch device (output shape, :class:`topo.expand.shape.Stitch`); ``ifname`` None:
    ``vxlan<VNI>``, named once the VNI is known."""
    dev = {"kind": "vxlan", "host": host, "netns": netns, "ifname": ifname, "underlay_netns": HOST_NETNS,
           "local": local, "remote": remote, "mtu": None, "master": master, "ttl": None, "vni": None,
           "dstport": port, "srcport": None, "learning": True, "fdb": fdb, "stitch": key}
    if mac:
        dev["mac"] = mac
    return dev


def _too_big(declared, mtu, low, where) -> str:
    return (f"MTU {declared} does not fit the VXLAN between {where}: at most {mtu} "
            f"(underlay MTU {low} - {OVERHEAD['vxlan']} bytes of VXLAN); lower it or raise topo_underlay_mtu")


#: The largest VNI (24 bits).
MAX_VNI = 2**24 - 1


def _vnis(x: Expansion, wanted) -> None:
    """Give each stitch its VNI (kept from ``x.prior["vnis"]`` while at or above the base,
    else the next free one from ``multihost.vni_base``) and fill ``x.stitches``."""
    base, foreign = x.lab.multihost.vni_base, x.foreign_vnis
    prior = x.prior.get("vnis") or {}
    vni, taken = {}, set(foreign)
    for key, _ in wanted:
        v = prior.get(key)
        if isinstance(v, int) and v in foreign:
            x.add(("multihost",), f"VNI {v} of {key} is also lab {foreign[v]}'s on the same build hosts; "
                                  f"destroy one of them or give one another multihost.vni_base")
        elif isinstance(v, int) and base <= v <= MAX_VNI and v not in taken:
            vni[key] = v
            taken.add(v)
    nxt = base
    for key, _ in wanted:
        if key in vni:
            continue
        while nxt in taken:
            nxt += 1
        if nxt > MAX_VNI:
            x.add(("multihost", "vni_base"), f"no VNI left from {base} to {MAX_VNI} for {key}")
            return
        vni[key] = nxt
        taken.add(nxt)
    for key, devices in wanted:
        for dev in devices:
            dev["vni"] = vni[key]
            dev["ifname"] = dev["ifname"] or f"vxlan{vni[key]}"
            x.stitches.append(dev)


def hosts_of(x: Expansion, expanded: dict) -> None:
    """Add the build hosts to ``expanded`` (several hosts only; one host: unchanged):
    ``host`` on every node, veth, tunnel, impairment and interface a check's ``during:``
    takes down, ``hosts`` on every bridge, the
    ``stitches`` and the ``hosts`` themselves (:class:`topo.expand.shape.BuildHost`)."""
    if len(x.hosts) < 2:
        return
    place, lab = x.placement, x.lab.name
    under = underlays(x)
    for name, node in expanded["nodes"].items():
        node["host"] = place[name]
    for name, br in expanded["bridges"].items():
        br["hosts"] = list(x.bridge_hosts[name])
    for veth, h in zip(expanded["veths"], x.veth_hosts):
        veth["host"] = h
    ns_host = {netns_name(lab, n): h for n, h in place.items()}
    for t in expanded["tunnels"]:
        t["host"] = ns_host[t["netns"]]
    port_host = {(v[s]["netns"], v[s]["ifname"]): v["host"] for v in expanded["veths"] for s in ("a", "b")}
    port_host.update({(d["netns"], d["ifname"]): d["host"] for d in x.stitches})
    for imp in expanded["impairments"]:
        imp["host"] = ns_host.get(imp["netns"]) or port_host[(imp["netns"], imp["ifname"])]
    for check in expanded["checks"]:  # a check's during: each interface is set down on its node's host
        for down in (check.get("during") or {}).get("down", []):
            down["host"] = place[down["node"]]
    expanded["stitches"] = x.stitches
    expanded["hosts"] = {h: {"underlay": under[h][0], "underlay_mtu": under[h][1],
                             "nodes": sum(1 for p in place.values() if p == h)} for h in x.hosts if h in under}
