"""IPv6 and dual stack in the front end (issue 13): every example expands dual stack by
adding one line (``af: [ipv4, ipv6]``), IPv6 pools are sticky like IPv4's, and the IPv6
defaults are the documented ones. The snapshots of input/dualstack*.yml, v6*.yml and the
error cases errors/v6-*.yml pin the rest."""

import glob
import os

import netaddr
import pytest

from topo.errors import InputError
from topo.expand import expand
from topo.load import load
from topo.model import resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Every example topology (not the checks files some CSV examples name with verify=).
#: Left out: containerlab files (topo gives them no pool addresses, autoaddress: false) and
#: the IPv6-only examples (af without ipv4), which have no IPv4 plan to compare.
EXAMPLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "examples", "*.yml"))
                  + glob.glob(os.path.join(ROOT, "examples", "*.csv"))
                  if "nodes" in load(p).data and not p.endswith(".clab.yml")
                  and "ipv4" in str(load(p).data.get("af", "ipv4")))


def _expand(path, af=None, previous=None, edit=None):
    raw = load(path)
    if af is not None:
        raw.data["af"] = af
    if edit:
        edit(raw.data)
    return expand(resolve(raw), previous)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_runs_dual_stack(name):
    """Adding ``af: [ipv4, ipv6]`` to an example: no problem, and every interface that has
    an IPv4 address also has an IPv6 one in the segment's subnet6 (and every loopback a
    loopback6); the IPv4 plan is the same as without the line."""
    path = os.path.join(ROOT, "examples", name)
    v4 = _expand(path, af=["ipv4"])
    dual = _expand(path, af=["ipv4", "ipv6"])
    assert "address6" not in str(v4), "an IPv4-only lab has no IPv6 keys"
    segments = dual["segments"]
    addressed = 0
    for node, n in dual["nodes"].items():
        assert n["sysctls"]["net.ipv6.conf.all.forwarding"] == ("1" if n["forwarding"] else "0")
        assert n["sysctls"]["net.ipv6.conf.default.accept_dad"] == "0"
        assert (n["loopback6"] is None) == (n["loopback"] is None), node
        for i, i4 in zip(n["interfaces"], v4["nodes"][node]["interfaces"]):
            assert i["address"] == i4["address"], f"{node}:{i['ifname']}: IPv4 changed by af"
            assert (i["address6"] is None) == (i["address"] is None), f"{node}:{i['ifname']} has no address6"
            if i["address6"]:
                addressed += 1
                net = netaddr.IPNetwork(segments[i["segment"]]["subnet6"])
                assert netaddr.IPNetwork(i["address6"]).ip in net and net.version == 6
    assert addressed, "some interface got an IPv6 address"
    if dual["routing"] == "auto":
        assert any(":" in r["dst"] for n in dual["nodes"].values() for r in n["routes"])
    targets = [(c["from"], t["node"], ":" in t["address"]) for c in dual["checks"] if c["type"] == "ping"
               for t in c["targets"]]
    v4_targets = [(c["from"], t["node"], False) for c in v4["checks"] if c["type"] == "ping" for t in c["targets"]]
    assert sorted(t for t in targets if not t[2]) == sorted(v4_targets), "the IPv4 pings are unchanged"
    static = any(n.get("routes") or n.get("gateway") for n in (load(path).data.get("nodes") or {}).values()
                 if isinstance(n, dict))
    if not static:  # declared IPv4 routes (overlay-course.yml) have no IPv6 counterpart to follow
        assert sorted(t[:2] for t in targets if t[2]) == sorted(t[:2] for t in v4_targets), \
            "every pinged IPv4 address has its IPv6 counterpart pinged"
    else:
        assert set(t[:2] for t in targets if t[2]) <= set(t[:2] for t in v4_targets), \
            "an IPv6 ping only where the IPv4 routes reach too"


def test_ipv6_only_lab_has_no_ipv4(tmp_path):
    """``af: [ipv6]``: the pools hand out IPv6 only, routes and pings are IPv6."""
    lab = _expand(os.path.join(ROOT, "examples", "routed.yml"), af=["ipv6"])
    for n in lab["nodes"].values():
        assert all(i["address"] is None and i["address6"] for i in n["interfaces"])
        assert all(":" in r["dst"] and ":" in r["gateway"] for r in n["routes"])
    assert all(s["subnet"] is None for s in lab["segments"].values())
    targets = [t["address"] for c in lab["checks"] for t in c["targets"]]
    assert targets and all(":" in a for a in targets)


def test_ipv6_defaults_are_the_documented_ones():
    """lan /64s of 2001:db8:1::/48 from ::1, p2p /64s of 2001:db8:2::/48, loopbacks /128
    of 2001:db8::/64 from ::1 (the first address is not handed out)."""
    lab = _expand(os.path.join(ROOT, "examples", "routed.yml"), af=["ipv4", "ipv6"],
                  edit=lambda d: d["nodes"]["r1"].update(loopback=True))
    assert lab["segments"]["lan1"]["subnet6"] == "2001:db8:1::/64"
    assert lab["segments"]["lan2"]["subnet6"] == "2001:db8:1:1::/64"
    assert lab["segments"]["r1.eth1--r2.eth0"]["subnet6"] == "2001:db8:2::/64"
    assert lab["nodes"]["h1"]["interfaces"][0]["address6"] == "2001:db8:1::1/64"
    assert lab["nodes"]["r1"]["loopback6"] == "2001:db8::1/128"
    assert lab["nodes"]["r1"]["loopback"] == "10.0.0.1/32"
    # the routers' loopbacks are routed in both families, next hop the neighbour's global address
    h1 = {r["dst"]: r["gateway"] for r in lab["nodes"]["h1"]["routes"]}
    assert h1 == {"0.0.0.0/0": "172.16.0.3", "::/0": "2001:db8:1::3"}
    # r2's only neighbour router is r1: one default route per family toward it, not one per prefix
    r2 = {r["dst"]: r["gateway"] for r in lab["nodes"]["r2"]["routes"]}
    assert r2 == {"0.0.0.0/0": "10.1.0.1", "::/0": "2001:db8:2::1"}


def test_ipv6_allocation_is_sticky():
    """Removing a node keeps every other node's IPv6 (and IPv4) addresses, like IPv4's."""
    path = os.path.join(ROOT, "examples", "routed.yml")
    first = _expand(path, af=["ipv4", "ipv6"])

    def drop_h1(data):
        del data["nodes"]["h1"]
        data["links"] = [link for link in data["links"] if "h1" not in link]
    again = _expand(path, af=["ipv4", "ipv6"], edit=drop_h1, previous=first)
    fresh = _expand(path, af=["ipv4", "ipv6"], edit=drop_h1)
    for node in ("h2", "r1", "r2", "h3", "h4"):
        assert again["nodes"][node]["interfaces"] == first["nodes"][node]["interfaces"]
    assert fresh["nodes"]["h2"]["interfaces"][0]["address6"] == "2001:db8:1::1/64"
    assert again["nodes"]["h2"]["interfaces"][0]["address6"] == "2001:db8:1::2/64"


def test_vxlan_over_ipv6_underlay_mtu():
    """A VXLAN tunnel whose ends have only IPv6 underlay addresses leaves from them, and its
    MTU is the underlay's 1500 minus 70 (outer IPv6 40 + UDP 8 + VXLAN 8 + Ethernet 14)."""
    path = os.path.join(ROOT, "examples", "vxlan.yml")

    def lower_mtu(data):  # the example's 1450-byte LAN frames do not fit a 1430-byte tunnel
        for link in data["links"]:
            if isinstance(link, dict) and link.get("mtu") == 1450:
                link["mtu"] = 1430
    lab = _expand(path, af=["ipv6"], edit=lower_mtu)
    assert lab["tunnels"] and all(":" in t["local"] and ":" in t["remote"] for t in lab["tunnels"])
    assert {t["mtu"] for t in lab["tunnels"] if t["kind"] == "vxlan"} == {1500 - 70}


def test_address_plan_and_drawing_show_ipv6():
    """The address plan has an IPv6 column in a lab with IPv6 (none in an IPv4 lab), the
    lo row holds both loopbacks, and each link end's label carries its IPv6 address."""
    from topo.graph import address_plan, dot_source, html_page

    path = os.path.join(ROOT, "examples", "routed.yml")
    lab = _expand(path, af=["ipv4", "ipv6"], edit=lambda d: d["nodes"]["r1"].update(loopback=True))
    rows = address_plan(lab)
    assert {"node": "h1", "ifname": "eth0", "address": "172.16.0.1/24", "address6": "2001:db8:1::1/64",
            "segment": "lan1", "peer": "lan1:h1-eth0"} in rows
    assert {"node": "r1", "ifname": "lo", "address": "10.0.0.1/32", "address6": "2001:db8::1/128",
            "segment": None, "peer": None} in rows
    assert 'label="h1 eth0 172.16.0.1/24\\n2001:db8:1::1/64"' in dot_source(lab)
    page = html_page(lab, "<svg></svg>")
    assert "<th>IPv6 address</th>" in page and "<td>2001:db8:1::1/64</td>" in page
    v4 = _expand(path)
    assert all("address6" not in row for row in address_plan(v4))
    assert "IPv6 address" not in html_page(v4, "<svg></svg>")


def test_cli_ipv6_bad_input_exit_2_addresses_printed_as_written():
    """Bad IPv6 input: exit 2, the problem named by file, line and field, no traceback; and
    the addresses are printed as written (no emoji made of ``:a:`` or ``:cd:`` groups)."""
    import subprocess
    import sys

    here = os.path.join(ROOT, "tests", "unit")
    env = dict(os.environ, TOPO_HOME=os.path.join(here, ".no-home"), COLUMNS="300",
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    r = subprocess.run([sys.executable, "-m", "topo", "validate", "errors/v6-outside.yml"],
                       capture_output=True, text=True, cwd=here, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ("errors/v6-outside.yml:7: links[0].endpoints[0].address: 2001:db8:7::1/64 is outside the "
            "segment's subnet 2001:db8:1::/64 (segment lan1)") in r.stderr
    r = subprocess.run([sys.executable, "-m", "topo", "validate", "input/v6-only.yml"],
                       capture_output=True, text=True, cwd=here, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "topo", "validate", "errors/v6-routes.yml"],
                       capture_output=True, text=True, cwd=here, env=env)
    assert r.returncode == 2 and "next hop 2001:cd::1 for ::/0 is on none of a's subnets" in r.stderr


def test_an_ipv6_subnet_in_capitals_or_long_form_is_one_subnet(tmp_path):
    """``2001:DB8:8:0::/64`` is ``2001:db8:8::/64`` (RFC 5952 is how it is printed, not the
    only way to write it): accepted, and stored in canonical form; host bits still refused."""
    path = tmp_path / "caps.yml"
    path.write_text("name: caps\naf: [ipv6]\nnodes: [a, b]\n"
                    "links: [{endpoints: [a, b], subnet: '2001:DB8:8:0::/64'}]\n")
    lab = expand(resolve(load(str(path))))
    assert [s["subnet6"] for s in lab["segments"].values()] == ["2001:db8:8::/64"]
    path.write_text(path.read_text().replace("2001:DB8:8:0::/64", "2001:DB8:8::1/64"))
    with pytest.raises(InputError) as caught:
        expand(resolve(load(str(path))))
    assert any("has host bits set; the subnet is 2001:db8:8::/64" in p.message for p in caught.value.problems)
