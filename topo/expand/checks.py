"""Phase "checks": what ``verify:`` proves once the lab is built.

Ping checks (declared, or by default every node to every address it should reach),
capture checks (a ping while tcpdump listens on an interface) here; cast and iperf3 checks
in :mod:`topo.expand.casts`. Check names are unique (they name capture files and report rows).
"""

from __future__ import annotations

import functools

import netaddr

from topo.expand.casts import expand_check
from topo.expand.state import Expansion


def checks(x: Expansion) -> list[dict]:
    """The expanded checks, in ``verify:`` order after the pings (see
    :class:`topo.expand.shape.PingCheck` and its siblings). Pings: the declared ones, or
    every node to every address it should reach, of both families (with ``to: all``, only
    the addresses on segments it has a path to in that family). Targets are in address
    order, IPv4 first. Reads ``x.out_nodes``, ``x.reach``, ``x.reach_segments``,
    ``x.reach_segments6``."""
    lab, out_nodes, reach = x.lab, x.out_nodes, x.reach

    def addresses(node, src=None):
        """``node``'s addresses, no length: IPv4 (interfaces, then loopback), then IPv6; with
        ``src``, only those ``src`` has a path to."""
        n = out_nodes[node]
        addrs = []
        for key, lo, reach_segments in (("address", "loopback", x.reach_segments),
                                        ("address6", "loopback6", x.reach_segments6)):
            seen = reach_segments[src] if src else None
            addrs += [i[key].split("/")[0] for i in n["interfaces"]
                      if i.get(key) and (seen is None or i["segment"] in seen)]
            if n.get(lo) and (seen is None or f"lo:{node}" in seen):
                addrs.append(n[lo].split("/")[0])
        return addrs

    wanted: dict[str, dict[str, str]] = {}
    during_pings: list[dict] = []
    declared = lab.verify if lab.verify is not None else [None]
    captures = []
    check_names: dict[str, int] = {}
    for k, check in enumerate(declared):
        if check is not None and check.capture is not None:
            captures.append(_capture_check(x, k, check.capture, addresses))
            continue
        if check is not None and check.kind != "ping":
            expanded = expand_check(x, k, check)
            during = _during(x, k, check.kind, getattr(check, check.kind))
            if expanded and during:
                expanded["during"] = during
                expanded["description"] += f" with {', '.join(d['on'] for d in during['down'])} down"
            if expanded and expanded["name"] in check_names:
                x.add(("verify", k), f"another check (verify[{check_names[expanded['name']]}]) is named {expanded['name']!r}; "
                  "check names must be unique (they name capture files and report rows)",
                  field=("verify", k, check.kind, "name"))
            elif expanded:
                check_names[expanded["name"]] = k
            captures.append(expanded)
            continue
        ping = check.ping if check is not None else None
        srcs = sorted(out_nodes) if ping is None or ping.from_ == "all" else ping.from_
        dsts = sorted(out_nodes) if ping is None or ping.to == "all" else ping.to
        expect = ping.expect if ping is not None else "pass"
        for key, names in (("from", srcs), ("to", dsts)):
            for n in names:
                if n not in out_nodes:
                    x.add(("verify", k, "ping", key), f"unknown node {n!r}")
        with_down = ping is not None and ping.during is not None
        # a ping with links down runs on its own (one check per source), not in the batch
        bucket: dict[str, dict[str, tuple[str, str]]] = {} if with_down else wanted
        for s in srcs:
            for d in dsts:
                if s == d or s not in out_nodes or d not in out_nodes:
                    continue
                implicit = expect == "pass" and (ping is None or ping.to == "all")
                if implicit and d not in reach[s]:
                    continue  # "all" means every node this one should reach
                for addr in addresses(d, s if implicit else None):
                    bucket.setdefault(s, {})[addr] = (d, expect)
        during = _during(x, k, "ping", ping) if with_down else None
        if during:
            during_pings += [{"type": "ping", "from": s, "targets": _targets(targets), "during": during}
                             for s, targets in sorted(bucket.items())]
    pings = [{"type": "ping", "from": s, "targets": _targets(wanted[s])} for s in sorted(wanted)]
    return pings + during_pings + [c for c in captures if c]


def _targets(wanted: dict[str, tuple[str, str]]) -> list[dict]:
    """Ping targets ``[{node, address, expect}]`` of ``{address: (node, expect)}``, in address order."""
    return [{"node": d, "address": a, "expect": e}
            for a, (d, e) in sorted(wanted.items(), key=lambda t: _address_key(t[0]))]


def _during(x: Expansion, k: int, kind: str, spec) -> dict | None:
    """The expanded ``during`` of the check ``spec`` at ``verify[k]`` (see
    :class:`topo.model.During`): ``{down: [{on: "node:iface", node, link: {netns, ifname},
    host?}]}`` (``link``: as topo.lab.link takes it; ``host``: the node's build host, several
    build hosts only); None when the check has
    none or names an interface the lab does not have (reported on ``x`` with what exists)."""
    if spec is None or getattr(spec, "during", None) is None:
        return None
    down, ok = [], True
    for j, on in enumerate(spec.during.down):
        where = ("verify", k, kind, "during", "down", j)
        node, ifname = on.split(":", 1)
        n = x.out_nodes.get(node)
        if n is None:
            x.add(where, f"unknown node {node!r} (nodes: {', '.join(sorted(x.out_nodes))})")
            ok = False
            continue
        known = [i["ifname"] for i in n["interfaces"]]
        if ifname not in known:
            x.add(where, f"node {node} has no interface {ifname!r} ({', '.join(known) or 'none'})")
            ok = False
            continue
        if any(d["on"] == on for d in down):
            x.add(where, f"{on} is listed twice")
            ok = False
            continue
        down.append({"on": on, "node": node, "link": {"netns": n["netns"], "ifname": ifname},
                     **({"host": n["host"]} if n.get("host") else {})})
    return {"down": down} if ok else None


@functools.lru_cache(maxsize=4096)
def _address_key(address: str) -> tuple[int, int]:
    """Sort key of an address without length: IPv4 before IPv6, then by value. Cached: a
    lab's N ping sources sort the same N-1 addresses each (2,450 parses for a 50-node star)."""
    ip = netaddr.IPAddress(address)
    return ip.version, int(ip)


#: Layers that mean "encapsulated": a capture expecting one pins the inner addresses.
TUNNEL_LAYERS = {"GRE", "VXLAN"}


def _capture_check(x: Expansion, k: int, cap, addresses) -> dict | None:
    """The expanded form of ``capture`` check ``cap`` at ``verify[k]`` (see the topo.lab.capture
    module and :class:`topo.expand.shape.CaptureCheck`); None, with problems reported, when
    it refers to what does not exist."""
    out_nodes = x.out_nodes
    where = ("verify", k, "capture")
    node, ifname = cap.on.split(":", 1)
    unknown = [(key, name) for key, name in (("on", node), ("ping.from", cap.ping.from_), ("ping.to", cap.ping.to))
               if name not in out_nodes]
    for key, name in unknown:
        x.add(where, f"unknown node {name!r}", field=where + tuple(key.split(".")))
    if unknown:
        return None
    known = [i["ifname"] for i in out_nodes[node]["interfaces"]] + ["lo", "any"]
    if ifname not in known:
        x.add(where, f"node {node} has no interface {ifname} ({', '.join(known)})", field=where + ("on",))
        return None
    src, dst = addresses(cap.ping.from_), addresses(cap.ping.to)
    if not src or not dst:
        x.add(where, "both nodes of the ping need an address", field=where + ("ping",))
        return None
    expect = cap.expect.model_dump(exclude_none=True)
    if TUNNEL_LAYERS & set(cap.expect.layers):
        expect.update(inner_src=src[0], inner_dst=dst[0])
    return {"type": "capture", "name": f"{node}-{ifname}-{k}", "node": node, "interface": ifname,
            "netns": out_nodes[node]["netns"], "filter": cap.filter,
            "traffic": [{"netns": out_nodes[cap.ping.from_]["netns"],
                         "argv": ["ping", "-c", str(cap.ping.count), "-i", "0.2", "-W", "1", dst[0]]}],
            "description": f"ping {cap.ping.from_} -> {cap.ping.to} {dst[0]}", "expect": expect}
