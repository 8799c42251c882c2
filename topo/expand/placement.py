"""Phase "placement": which build host each node is made on (``x.placement``).

One build host (the default, ``localhost``): every node is on it and nothing else changes.
Several build hosts (``x.hosts``, the build-host inventory's ``topo_hosts`` in its order):

1. **explicit** - ``host: NAME`` on a node (YAML key, CSV column ``host``) wins; a name that
   is not a build host is an error (``file:line: nodes.NODE.host``);
2. **sticky** - a node not placed explicitly keeps the host of the previous expansion
   (``x.prior["placement"]``, see :func:`topo.expand.previous_allocation`) while that host
   is still in the inventory, so adding a node never moves the others;
3. **automatic** - the rest, greedily, deterministic for a given file, inventory and prior:

   * each host may take ``ceil(N * weight / total weight)`` nodes (N: every node of the lab;
     weight: the host's ``topo_weight``, default 1);
   * nodes are visited breadth-first over the lab's graph (links and bridges, from the first
     declared node), grouped into *units*: the nodes that share a bridge (and the node a
     bridge lives in) form one unit, any other node is a unit of its own;
   * a unit goes whole to the host with room for it that already holds most of its
     neighbours (then the least loaded by weight, then inventory order);
   * a unit too big for any host's room is split: its nodes go one by one, in
     breadth-first order, each to the host with room that holds most of its neighbours
     (link peers and bridge mates) - so a bridge spans as few hosts as balance allows;
   * when every host is full (explicit placements overfill them), the least loaded by
     weight takes the node.

A node may not share its name with a build host (both are hosts of one Ansible inventory).
"""

from __future__ import annotations

import math
from collections import deque

from topo.expand.state import Expansion


def host_weight(x: Expansion, host: str) -> float | None:
    """The ``topo_weight`` of build host ``host`` (default 1); None (and a problem) when it
    is not a positive number."""
    w = x.hosts[host].get("topo_weight", 1)
    if isinstance(w, bool) or not isinstance(w, (int, float, str)):
        w = None
    try:
        w = float(w) if w is not None else None
    except ValueError:
        w = None
    if w is None or not w > 0 or math.isinf(w):
        x.problems.add(None, f"build host {host}", f"topo_weight {x.hosts[host].get('topo_weight')!r} "
                                                   "is not a positive number")
        return None
    return w


def _graph(x: Expansion):
    """(``peers`` {node: [node]} of point-to-point links, ``bridges_of`` {node: [bridge]},
    ``members`` {bridge: [node]}) of the lab's links and bridges."""
    lab = x.lab
    peers = {n: [] for n in lab.nodes}
    bridges_of = {n: [] for n in lab.nodes}
    members = {b: ([br.node] if br.node else []) for b, br in lab.bridges.items()}
    for b, br in lab.bridges.items():
        if br.node:
            bridges_of[br.node].append(b)
    for node_ends, bridge in x.resolved:
        nodes = [ep.node for _, ep in node_ends]
        if bridge is None:
            a, b = nodes
            peers[a].append(b)
            peers[b].append(a)
        else:
            if nodes[0] not in members[bridge]:
                members[bridge].append(nodes[0])
                bridges_of[nodes[0]].append(bridge)
    for tunnel in lab.tunnels:  # bridges joined by a tunnel are one segment: keep them near
        if tunnel.outside:
            continue
        a, b = (ep.node for ep in tunnel.endpoints)
        peers[a].append(b)
        peers[b].append(a)
    return peers, bridges_of, members


def _order(x: Expansion, peers, bridges_of, members) -> list[str]:
    """The nodes breadth-first over links and bridges, each component from its first
    declared node."""
    seen, order = set(), []
    for start in x.lab.nodes:
        if start in seen:
            continue
        seen.add(start)
        queue = deque([start])
        while queue:
            n = queue.popleft()
            order.append(n)
            nxt = list(peers[n]) + [m for b in bridges_of[n] for m in members[b]]
            for m in nxt:
                if m not in seen:
                    seen.add(m)
                    queue.append(m)
    return order


def placement(x: Expansion) -> None:
    """Fill ``x.placement`` ``{node: build host}`` (see the module's rules); problems for
    unknown hosts, bad weights and nodes named like a build host."""
    lab, names = x.lab, list(x.hosts)
    explicit = {}
    for n, node in lab.nodes.items():
        if node.host is None:
            continue
        if node.host in x.hosts:
            explicit[n] = node.host
        else:
            x.add(("nodes", n, "host"), f"{node.host} is not a build host (the build hosts: {', '.join(names)})")
    if len(names) == 1:
        x.placement = {n: names[0] for n in lab.nodes}
        return
    for n in lab.nodes:
        if n in x.hosts:
            x.add(("nodes", n), f"node {n} has the name of a build host; rename the node or the host "
                                "(both are hosts of the lab's inventory)")
    weights = {h: host_weight(x, h) for h in names}
    if None in weights.values():
        return
    prior = (x.prior.get("placement") or {})
    place = dict(explicit)
    for n in lab.nodes:
        if n not in place and prior.get(n) in x.hosts:
            place[n] = prior[n]
    total = sum(weights.values())
    cap = {h: math.ceil(len(lab.nodes) * weights[h] / total) for h in names}
    load = {h: 0 for h in names}
    peers, bridges_of, members = _graph(x)
    on_bridge = {b: {h: 0 for h in names} for b in members}

    def put(n, h):
        place[n] = h
        load[h] += 1
        for b in bridges_of[n]:
            on_bridge[b][h] += 1

    for n, h in list(place.items()):
        place.pop(n)
        put(n, h)

    def near(n, h):
        return sum(place.get(p) == h for p in peers[n]) + sum(on_bridge[b][h] for b in bridges_of[n])

    def best(hosts, score):
        return min(hosts, key=lambda h: (-score(h), load[h] / weights[h], names.index(h)))

    order = _order(x, peers, bridges_of, members)
    unit_of = {n: n for n in lab.nodes}

    def root(n):
        while unit_of[n] != n:
            n = unit_of[n]
        return n

    for b, ms in members.items():
        for m in ms[1:]:
            ra, rb = root(ms[0]), root(m)
            if ra != rb:
                unit_of[max(ra, rb, key=order.index)] = min(ra, rb, key=order.index)
    units: dict[str, list[str]] = {}
    for n in order:
        units.setdefault(root(n), []).append(n)
    for unit in units.values():
        free = [n for n in unit if n not in place]
        if not free:
            continue
        room = [h for h in names if cap[h] - load[h] >= len(free)]
        if room:
            h = best(room, lambda h: sum(near(n, h) for n in free))
            for n in free:
                put(n, h)
            continue
        for n in free:
            room = [h for h in names if load[h] < cap[h]]
            put(n, best(room, lambda h: near(n, h)) if room
                else min(names, key=lambda h: (load[h] / weights[h], names.index(h))))
    x.placement = {n: place[n] for n in lab.nodes}
