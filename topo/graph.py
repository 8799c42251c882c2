"""The drawing of a lab: Graphviz (DOT, SVG, PNG), Mermaid, and one self-contained HTML page.

Input is the expanded lab (:func:`topo.expand.expand`'s plain dict; only the keys ``lab``,
``nodes``, ``bridges``, ``tunnels`` and ``impairments`` are read). What is drawn:

- a node is a vertex shaped by its kind: a namespace host is a rounded box, a Docker node a
  3-D box, a router (``forwarding: true``) an octagon (a Docker router a double octagon);
  its fill is the colour of its first user group (several groups: a gradient of the first
  two), explained in the legend at the top;
- a bridge is a LAN segment, a grey ellipse with its subnet (and IPv6 subnet); a bridge inside a node's
  namespace (``bridges.X.node``) is tied to that node by a dotted line;
- a point-to-point veth is an edge labelled at each end with that end's interface and
  address (IPv4, then IPv6 when it has one); a node's port on a bridge is an edge labelled
  with the node's interface and addresses;
- a tunnel is a dashed edge labelled with its type and VNI (vxlan) or key (gre, gretap),
  its end interface names (and overlay addresses) at its ends; an L2 tunnel plugged into
  bridges joins those bridges, an L3 one its two nodes; a tunnel whose other end is
  outside the lab goes to a dashed box ``outside <remote address>`` (kind ``outside``);
- an impaired link is drawn orange with its impairments (delay, jitter, loss, rate);
- with ``hosts`` (``{node or bridge: build host}``), one cluster per build host, and links
  whose ends are on two hosts drawn red and labelled ``cross-host``.

The drawing is deterministic: the same lab gives byte-identical DOT and Mermaid (vertices
and edges in the lab's order, colours by first appearance of a group).

:func:`dot_source` gives the DOT text; :func:`render` writes a file by its suffix;
:func:`address_plan` gives the rows of the lab's address plan (also in the HTML page).
Rendering SVG, PNG or HTML runs Graphviz's ``dot`` program (Debian package ``graphviz``);
without it :class:`~topo.errors.EnvironmentProblem` names the fix.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field

from ansible_collections.topo.lab.plugins.module_utils.api import fmt_bps
from topo.errors import EnvironmentProblem, UsageError

#: The suffixes :func:`render` writes, and what each holds.
FORMATS = {
    ".dot": "Graphviz DOT source",
    ".svg": "SVG image (Graphviz dot)",
    ".png": "PNG image (Graphviz dot)",
    ".mmd": "Mermaid flowchart source (for Markdown)",
    ".html": "one self-contained HTML page: the SVG, each node's interfaces on hover, the address plan",
}

#: Fill colours of user groups, in order of first appearance (ColorBrewer Set3 and Pastel1:
#: light enough for black text).
PALETTE = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
           "#bc80bd", "#ccebc5", "#ffed6f", "#decbe4", "#fed9a6", "#e5d8bd", "#b3cde3", "#f2f2f2")
BRIDGE_FILL = "#d9d9d9"
IMPAIRED = "#d55e00"  # Okabe-Ito vermillion
CROSS_HOST = "#cc0000"
TUNNEL = "#0072b2"  # Okabe-Ito blue
FONT = "Helvetica"


class GraphError(UsageError, ValueError):
    """What was asked cannot be drawn: an unknown output suffix, a ``hosts`` placement naming
    no node or bridge of the lab. A :class:`ValueError`, and a usage error for the CLI (exit 2)."""


# --- the drawing, independent of the output format ----------------------------------------

@dataclass
class _Vertex:
    """A node or a bridge: ``kind`` is netns, docker or bridge; or a tunnel's peer outside the
    lab: ``outside``."""

    name: str
    kind: str
    router: bool = False
    groups: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # label lines under the name
    info: list[str] = field(default_factory=list)  # interfaces, for tooltips and hover
    host: str | None = None


@dataclass
class _End:
    """One end of an edge: the vertex it touches, and the interface there (if any)."""

    vertex: str
    node: str | None = None  # the node owning the interface (a bridged tunnel's end: its node)
    ifname: str | None = None
    address: str | None = None
    host: str | None = None
    address6: str | None = None

    def text(self) -> str:
        """``eth0 10.1.0.1/30`` (what labels the end), empty for a bridge's side."""
        return " ".join(x for x in (self.ifname, self.address) if x)

    def texts(self) -> list[str]:
        """The end's label lines: ``node eth0 10.1.0.1/30``, then its IPv6 address alone
        when it has one."""
        return [f"{self.node} {self.text()}".strip()] + ([self.address6] if self.address6 else [])


@dataclass
class _Edge:
    """kind: link (veth between nodes), port (node to bridge), tunnel, or home (a bridge to
    the node whose namespace holds it)."""

    kind: str
    a: _End
    b: _End
    title: str = ""  # the middle label: a tunnel's type and VNI/key
    impair: str = ""  # the impairments' text, empty when none
    tooltip: str = ""

    @property
    def cross(self) -> bool:
        """Whether the ends sit on two different build hosts."""
        return bool(self.a.host and self.b.host and self.a.host != self.b.host)

    def label(self) -> list[str]:
        """The edge's label, a line each: ``cross-host``, the tunnel's type and VNI/key, each
        node end's ``node ifname address`` (a port: the node's end only), the impairments.
        All in the middle of the edge: dot keeps middle labels clear of each other (it does
        not do so for labels at the ends)."""
        lines = (["cross-host"] if self.cross else []) + ([self.title] if self.title else [])
        lines += [line for x in (self.a, self.b) if x.node for line in x.texts()]
        return lines + ([self.impair] if self.impair else [])


@dataclass
class _Drawing:
    """What every output format draws: the vertices by name, the edges, the group colours."""

    lab: str
    vertices: dict[str, _Vertex]
    edges: list[_Edge]
    colours: dict[str, str]  # group -> fill
    hosts: list[str]  # build hosts in order of first appearance; empty: no clusters


def _num(value) -> str:
    """A number without a needless fraction: 50.0 -> ``50``, 2.5 -> ``2.5``."""
    return f"{value:g}"


def impairment_text(imp: dict) -> str:
    """One impairment (``{delay, jitter (ms), loss (%), rate (bit/s)}``, None for unset) as
    text: ``delay 50 ms ±5 ms, loss 1%, rate 20 Mbit/s``; empty when nothing is set."""
    parts = []
    if imp.get("delay") is not None or imp.get("jitter") is not None:
        parts.append(f"delay {_num(imp.get('delay') or 0)} ms"
                     + (f" ±{_num(imp['jitter'])} ms" if imp.get("jitter") else ""))
    if imp.get("loss") is not None:
        parts.append(f"loss {_num(imp['loss'])}%")
    if imp.get("rate") is not None:
        parts.append(f"rate {fmt_bps(imp['rate'])}")
    return ", ".join(parts)


def _split(ref: str | None) -> tuple[str | None, str | None]:
    """``"node:ifname"`` -> ``(node, ifname)``; ``(None, None)`` for None or no colon."""
    if not ref or ":" not in ref:
        return None, None
    left, _, right = ref.partition(":")
    return left, right


def _drawing(expanded: dict, hosts: dict | None) -> _Drawing:
    """The vertices and edges of ``expanded`` (see the module docstring)."""
    nodes = expanded.get("nodes") or {}
    bridges = expanded.get("bridges") or {}
    hosts = dict(hosts or {})
    unknown = sorted(set(hosts) - set(nodes) - set(bridges))
    if unknown:
        raise GraphError(f"hosts names {', '.join(unknown)}: not a node or bridge of lab {expanded.get('lab')}")

    colours: dict[str, str] = {}
    vertices: dict[str, _Vertex] = {}
    for name, node in nodes.items():
        for g in node.get("groups") or []:
            colours.setdefault(g, PALETTE[len(colours) % len(PALETTE)])
        lines = []
        for lo in (node.get("loopback"), node.get("loopback6")):
            if lo:
                lines.append(f"lo {lo}")
        for a in node.get("anycast") or []:
            lines.append(f"anycast {a}")
        kind = node.get("kind") or "netns"
        role = "router" if node.get("forwarding") else "host"
        info = [f"{name}: {kind} {role}" + (f", groups {', '.join(node['groups'])}" if node.get("groups") else "")
                + (f", image {node['container']['image']}" if (node.get("container") or {}).get("image") else "")]
        info += [f"  {row['ifname']} {_both(row) or '(no address)'}"
                 + (f" - {row['peer']}" if row["peer"] else "") for row in address_plan({"nodes": {name: node}})]
        vertices[name] = _Vertex(name, kind, bool(node.get("forwarding")), list(node.get("groups") or []),
                                 lines, info, hosts.get(name))

    def port_hosts(bridge):
        return {hosts.get(n) for n in nodes for i in nodes[n].get("interfaces") or []
                if _split(i.get("peer"))[0] == bridge}

    for name, br in bridges.items():
        host = hosts.get(name) or hosts.get(br.get("node"))
        if host is None and hosts:
            on = port_hosts(name)
            host = on.pop() if len(on) == 1 else None
        lines = [s for s in (br.get("subnet"), br.get("subnet6")) if s]
        info = [f"{name}: bridge {br.get('ifname') or name}" + (f" in {br['node']}" if br.get("node") else "")
                + "".join(f", {s}" for s in lines),
                f"  ports {', '.join(br.get('ports') or []) or '-'}"]
        vertices[name] = _Vertex(name, "bridge", lines=lines, info=info, host=host)

    netns_of = {n["netns"]: name for name, n in nodes.items() if n.get("netns")}
    tunnels = {(t.get("netns"), t.get("ifname")): t for t in expanded.get("tunnels") or []}
    impaired: dict[tuple, str] = {}  # (vertex, ifname) -> text
    bridge_netns = {(b.get("netns"), name) for name, b in bridges.items()}
    for imp in expanded.get("impairments") or []:
        text = impairment_text(imp)
        if not text:
            continue
        if imp.get("netns") in netns_of:
            impaired[(netns_of[imp["netns"]], imp["ifname"])] = text
        for ns, bname in bridge_netns:  # a bridge's port (the bridge may live in a node's netns)
            if ns == imp.get("netns") and imp["ifname"] in (bridges[bname].get("ports") or []):
                impaired[(bname, imp["ifname"])] = text

    def end(vertex, node, ifname, address, address6=None):
        return _End(vertex, node, ifname, address, vertices[vertex].host if vertex in vertices else None, address6)

    def impair_of(keys):
        """The impairments of an edge's ends ``[(label, (vertex, ifname))]``: one text when
        every end has the same, else each impaired end's, named."""
        texts = [(label, impaired[k]) for label, k in keys if k in impaired]
        if not texts:
            return ""
        if len(texts) == len(keys) and len({t for _, t in texts}) == 1:
            return texts[0][1]
        return "; ".join(f"{label}: {t}" for label, t in texts)

    edges: list[_Edge] = []
    seen: set[frozenset] = set()
    for name, node in nodes.items():
        for i in node.get("interfaces") or []:
            ifname, peer = i["ifname"], i.get("peer")
            other, other_if = _split(peer)
            key = frozenset((f"{name}:{ifname}", peer or f"{name}:{ifname}"))
            if key in seen:
                continue
            seen.add(key)
            tunnel = tunnels.get((node.get("netns"), ifname))
            peer_if = next((j for j in (nodes.get(other) or {}).get("interfaces") or []
                            if j["ifname"] == other_if), {})
            a = end(name, name, ifname, i.get("address"), i.get("address6"))
            here = (f"{name}:{ifname}", (name, ifname))
            if tunnel is not None and peer is None:  # the other end is outside the lab: a box for it
                far_name = f"outside {tunnel.get('remote')}"
                vertices.setdefault(far_name, _Vertex(far_name, "outside", lines=["not built by topo"],
                                                      info=[f"{far_name}: a tunnel peer outside the lab"]))
                a.vertex = tunnel.get("master") or name
                title = _tunnel_title(tunnel)
                edges.append(_Edge("tunnel", a, end(far_name, None, None, None), title, impair_of([here]),
                                   f"{title}: {name}:{ifname} - outside peer, underlay {tunnel.get('local')} - "
                                   f"{tunnel.get('remote')}"))
            elif tunnel is not None and other in nodes:
                # an L2 tunnel plugged into bridges joins them; its ends' hosts are its nodes'
                far = tunnels.get((nodes[other].get("netns"), other_if)) or {}
                a.vertex = tunnel.get("master") or name
                b = end(far.get("master") or other, other, other_if, peer_if.get("address"), peer_if.get("address6"))
                b.host = vertices[other].host
                kind = tunnel.get("kind") or "tunnel"
                title = _tunnel_title(tunnel)
                under = f"udp/{tunnel.get('dstport')}" if kind == "vxlan" else kind
                edges.append(_Edge("tunnel", a, b, title, impair_of([here, (peer, (other, other_if))]),
                                   f"{title}: {name}:{ifname} - {peer}, underlay {tunnel.get('local')} - "
                                   f"{tunnel.get('remote')} {under}"))
            elif other in bridges:
                edges.append(_Edge("port", a, end(other, None, other_if, None), "",
                                   impair_of([here, (f"{other} port {other_if}", (other, other_if))]),
                                   f"{name}:{ifname} {_both(i) or ''} on bridge {other} (port {other_if})"))
            elif other in nodes:
                b = end(other, other, other_if, peer_if.get("address"), peer_if.get("address6"))
                edges.append(_Edge("link", a, b, "", impair_of([here, (peer, (other, other_if))]),
                                   f"{name}:{ifname} {_both(i) or ''} - {peer} {_both(peer_if) or ''}"))
    for name, br in bridges.items():
        if br.get("node") in nodes:
            edges.append(_Edge("home", end(br["node"], None, None, None), end(name, None, None, None),
                               tooltip=f"bridge {name} lives in {br['node']}'s namespace"))
    order = []
    for v in vertices.values():
        if v.host and v.host not in order:
            order.append(v.host)
    return _Drawing(expanded.get("lab") or "lab", vertices, edges, colours, order)


def _tunnel_title(tunnel: dict) -> str:
    """A tunnel edge's middle label: ``vxlan VNI 42``, ``gre``, ``gretap key 7``."""
    kind = tunnel.get("kind") or "tunnel"
    if kind == "vxlan":
        return f"vxlan VNI {tunnel.get('vni')}"
    return kind + (f" key {tunnel['key']}" if tunnel.get("key") is not None else "")


def _both(item: dict) -> str | None:
    """An interface's (or plan row's) addresses as one text: IPv4, then IPv6; None without."""
    return " ".join(a for a in (item.get("address"), item.get("address6")) if a) or None


def address_plan(expanded: dict) -> list[dict]:
    """The lab's address plan, one row per node interface in the lab's order:
    ``[{node, ifname, address, segment, peer}]`` (address, segment and peer None when unset;
    a tunnel end whose peer is outside the lab: peer ``outside <remote address>``);
    a node's loopback and anycast addresses come after its interfaces as ifname ``lo``.
    In a lab with IPv6 (its interfaces have ``address6``) every row also has ``address6``
    (the interface's IPv6 address; for ``lo``, the IPv6 loopback, or an IPv6 anycast
    address on a row of its own)."""
    rows = []
    remotes = {(t.get("netns"), t.get("ifname")): t.get("remote") for t in expanded.get("tunnels") or []}
    for name, node in (expanded.get("nodes") or {}).items():
        v6 = "loopback6" in node
        for i in node.get("interfaces") or []:
            peer = i.get("peer")
            if peer is None and (node.get("netns"), i["ifname"]) in remotes:  # a tunnel to a peer outside the lab
                peer = f"outside {remotes[(node.get('netns'), i['ifname'])]}"
            rows.append({"node": name, "ifname": i["ifname"], "address": i.get("address"),
                         **({"address6": i.get("address6")} if v6 else {}),
                         "segment": i.get("segment"), "peer": peer})
        if v6:
            pairs = [(node.get("loopback"), node.get("loopback6"))] if node.get("loopback") or node.get("loopback6") else []
            pairs += [(None, a) if ":" in a else (a, None) for a in node.get("anycast") or []]
            rows += [{"node": name, "ifname": "lo", "address": a4, "address6": a6, "segment": None, "peer": None}
                     for a4, a6 in pairs]
            continue
        for address in ([node["loopback"]] if node.get("loopback") else []) + list(node.get("anycast") or []):
            rows.append({"node": name, "ifname": "lo", "address": address, "segment": None, "peer": None})
    return rows


# --- DOT ----------------------------------------------------------------------------------

def _shape(v: _Vertex) -> str:
    if v.kind == "bridge":
        return "ellipse"
    if v.router:
        return "doubleoctagon" if v.kind == "docker" else "octagon"
    return "box3d" if v.kind == "docker" else "box"


def _fill(v: _Vertex, colours: dict) -> str:
    if v.kind == "bridge":
        return BRIDGE_FILL
    fills = [colours[g] for g in v.groups]
    return ":".join(fills[:2]) if fills else "white"


def _legend(d: _Drawing) -> str:
    """The graph's HTML-like label: the lab's name, what the shapes and lines mean, the groups."""
    kinds = {(v.kind, v.router) for v in d.vertices.values()}
    shapes = [text for present, text in (
        (("netns", False) in kinds, "rounded box: namespace host"),
        (("docker", False) in kinds, "3-D box: Docker node"),
        (("netns", True) in kinds, "octagon: router"),
        (("docker", True) in kinds, "double octagon: Docker router"),
        (any(k == "bridge" for k, _ in kinds), "grey ellipse: bridge (LAN)"),
        (any(e.kind == "tunnel" for e in d.edges), "dashed: tunnel"),
        (any(k == "outside" for k, _ in kinds), "dashed box: tunnel peer outside the lab (not built)"),
        (any(e.impair for e in d.edges), "orange: impaired link"),
        (any(e.cross for e in d.edges), "red: cross-host link"),
    ) if present]
    rows = [f'<tr><td colspan="{max(1, len(d.colours))}"><b>lab {html.escape(d.lab)}</b></td></tr>',
            f'<tr><td colspan="{max(1, len(d.colours))}">{html.escape(" · ".join(shapes))}</td></tr>']
    if d.colours:
        rows.append("<tr>" + "".join(f'<td bgcolor="{c}">group {html.escape(g)}</td>' for g, c in d.colours.items())
                    + "</tr>")
    return f'<<table border="0" cellborder="0" cellspacing="2" cellpadding="3">{"".join(rows)}</table>>'


def dot_source(expanded: dict, hosts: dict | None = None) -> str:
    """The Graphviz DOT source of the lab ``expanded`` (see the module docstring for what is
    drawn); byte-identical for the same lab and ``hosts``.

    ``hosts``: optional placement ``{node or bridge name: build host}``; each host becomes a
    cluster holding its vertices (a bridge not named follows its ``node``, else its ports'
    nodes when they share one host), and an edge between two hosts is drawn red and labelled
    ``cross-host``. GraphError (a ValueError) when it names no node or bridge of the lab.
    """
    import graphviz

    d = _drawing(expanded, hosts)
    g = graphviz.Graph(name=d.lab, comment=f"topo lab {d.lab}")
    g.attr("graph", rankdir="LR", fontname=FONT, fontsize="11", labelloc="t", label=_legend(d),
           nodesep="0.35", ranksep="1.1", pad="0.3", newrank="true")
    g.attr("node", fontname=FONT, fontsize="11", style="filled", margin="0.12,0.06")
    g.attr("edge", fontname=FONT, fontsize="9", color="#444444")

    def add(target, v: _Vertex):
        label = "\\n".join([v.name] + v.lines)
        style = "filled" if v.kind == "bridge" else "dashed" if v.kind == "outside" else (
            "filled,rounded" if _shape(v) == "box" else "filled")
        target.node(v.name, label=label, shape=_shape(v), style=style, fillcolor=_fill(v, d.colours),
                    tooltip="\\n".join(v.info),
                    **({"gradientangle": "90"} if ":" in _fill(v, d.colours) else {}))

    placed = set()
    for i, host in enumerate(d.hosts):
        with g.subgraph(name=f"cluster_host{i}") as c:
            c.attr(label=f"host {host}", style="rounded,dashed", color="#777777", fontsize="12")
            for v in d.vertices.values():
                if v.host == host:
                    add(c, v)
                    placed.add(v.name)
    for v in d.vertices.values():
        if v.name not in placed:
            add(g, v)

    for e in d.edges:
        attrs: dict[str, str] = {"tooltip": e.tooltip}
        if e.kind == "home":
            attrs.update(style="dotted", weight="4")
        if e.kind == "tunnel":
            attrs.update(style="dashed", color=TUNNEL, fontcolor=TUNNEL, penwidth="1.4")
        if e.impair:
            attrs.update(color=IMPAIRED, fontcolor=IMPAIRED, penwidth="2.2")
        if e.cross:
            attrs.update(color=CROSS_HOST, fontcolor=CROSS_HOST, penwidth="2.5")
            attrs["style"] = ",".join(filter(None, (attrs.get("style"), "bold")))
        if e.label():
            attrs["label"] = "\\n".join(e.label())
        g.edge(e.a.vertex, e.b.vertex, **attrs)
    return g.source


# --- Mermaid -------------------------------------------------------------------------------

def _mmd(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid_source(expanded: dict, hosts: dict | None = None) -> str:
    """The lab as a Mermaid flowchart (for Markdown): the same vertices, edges and labels as
    :func:`dot_source` (vertex ids are ``n0``, ``n1``, ... with the names as labels; groups
    as ``classDef`` fills; hosts as subgraphs). Deterministic; errors as for dot_source."""
    d = _drawing(expanded, hosts)
    ids = {name: f"n{i}" for i, name in enumerate(d.vertices)}
    brackets = {"box": ('("', '")'), "box3d": ('[["', '"]]'), "octagon": ('{{"', '"}}'),
                "doubleoctagon": ('{{"', '"}}'), "ellipse": ('(["', '"])')}
    out = [f"%% topo lab {d.lab}", "flowchart LR"]

    def vertex(v: _Vertex, indent="  "):
        left, right = ('[/"', '"/]') if v.kind == "outside" else brackets[_shape(v)]
        label = "<br/>".join([v.name] + v.lines)
        out.append(f"{indent}{ids[v.name]}{left}{_mmd(label)}{right}")

    placed = set()
    for i, host in enumerate(d.hosts):
        out.append(f'  subgraph host{i} ["host {_mmd(host)}"]')
        for v in d.vertices.values():
            if v.host == host:
                vertex(v, "    ")
                placed.add(v.name)
        out.append("  end")
    for v in d.vertices.values():
        if v.name not in placed:
            vertex(v)
    styles = []
    for n, e in enumerate(d.edges):
        parts = e.label()
        arrow = "-.-" if e.kind in ("tunnel", "home") else "---"
        label = f'|"{_mmd("<br/>".join(parts))}"|' if parts else ""
        out.append(f"  {ids[e.a.vertex]} {arrow}{label} {ids[e.b.vertex]}")
        colour = CROSS_HOST if e.cross else IMPAIRED if e.impair else TUNNEL if e.kind == "tunnel" else None
        if colour:
            styles.append(f"  linkStyle {n} stroke:{colour},stroke-width:2px")
    out += styles
    for k, (g, c) in enumerate(d.colours.items()):
        members = [ids[v.name] for v in d.vertices.values() if v.groups[:1] == [g]]
        out.append(f"  classDef group{k} fill:{c},stroke:#333")
        if members:
            out.append(f"  class {','.join(members)} group{k}")
        out.append(f"  %% group{k}: {g}")
    bridges = [ids[v.name] for v in d.vertices.values() if v.kind == "bridge"]
    if bridges:
        out.append(f"  classDef bridge fill:{BRIDGE_FILL},stroke:#333")
        out.append(f"  class {','.join(bridges)} bridge")
    return "\n".join(out) + "\n"


# --- rendering -----------------------------------------------------------------------------

def _pipe(source: str, fmt: str) -> bytes:
    """``source`` rendered by Graphviz's ``dot`` as ``fmt`` (svg, png)."""
    import graphviz

    try:
        return graphviz.Source(source, engine="dot").pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise EnvironmentProblem("Graphviz's dot program was not found on PATH; it draws the lab's "
                                 "SVG, PNG and HTML: install it with apt-get install graphviz") from None


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>topo lab {lab}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em 2em; color: #222; }}
#drawing svg {{ max-width: 100%; height: auto; }}
#drawing g.node {{ cursor: pointer; }}
#info {{ position: fixed; background: #fffbe6; border: 1px solid #999; padding: .4em .7em;
        font: 13px/1.35 monospace; white-space: pre; pointer-events: none; box-shadow: 2px 2px 6px #0003; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #bbb; padding: .15em .6em; text-align: left; }}
th {{ background: #eee; }}
</style>
</head>
<body>
<h1>lab {lab}</h1>
<p>Hover over a node or bridge for its interfaces and addresses (or open this page with
<code>#NAME</code> after its address).</p>
<div id="drawing">
{svg}
</div>
<div id="info" hidden></div>
<h2>Address plan</h2>
<table id="plan">
<tr>{head}</tr>
{plan}
</table>
<script>
const INFO = {info};
const box = document.getElementById("info");
function show(name, x, y) {{
  if (!(name in INFO)) {{ box.hidden = true; return; }}
  box.textContent = INFO[name].join("\\n");
  box.style.left = (x + 14) + "px";
  box.style.top = (y + 14) + "px";
  box.hidden = false;
}}
let count = 0;
for (const g of document.querySelectorAll("#drawing g.node")) {{
  const name = g.querySelector("title").textContent;
  if (!(name in INFO)) continue;
  count += 1;
  g.dataset.name = name;
  for (const a of g.querySelectorAll("a")) a.removeAttribute("xlink:title");
  g.addEventListener("mousemove", ev => show(name, ev.clientX, ev.clientY));
  g.addEventListener("mouseleave", () => {{ box.hidden = true; }});
}}
document.body.dataset.hoverNodes = count;
function fromHash() {{
  const name = decodeURIComponent(location.hash.slice(1));
  const g = document.querySelector(`#drawing g.node[data-name="${{CSS.escape(name)}}"]`);
  if (!g) return;
  const r = g.getBoundingClientRect();
  show(name, r.right, r.top);
}}
window.addEventListener("hashchange", fromHash);
fromHash();
</script>
</body>
</html>
"""


def html_page(expanded: dict, svg: str, hosts: dict | None = None) -> str:
    """One self-contained HTML page (no external resource): ``svg`` (:func:`dot_source`
    rendered by dot) inline, a small script showing a node's or bridge's interfaces and
    addresses on hover (or for ``#NAME`` in the page's address), and the address plan."""
    d = _drawing(expanded, hosts)
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg  # no XML prolog or DOCTYPE (a DTD address) inline
    info = json.dumps({v.name: v.info for v in d.vertices.values()}, indent=1).replace("</", "<\\/")
    rows = address_plan(expanded)
    columns = {"node": "node", "ifname": "interface", "address": "address", "address6": "IPv6 address",
               "segment": "segment", "peer": "peer"}
    if not any("address6" in row for row in rows):
        del columns["address6"]
    plan = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(row[k] or '-'))}</td>" for k in columns) + "</tr>"
                     for row in rows)
    head = "".join(f"<th>{title}</th>" for title in columns.values())
    return _PAGE.format(lab=html.escape(d.lab), svg=svg.strip(), plan=plan, info=info, head=head)


def render(expanded: dict, path: str, hosts: dict | None = None) -> str:
    """Write the drawing of ``expanded`` to ``path`` in the format its suffix names (see
    :data:`FORMATS`: .dot, .svg, .png, .mmd, .html); returns ``path``. The parent
    directory is created. ``hosts`` as for :func:`dot_source`.

    GraphError (a ValueError) for another suffix, listing the supported ones;
    EnvironmentProblem naming ``apt-get install graphviz`` when .svg, .png or .html is asked
    and Graphviz's ``dot`` program is missing.
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise GraphError(f"{path}: cannot draw a lab as {suffix or 'a file without a suffix'}; "
                         f"supported: {', '.join(FORMATS)}")
    if suffix == ".mmd":
        data = mermaid_source(expanded, hosts).encode()
    else:
        source = dot_source(expanded, hosts)
        if suffix == ".dot":
            data = source.encode()
        elif suffix == ".html":
            data = html_page(expanded, _pipe(source, "svg").decode(), hosts).encode()
        else:
            data = _pipe(source, suffix[1:])
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path
