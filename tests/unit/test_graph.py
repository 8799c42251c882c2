"""topo.graph: every example drawn in every format (DOT, SVG, PNG, Mermaid, HTML); no root."""

import copy
import functools
import os
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import yaml

from topo.errors import EnvironmentProblem
from topo.graph import FORMATS, address_plan, dot_source, mermaid_source, render
from topo.pipeline import compile_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def _is_lab(name):
    """A topology file (a CSV, or YAML with nodes); clusters-checks.yml holds only checks."""
    if name.endswith(".csv"):
        return True
    with open(os.path.join(EXAMPLES, name)) as f:
        return "nodes" in (yaml.safe_load(f) or {})


LABS = sorted(n for n in os.listdir(EXAMPLES) if n.endswith((".yml", ".csv")) and _is_lab(n))
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is missing (apt-get install graphviz)")


@functools.lru_cache(maxsize=None)
def _expanded(name):
    return compile_file(os.path.join(EXAMPLES, name)).expanded


def expanded(name):
    return copy.deepcopy(_expanded(name))


def outside_peers(e):
    """The vertices drawn for tunnel peers outside the lab: ``outside <remote>``, one per
    tunnel end whose interface has no peer in the lab."""
    lone = {(n["netns"], i["ifname"]) for n in e["nodes"].values() for i in n["interfaces"] if i["peer"] is None}
    return [f"outside {t['remote']}" for t in e["tunnels"] if (t["netns"], t["ifname"]) in lone]


def edge_count(e):
    """Edges the drawing must hold: each veth (a link, or a port on a bridge), each tunnel
    (one entry per end in the lab; a tunnel to a peer outside the lab has one), and each
    bridge living in a node's namespace."""
    return (len(e["veths"]) + (len(e["tunnels"]) + len(outside_peers(e))) // 2
            + sum(1 for b in e["bridges"].values() if b.get("node")))


def tunnel_title(t):
    if t["kind"] == "vxlan":
        return f"vxlan VNI {t['vni']}"
    return t["kind"] + (f" key {t['key']}" if t.get("key") is not None else "")


def test_examples_found():
    assert len(LABS) >= 10 and "vxlan.yml" in LABS and "clusters.csv" in LABS and "clusters-checks.yml" not in LABS


@pytest.mark.parametrize("name", LABS)
def test_dot_names_every_node_link_end_and_tunnel(name):
    e = expanded(name)
    dot = dot_source(e)
    for vertex in list(e["nodes"]) + list(e["bridges"]):
        assert re.search(rf'^\t"?{re.escape(vertex)}"? \[label="?{re.escape(vertex)}', dot, re.M), vertex
    netns = {n["netns"]: node for node, n in e["nodes"].items()}
    for node, n in e["nodes"].items():
        for i in n["interfaces"]:
            end = " ".join(x for x in (i["ifname"], i["address"]) if x)
            assert re.search(rf'label="([^"]*\\n)?{re.escape(f"{node} {end}")}(\\n|")', dot), (node, end)
    for t in e["tunnels"]:
        assert tunnel_title(t) in dot and f"{netns[t['netns']]} {t['ifname']}" in dot
    tunnels = re.findall(r"^\t\S.* -- .*\[.*style=dashed.*\]$", dot, re.M)
    assert len(tunnels) == (len(e["tunnels"]) + len(outside_peers(e))) // 2
    for far in outside_peers(e):
        assert re.search(rf'^\t"{far}" \[label="{far}\\nnot built by topo".* style=dashed', dot, re.M), far
    assert len(re.findall(r'^\t("[^"]+"|\S+) -- ("[^"]+"|\S+) \[', dot, re.M)) == edge_count(e)
    for group in {g for n in e["nodes"].values() for g in n["groups"]}:
        assert f"group {group}</td>" in dot  # in the legend


def test_kinds_shapes_groups_and_impairments():
    dot = dot_source(expanded("overlay-docker.yml"))
    assert re.search(r"^\tspine1 \[.*shape=octagon", dot, re.M)  # a router
    assert re.search(r"^\th1 \[.*fillcolor=\"#8dd3c7\" shape=box3d", dot, re.M)  # docker, group tenants
    assert re.search(r"^\ttenant1 \[.*shape=box style=\"filled,rounded\"", dot, re.M)  # a namespace host
    assert re.search(r"^\ttbr1 \[.*shape=ellipse", dot, re.M)  # a bridge
    assert re.search(r"^\ttenant1 -- tbr1 \[.*style=dotted", dot, re.M)  # tbr1 lives in tenant1
    assert re.search(r'^\ttbr1 -- tbr2 \[label="vxlan VNI 42\\ntenant1 vxlan42\\ntenant2 vxlan42".*style=dashed',
                     dot, re.M)
    assert re.search(r'^\tleaf1 -- leaf2 \[label="gre\\nleaf1 gre1 10.1.0.25/30\\nleaf2 gre1 10.1.0.26/30"', dot, re.M)
    assert '<td bgcolor="#8dd3c7">group tenants</td>' in dot
    dot = dot_source(expanded("impaired.yml"))
    assert 'r1 -- r2 [label="r1 eth1 10.1.0.5/30\\nr2 eth0 10.1.0.6/30\\ndelay 50 ms ±5 ms, loss 1%"' in dot
    assert 'r2 -- site2 [label="r2 eth1 10.1.0.9/30\\nsite2 eth0 10.1.0.10/30\\nrate 20 Mbit/s"' in dot
    assert dot.count("penwidth=2.2") == 2  # the two impaired links, not site1 -- r1


def test_impairment_on_one_end_names_that_end():
    e = expanded("impaired.yml")
    e["impairments"] = [i for i in e["impairments"] if i["netns"] != "topo-impaired-site2"]
    e["impairments"][-1] = dict(e["impairments"][-1], rate=None, loss=2.5)
    dot = dot_source(e)
    assert "r2:eth1: loss 2.5%" in dot


def test_gre_key():
    e = expanded("overlay.yml")
    for t in e["tunnels"]:
        if t["kind"] == "gre":
            t["key"] = 7
    assert "gre key 7" in dot_source(e)


def test_deterministic():
    a, b = dot_source(expanded("overlay.csv")), dot_source(compile_file(os.path.join(EXAMPLES, "overlay.csv")).expanded)
    assert a == b
    assert mermaid_source(expanded("casts.yml")) == mermaid_source(expanded("casts.yml"))


def test_deterministic_files(tmp_path):
    for run in ("one", "two"):
        render(expanded("vxlan.yml"), str(tmp_path / run / "lab.dot"))
        render(expanded("vxlan.yml"), str(tmp_path / run / "lab.mmd"))
    for f in ("lab.dot", "lab.mmd"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()


@needs_dot
@pytest.mark.parametrize("name", LABS)
def test_png(name, tmp_path):
    from matplotlib.image import imread

    path = tmp_path / "lab.png"
    assert render(expanded(name), str(path)) == str(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 300 <= width <= 5000 and 150 <= height <= 5000, (width, height)
    pixels = imread(str(path))
    assert pixels.shape[:2] == (height, width)
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 2  # drawn, not blank


@needs_dot
@pytest.mark.parametrize("name", LABS)
def test_svg(name, tmp_path):
    e = expanded(name)
    path = render(e, str(tmp_path / "sub" / "lab.svg"))  # the directory is created
    svg = ET.parse(path).getroot()
    titles = [g.find(f"{SVG}title").text for g in svg.iter(f"{SVG}g") if g.get("class") == "node"]
    assert sorted(titles) == sorted(list(e["nodes"]) + list(e["bridges"]) + outside_peers(e))
    edges = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == edge_count(e)
    text = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    for row in address_plan(e):
        if row["address"]:
            assert row["address"] in text, row


@pytest.mark.parametrize("name", LABS)
def test_mermaid(name, tmp_path):
    e = expanded(name)
    mmd = open(render(e, str(tmp_path / "lab.mmd"))).read()
    lines = mmd.splitlines()
    assert lines[1] == "flowchart LR"
    ids = {}
    for line in lines:
        m = re.match(r'^\s+(n\d+)[\[({/]+"([^"<]+)', line)
        if m:
            ids[m.group(2)] = m.group(1)
    assert sorted(ids) == sorted(list(e["nodes"]) + list(e["bridges"]) + outside_peers(e))
    edges = [line for line in lines if re.match(r"^\s+n\d+ (---|-\.-)", line)]
    assert len(edges) == edge_count(e)
    for node, n in e["nodes"].items():
        for i in n["interfaces"]:
            assert f"{node} {' '.join(x for x in (i['ifname'], i['address']) if x)}" in mmd
    for t in e["tunnels"]:
        assert tunnel_title(t) in mmd
    for g in {g for n in e["nodes"].values() for g in n["groups"]}:
        assert f": {g}" in mmd


@needs_dot
@pytest.mark.parametrize("name", LABS)
def test_html(name, tmp_path):
    e = expanded(name)
    page = open(render(e, str(tmp_path / "lab.html"))).read()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and "</svg>" in page
    assert "<!DOCTYPE svg" not in page and "<?xml" not in page
    for name_, n in e["nodes"].items():
        for i in n["interfaces"]:
            if i["address"]:
                assert f"<td>{name_}</td><td>{i['ifname']}</td><td>{i['address']}</td>" in page  # the plan
                assert f"{i['ifname']} {i['address']}" in page.split("const INFO =")[1]  # hover text
    # self-contained: no script, style, image or font fetched from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|<link\b|@import|url\(""", page, re.I)


def test_address_plan_rows():
    rows = address_plan(expanded("casts.yml"))
    assert {"node": "r1", "ifname": "eth0", "address": "10.1.0.2/30", "segment": "core.eth0--r1.eth0",
            "peer": "core:eth0"} in rows
    assert {"node": "s1", "ifname": "lo", "address": "10.255.0.1/32", "segment": None, "peer": None} in rows


@pytest.mark.parametrize("fmt", [".dot", ".mmd"])
def test_hosts_clusters_and_cross_host_links(fmt, tmp_path):
    e = expanded("vxlan.yml")
    hosts = {n: "alpha" for n in ("r1", "vtep1", "h1", "h2")} | {n: "beta" for n in ("vtep2", "h3", "h4")}
    text = open(render(e, str(tmp_path / f"lab{fmt}"), hosts=hosts)).read()
    if fmt == ".dot":
        assert "subgraph cluster_host0 {" in text and 'label="host alpha"' in text and 'label="host beta"' in text
        body = text.split("subgraph cluster_host1")[1].split("}")[0]
        assert "br2 [" in body and "vtep2 [" in body and "br1 [" not in body  # a bridge follows its node
        assert text.count('label="cross-host') == 3  # r1 -- vtep2 and both tunnels
    else:
        assert 'subgraph host0 ["host alpha"]' in text and text.count("cross-host") == 3
    assert "cross-host" not in open(render(e, str(tmp_path / f"none{fmt}"))).read()  # no hosts: no clusters
    assert "subgraph" not in open(tmp_path / f"none{fmt}").read()


def test_hosts_naming_no_node():
    with pytest.raises(ValueError, match="nosuch"):
        dot_source(expanded("vxlan.yml"), hosts={"nosuch": "alpha"})


def test_unknown_suffix(tmp_path):
    with pytest.raises(ValueError) as err:
        render(expanded("routed.yml"), str(tmp_path / "lab.jpg"))
    for suffix in FORMATS:
        assert suffix in str(err.value)
    assert not (tmp_path / "lab.jpg").exists()


def test_missing_dot_program_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    for fmt in (".svg", ".png", ".html"):
        with pytest.raises(EnvironmentProblem, match="apt-get install graphviz"):
            render(expanded("routed.yml"), str(tmp_path / f"lab{fmt}"))
    render(expanded("routed.yml"), str(tmp_path / "lab.dot"))  # no dot needed for the source
    render(expanded("routed.yml"), str(tmp_path / "lab.mmd"))


def test_a_tunnel_peer_outside_the_lab_is_a_dashed_box_named_in_the_address_plan():
    """outside-peer.yml: vtep1's VXLAN end goes to the outside VTEP 192.0.2.100, which topo
    does not build: a dashed box of its own, the legend says what it is, the tunnel edge
    joins br1 (where the end is plugged) to it, and the address plan names it as the peer."""
    e = expanded("outside-peer.yml")
    dot = dot_source(e)
    assert re.search(r'^\tbr1 -- "outside 192.0.2.100" \[label="vxlan VNI 77\\nvtep1 vxlan77".*style=dashed', dot, re.M)
    assert "dashed box: tunnel peer outside the lab (not built)" in dot
    rows = [r for r in address_plan(e) if r["ifname"] == "vxlan77"]
    assert rows == [{"node": "vtep1", "ifname": "vxlan77", "address": None, "segment": "br1",
                     "peer": "outside 192.0.2.100"}]
    assert '[/"outside 192.0.2.100<br/>not built by topo"/]' in mermaid_source(e)
