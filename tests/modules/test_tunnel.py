"""topo.lab.tunnel against the real kernel: VXLAN over IPv4 and IPv6 on the host; GRE and gretap
where the kernel has them (the UML lane otherwise); drift, ownership, pruning, missing features,
underlay family errors."""

import json

import pytest

from tests.kernel.lane import host_has
from tests.modules.conftest import ROOT_ONLY, assert_noop, changes, detail, four_steps, links, ok, sh, step

pytestmark = ROOT_ONLY


def info(ns, ifname):
    """``ip -d -j link show`` of one device: kind, mtu, master, up, alias and the tunnel's
    info_data (id, local, remote, port, learning, ikey ...)."""
    link = json.loads(sh("ip", "-d", "-j", "-n", ns, "link", "show", "dev", ifname))[0]
    return dict(link.get("linkinfo", {}).get("info_data", {}), kind=link["linkinfo"]["info_kind"],
                mtu=link["mtu"], master=link.get("master"), up="UP" in link["flags"], alias=link.get("ifalias"))


def underlay(lab):
    """Namespaces a and b joined by a veth (198.18.0.1/30 - .2), and a bridge br0 in b."""
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "u0", b, "u0")
    sh("ip", "-n", a, "addr", "add", "198.18.0.1/30", "dev", "u0")
    sh("ip", "-n", b, "addr", "add", "198.18.0.2/30", "dev", "u0")
    lab.make_bridge(b, "br0")
    return a, b


def vxlan(a, b, **extra):
    ends = [dict(kind="vxlan", netns=a, ifname="vxlan42", vni=42, local="198.18.0.1", remote="198.18.0.2",
                 mtu=1450),
            dict(kind="vxlan", netns=b, ifname="vxlan42", vni=42, local="198.18.0.2", remote="198.18.0.1",
                 mtu=1450, master="br0")]
    for end in ends:
        end.update(extra)
    return ends


def test_vxlan_four_steps_and_traffic(lab, ansible):
    a, b = underlay(lab)
    params = {"lab": lab.name, "tunnels": vxlan(a, b, dstport=4789, srcport=[40000, 40100], learning=False),
              "namespaces": [a, b]}
    four_steps(ansible, lab, "tunnel", params,
               [("create", "tunnel", a + "/vxlan42"), ("create", "tunnel", b + "/vxlan42")])
    for ns, local, remote, master in ((a, "198.18.0.1", "198.18.0.2", None), (b, "198.18.0.2", "198.18.0.1", "br0")):
        got = info(ns, "vxlan42")
        assert (got["kind"], got["id"], got["local"], got["remote"], got["port"]) == ("vxlan", 42, local, remote, 4789)
        assert (got["port_range"], got["learning"]) == ({"low": 40000, "high": 40100}, False)
        assert (got["mtu"], got["master"], got["up"], got["alias"]) == (1450, master, True, lab.if_marker)
    # frames really cross: a's vxlan end and b's bridge on one L2 segment
    sh("ip", "-n", a, "addr", "add", "192.168.42.1/24", "dev", "vxlan42")
    sh("ip", "-n", b, "addr", "add", "192.168.42.2/24", "dev", "br0")
    assert "3 received" in sh("ip", "netns", "exec", a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.42.2")


def test_vxlan_drift_is_repaired_one_change_each(lab, ansible):
    a, b = underlay(lab)
    params = {"lab": lab.name, "tunnels": vxlan(a, b), "namespaces": [a, b]}
    ok(ansible.one("tunnel", params))
    # wrong VNI (made by hand, with the marker), wrong MTU, detached from its bridge, down
    sh("ip", "-n", a, "link", "del", "vxlan42")
    sh("ip", "-n", a, "link", "add", "vxlan42", "type", "vxlan", "id", "43", "local", "198.18.0.1",
       "remote", "198.18.0.2", "dstport", "4789")
    sh("ip", "-n", a, "link", "set", "vxlan42", "alias", lab.if_marker, "up")
    sh("ip", "-n", b, "link", "set", "vxlan42", "mtu", "1400", "nomaster", "down")
    plan, fix, again = ansible.run(step("tunnel", params, check=True), step("tunnel", params),
                                   step("tunnel", params))
    for result in (plan, fix):
        assert changes(result) == [("fix", "tunnel", a + "/vxlan42"), ("fix", "tunnel", b + "/vxlan42")]
        assert "recreated: vni 43 -> 42" in detail(result, "fix", a + "/vxlan42")
        assert detail(result, "fix", b + "/vxlan42") == "master None -> br0, mtu 1400 -> 1450, up False -> True"
    assert_noop(again)
    assert info(a, "vxlan42")["id"] == 42
    assert (info(b, "vxlan42")["mtu"], info(b, "vxlan42")["master"], info(b, "vxlan42")["up"]) == (1450, "br0", True)
    # a wrong remote is recreated too; a right tunnel is left alone (same ifindex)
    index_b = links(b)["vxlan42"]["index"]
    moved = dict(params, tunnels=vxlan(a, b))
    moved["tunnels"][0]["remote"] = "198.18.0.3"
    result = ok(ansible.one("tunnel", moved))
    assert changes(result) == [("fix", "tunnel", a + "/vxlan42")]
    assert "remote 198.18.0.2 -> 198.18.0.3" in detail(result, "fix", a + "/vxlan42")
    assert links(b)["vxlan42"]["index"] == index_b


def test_prune_and_ownership(lab, ansible):
    a, b = underlay(lab)
    params = {"lab": lab.name, "tunnels": vxlan(a, b), "namespaces": [a, b]}
    ok(ansible.one("tunnel", params))
    pruned = ok(ansible.one("tunnel", dict(params, tunnels=params["tunnels"][:1])))
    assert changes(pruned) == [("remove", "tunnel", b + "/vxlan42")]
    assert "vxlan42" not in links(b)
    # a device under a declared name without the lab's marker is refused and kept
    sh("ip", "-n", b, "link", "add", "vxlan42", "type", "vxlan", "id", "7", "dstport", "4789", "local", "198.18.0.2")
    refused = ansible.one("tunnel", params)
    assert refused.get("failed") and "was not made by topo" in refused["msg"], refused
    assert info(b, "vxlan42")["id"] == 7


@pytest.mark.kernel("gre", "gretap")
def test_gre_and_gretap_four_steps_and_traffic(lab, ansible):
    a, b = underlay(lab)
    lab.make_bridge(a, "br0")
    tunnels = []
    for ns, local, remote in ((a, "198.18.0.1", "198.18.0.2"), (b, "198.18.0.2", "198.18.0.1")):
        tunnels.append(dict(kind="gre", netns=ns, ifname="gre1", local=local, remote=remote, key=7, ttl=64, mtu=1472))
        tunnels.append(dict(kind="gretap", netns=ns, ifname="gtap1", local=local, remote=remote, mtu=1462,
                            master="br0"))
    params = {"lab": lab.name, "tunnels": tunnels, "namespaces": [a, b]}
    four_steps(ansible, lab, "tunnel", params,
               sorted(("create", "tunnel", "%s/%s" % (t["netns"], t["ifname"])) for t in tunnels))
    gre = info(a, "gre1")
    assert (gre["kind"], gre["local"], gre["remote"], gre["ttl"], gre["ikey"], gre["okey"], gre["mtu"]) == \
        ("gre", "198.18.0.1", "198.18.0.2", 64, "0.0.0.7", "0.0.0.7", 1472)
    assert (info(b, "gtap1")["kind"], info(b, "gtap1")["master"]) == ("gretap", "br0")
    sh("ip", "-n", a, "addr", "add", "198.18.1.1/30", "dev", "gre1")
    sh("ip", "-n", b, "addr", "add", "198.18.1.2/30", "dev", "gre1")
    sh("ip", "-n", a, "addr", "add", "198.18.2.1/24", "dev", "br0")
    sh("ip", "-n", b, "addr", "add", "198.18.2.2/24", "dev", "br0")
    for target in ("198.18.1.2", "198.18.2.2"):
        assert "3 received" in sh("ip", "netns", "exec", a, "ping", "-c", "3", "-i", "0.2", "-W", "2", target)
    # another key is a recreate
    rekeyed = dict(params, tunnels=[dict(t, key=8) if t["kind"] == "gre" else t for t in tunnels])
    result = ok(ansible.one("tunnel", rekeyed))
    assert changes(result) == [("fix", "tunnel", a + "/gre1"), ("fix", "tunnel", b + "/gre1")]
    assert "key 7 -> 8" in detail(result, "fix", a + "/gre1")


def test_a_kernel_without_gre_is_named_before_anything_is_built(lab, ansible):
    if host_has("gre"):
        pytest.skip("this kernel has gre; the refusal needs one without (the UML guest has it)")
    a, b = underlay(lab)
    params = {"lab": lab.name, "tunnels": vxlan(a, b) + [
        dict(kind="gre", netns=a, ifname="gre1", local="198.18.0.1", remote="198.18.0.2")], "namespaces": [a, b]}
    for check in (True, False):
        result = ansible.one("tunnel", params, check=check)
        assert result.get("failed"), result
        assert "cannot create gre links (CONFIG_NET_IPGRE); load ip_gre" in result["msg"]
    assert "vxlan42" not in links(a) and "vxlan42" not in links(b)


def test_the_module_feature_probe_agrees_with_iproute2():
    """topo's pyroute2 probe (what apply checks before building) and iproute2's own tries agree."""
    from ansible_collections.topo.lab.plugins.module_utils._netns import missing_features
    features = ["vxlan", "gre", "gretap", "ip6gre", "ip6gretap", "netem", "tbf"]
    assert missing_features(features) == [f for f in features if not host_has(f)]


def test_a_half_made_tunnel_is_finished_not_refused(lab, ansible):
    """A run killed between creating a device (with topo's group, 29808) and writing its alias
    leaves it unmarked; the next run finishes it. Without the group it is not topo's: refused."""
    a, b = underlay(lab)
    params = {"lab": lab.name, "tunnels": vxlan(a, b), "namespaces": [a, b]}
    for ns, local, remote in ((a, "198.18.0.1", "198.18.0.2"), (b, "198.18.0.2", "198.18.0.1")):
        sh("ip", "-n", ns, "link", "add", "vxlan42", "group", "29808", "mtu", "1450", "type", "vxlan", "id", "42",
           "local", local, "remote", remote, "dstport", "4789")
    result = ok(ansible.one("tunnel", params))
    assert changes(result) == [("fix", "tunnel", a + "/vxlan42"), ("fix", "tunnel", b + "/vxlan42")]
    assert "alias None -> " + lab.if_marker in detail(result, "fix", a + "/vxlan42")
    assert info(a, "vxlan42")["alias"] == lab.if_marker
    sh("ip", "-n", a, "link", "set", "vxlan42", "group", "default", "alias", "")
    refused = ansible.one("tunnel", params)
    assert refused.get("failed") and "was not made by topo" in refused["msg"], refused


# --------------------------------------------------------------------------
# Multi-host stitching: VXLAN devices whose socket lives in the build host's namespace
# --------------------------------------------------------------------------

HOSTS = ("hostA", "hostB", "hostC")


def build_hosts(lab):
    """Three scratch namespaces standing in for build hosts, on one underlay: veths into a
    bridge ``ul`` in namespace ``underlay``; host i has 198.18.9.i/24 on its ``u0``."""
    hub = lab.make_ns("underlay")
    lab.make_bridge(hub, "ul")
    hosts = {}
    for i, h in enumerate(HOSTS, 1):
        ns = lab.make_ns(h)
        lab.make_veth(ns, "u0", hub, "u-" + h)
        sh("ip", "-n", hub, "link", "set", "u-" + h, "master", "ul")
        sh("ip", "-n", ns, "addr", "add", "198.18.9.%d/24" % i, "dev", "u0")
        hosts[h] = (ns, "198.18.9.%d" % i)
    return hosts


def read_back(ns, ifname):
    """Independent read-back (iproute2): the device's vxlan attributes, where its socket
    lives (link-netns, by name), its MTU, master, and its all-zero FDB destinations."""
    link = json.loads(sh("ip", "-d", "-j", "-n", ns, "link", "show", "dev", ifname))[0]
    ids = {e["nsid"]: e.get("name") for e in json.loads(sh("ip", "-j", "-n", ns, "netns", "list-id") or "[]")}
    fdb = json.loads(sh("bridge", "-j", "-n", ns, "fdb", "show", "dev", ifname) or "[]")
    data = link["linkinfo"]["info_data"]
    return {"vni": data["id"], "local": data.get("local"), "remote": data.get("remote"), "port": data["port"],
            "mtu": link["mtu"], "master": link.get("master"), "up": "UP" in link["flags"],
            "underlay": ids.get(link.get("link_netnsid")) if "link_netnsid" in link else None,
            "fdb": sorted(e["dst"] for e in fdb if e.get("mac") == "00:00:00:00:00:00" and e.get("dst"))}


def listens(ns, port):
    """True when namespace ``ns`` has a UDP socket bound to ``port`` (the VXLAN socket)."""
    return any(line.split()[3].endswith(":%d" % port) for line in
               sh("ip", "netns", "exec", ns, "ss", "-ulnH").splitlines() if line.strip())


def test_cross_host_link_socket_in_the_build_host(lab, ansible):
    """A cross-host link: one VXLAN per end, made from the build host's namespace (given by
    name) straight into the node's; the socket stays in the host, nodes ping over it."""
    hosts = build_hosts(lab)
    (ha, ua), (hb, ub) = hosts["hostA"], hosts["hostB"]
    n1, n2 = lab.make_ns("n1"), lab.make_ns("n2")
    ends = [dict(kind="vxlan", netns=n1, ifname="eth0", vni=10000, local=ua, remote=ub, mtu=1450,
                 underlay_netns=ha, mac="02:00:00:00:77:01"),
            dict(kind="vxlan", netns=n2, ifname="eth0", vni=10000, local=ub, remote=ua, mtu=1450, underlay_netns=hb)]
    params = {"lab": lab.name, "tunnels": ends, "namespaces": [n1, n2]}
    four_steps(ansible, lab, "tunnel", params, [("create", "tunnel", n1 + "/eth0"), ("create", "tunnel", n2 + "/eth0")])
    for ns, host, local, remote in ((n1, ha, ua, ub), (n2, hb, ub, ua)):
        assert read_back(ns, "eth0") == {"vni": 10000, "local": local, "remote": remote, "port": 4789, "mtu": 1450,
                                         "master": None, "up": True, "underlay": host, "fdb": [remote]}
        assert listens(host, 4789) and not listens(ns, 4789)
    assert links(n1)["eth0"]["mac"] == "02:00:00:00:77:01"
    assert "eth0" not in links(ha)
    sh("ip", "-n", n1, "addr", "add", "10.77.0.1/30", "dev", "eth0")
    sh("ip", "-n", n2, "addr", "add", "10.77.0.2/30", "dev", "eth0")
    assert "3 received" in sh("ip", "netns", "exec", n1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2")
    # drift: the same device made inside the node (socket there) is made again from the host
    sh("ip", "-n", n1, "link", "del", "eth0")
    sh("ip", "-n", n1, "link", "add", "eth0", "type", "vxlan", "id", "10000", "local", ua, "remote", ub,
       "dstport", "4789")
    sh("ip", "-n", n1, "link", "set", "eth0", "alias", lab.if_marker, "mtu", "1450", "address", "02:00:00:00:77:01",
       "up")
    plan, fix, again = ansible.run(step("tunnel", params, check=True), step("tunnel", params), step("tunnel", params))
    for result in (plan, fix):
        assert changes(result) == [("fix", "tunnel", n1 + "/eth0")]
        assert detail(result, "fix", n1 + "/eth0") == "recreated: underlay None -> %s" % ha
    assert_noop(again)
    assert read_back(n1, "eth0")["underlay"] == ha
    # pruned when no longer declared
    pruned = ok(ansible.one("tunnel", dict(params, tunnels=ends[1:])))
    assert changes(pruned) == [("remove", "tunnel", n1 + "/eth0")]
    assert "eth0" not in links(n1)


def test_cross_host_segment_head_end_replication(lab, ansible):
    """A bridge segment over three hosts: a copy of the bridge on each, joined by one VXLAN
    per host (no remote; all-zero FDB entries toward the two other hosts), made by the
    module running inside each host's namespace (underlay_netns "/"). A broadcast from a
    member on hostA is answered by the members on hostB and hostC."""
    hosts = build_hosts(lab)
    plan, members = {}, {}
    for i, (h, (ns, addr)) in enumerate(sorted(hosts.items()), 1):
        lan = lab.make_ns("lan" + h[-1])
        lab.make_bridge(lan, "lan")
        m = lab.make_ns("m" + h[-1])
        lab.make_veth(m, "eth0", lan, "m-eth0")
        sh("ip", "-n", lan, "link", "set", "m-eth0", "master", "lan")
        sh("ip", "-n", m, "addr", "add", "192.168.77.%d/24" % i, "dev", "eth0")
        sh("ip", "netns", "exec", m, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0")
        members[h] = m
        plan[h] = {"lab": lab.name, "namespaces": [lan], "tunnels": [dict(
            kind="vxlan", netns=lan, ifname="vxlan10001", vni=10001, local=addr, mtu=1450, master="lan",
            underlay_netns="/", fdb=sorted(a for o, (_, a) in hosts.items() if o != h))]}

    def steps(check=False, params=plan):
        return [step("tunnel", params[h], check=check, netns=hosts[h][0]) for h in HOSTS]

    results = ansible.run(*steps(check=True))
    assert [changes(r) for r in results] == [[("create", "tunnel", plan[h]["namespaces"][0] + "/vxlan10001")]
                                             for h in HOSTS]
    assert all("vxlan10001" not in links(plan[h]["namespaces"][0]) for h in HOSTS)
    results = ansible.run(*steps(), *steps(), *steps(check=True))
    assert all(ok(r)["changed"] for r in results[:3])
    for r in results[3:]:
        assert_noop(r)
    for h in HOSTS:
        lan, addr = plan[h]["namespaces"][0], hosts[h][1]
        got = read_back(lan, "vxlan10001")
        assert got == {"vni": 10001, "local": addr, "remote": None, "port": 4789, "mtu": 1450, "master": "lan",
                       "up": True, "underlay": hosts[h][0], "fdb": plan[h]["tunnels"][0]["fdb"]}
        assert listens(hosts[h][0], 4789) and not listens(lan, 4789)
    out = sh("ip", "netns", "exec", members["hostA"], "ping", "-b", "-c", "3", "-i", "0.3", "-W", "2",
             "192.168.77.255")
    assert "from 192.168.77.2" in out and "from 192.168.77.3" in out, out
    for target in ("192.168.77.2", "192.168.77.3"):
        assert "2 received" in sh("ip", "netns", "exec", members["hostA"], "ping", "-c", "2", "-i", "0.2", "-W", "2",
                                  target)
    # drift on hostB: an FDB entry gone, a foreign one added, the MTU changed: one fix, in place
    lan_b, ua, uc = plan["hostB"]["namespaces"][0], hosts["hostA"][1], hosts["hostC"][1]
    index = links(lan_b)["vxlan10001"]["index"]
    sh("bridge", "-n", lan_b, "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan10001", "dst", ua)
    sh("bridge", "-n", lan_b, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan10001", "dst", "198.18.9.99")
    sh("ip", "-n", lan_b, "link", "set", "vxlan10001", "mtu", "1400")
    fixed, again = ansible.run(step("tunnel", plan["hostB"], netns=hosts["hostB"][0]),
                               step("tunnel", plan["hostB"], netns=hosts["hostB"][0]))
    assert changes(fixed) == [("fix", "tunnel", lan_b + "/vxlan10001")]
    assert detail(fixed, "fix", lan_b + "/vxlan10001") == \
        "fdb ['%s', '198.18.9.99'] -> ['%s', '%s'], mtu 1400 -> 1450" % (uc, ua, uc)
    assert_noop(again)
    assert read_back(lan_b, "vxlan10001")["fdb"] == [ua, uc] and links(lan_b)["vxlan10001"]["index"] == index
    # state absent on every host: the devices go, the bridges stay
    gone = ansible.run(*steps(params={h: dict(p, tunnels=[]) for h, p in plan.items()}))
    assert [changes(r) for r in gone] == [[("remove", "tunnel", plan[h]["namespaces"][0] + "/vxlan10001")]
                                          for h in HOSTS]
    assert all("vxlan10001" not in links(plan[h]["namespaces"][0]) and "lan" in links(plan[h]["namespaces"][0])
               for h in HOSTS)


# --------------------------------------------------------------------------
# IPv6 underlay
# --------------------------------------------------------------------------

def underlay6(lab):
    """Namespaces a and b joined by a veth (2001:db8:ff::1/64 - ::2, nodad), and a bridge br0 in b."""
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "u0", b, "u0")
    sh("ip", "-n", a, "addr", "add", "2001:db8:ff::1/64", "dev", "u0", "nodad")
    sh("ip", "-n", b, "addr", "add", "2001:db8:ff::2/64", "dev", "u0", "nodad")
    lab.make_bridge(b, "br0")
    return a, b


def ping_across(a, b, family, target):
    """One ping from ``a`` to ``target`` over the vxlan42 ends; on a loss the assertion shows
    both ends' counters and neighbours (a first packet lost once, not reproduced since)."""
    out = sh("ip", "netns", "exec", a, "ping", family, "-c", "1", "-W", "2", target, check=False)
    if "1 received" not in out:
        raise AssertionError(out + "".join(sh("ip", "-n", ns, "-s", *argv) for ns in (a, b) for argv in (
            ("link", "show", "vxlan42"), ("-6", "neigh"), ("-6", "addr"))))


def vxlan6(a, b):
    # a's end spelled in upper case with a zero run written out: the kernel's form is compared
    return [dict(kind="vxlan", netns=a, ifname="vxlan42", vni=42, local="2001:DB8:FF:0::1", remote="2001:db8:ff::2",
                 mtu=1430),
            dict(kind="vxlan", netns=b, ifname="vxlan42", vni=42, local="2001:db8:ff::2", remote="2001:db8:ff::1",
                 mtu=1430, master="br0")]


def test_vxlan_over_ipv6_four_steps_and_traffic(lab, ansible):
    a, b = underlay6(lab)
    params = {"lab": lab.name, "tunnels": vxlan6(a, b), "namespaces": [a, b]}
    four_steps(ansible, lab, "tunnel", params,
               [("create", "tunnel", a + "/vxlan42"), ("create", "tunnel", b + "/vxlan42")])
    for ns, local, remote, master in ((a, "2001:db8:ff::1", "2001:db8:ff::2", None),
                                      (b, "2001:db8:ff::2", "2001:db8:ff::1", "br0")):
        got = info(ns, "vxlan42")
        assert (got["kind"], got["id"], got["local6"], got["remote6"], got["port"]) == ("vxlan", 42, local, remote, 4789)
        assert "local" not in got and "remote" not in got
        assert (got["mtu"], got["master"], got["up"], got["alias"]) == (1430, master, True, lab.if_marker)
    # frames really cross the IPv6 underlay: IPv6 over a's vxlan end and b's bridge
    sh("ip", "-n", a, "addr", "add", "2001:db8:42::1/64", "dev", "vxlan42", "nodad")
    sh("ip", "-n", b, "addr", "add", "2001:db8:42::2/64", "dev", "br0", "nodad")
    ping_across(a, b, "-6", "2001:db8:42::2")
    # and IPv4 over the same IPv6 underlay
    sh("ip", "-n", a, "addr", "add", "192.168.42.1/24", "dev", "vxlan42")
    sh("ip", "-n", b, "addr", "add", "192.168.42.2/24", "dev", "br0")
    ping_across(a, b, "-4", "192.168.42.2")


def test_vxlan_over_ipv6_drift_and_family_change(lab, ansible):
    a, b = underlay6(lab)
    params = {"lab": lab.name, "tunnels": vxlan6(a, b), "namespaces": [a, b]}
    ok(ansible.one("tunnel", params))
    index_b = links(b)["vxlan42"]["index"]
    # a wrong IPv6 remote is recreated; an IPv4 underlay for the same device too
    moved = dict(params, tunnels=vxlan6(a, b))
    moved["tunnels"][0]["remote"] = "2001:db8:ff::3"
    four = dict(params, tunnels=vxlan6(a, b))
    four["tunnels"][0].update(local="198.18.0.1", remote="198.18.0.2")
    plan, fix, again = ansible.run(step("tunnel", moved, check=True), step("tunnel", moved),
                                   step("tunnel", moved))
    for result in (plan, fix):
        assert changes(result) == [("fix", "tunnel", a + "/vxlan42")]
        assert detail(result, "fix", a + "/vxlan42") == "recreated: remote 2001:db8:ff::2 -> 2001:db8:ff::3"
    assert_noop(again)
    assert info(a, "vxlan42")["remote6"] == "2001:db8:ff::3"
    to4 = ok(ansible.one("tunnel", four))
    assert detail(to4, "fix", a + "/vxlan42") == \
        "recreated: local 2001:db8:ff::1 -> 198.18.0.1, remote 2001:db8:ff::3 -> 198.18.0.2"
    got = info(a, "vxlan42")
    assert (got["local"], got["remote"]) == ("198.18.0.1", "198.18.0.2") and "local6" not in got
    assert links(b)["vxlan42"]["index"] == index_b


def test_tunnel_underlay_family_errors_change_nothing(lab, ansible):
    a, b = underlay6(lab)
    good = vxlan6(a, b)
    cases = [
        (dict(kind="vxlan", netns=a, ifname="vx1", vni=1, local="2001:db8:ff::1", remote="198.18.0.2"),
         "local 2001:db8:ff::1 is IPv6 but remote 198.18.0.2 is IPv4; use one underlay family"),
        (dict(kind="gre", netns=a, ifname="gre1", local="2001:db8:ff::1", remote="2001:db8:ff::2"),
         "a gre tunnel cannot run over IPv6 (2001:db8:ff::1 -> 2001:db8:ff::2); use kind ip6gre"),
        (dict(kind="ip6gretap", netns=a, ifname="gt1", local="198.18.0.1", remote="198.18.0.2"),
         "a ip6gretap tunnel cannot run over IPv4 (198.18.0.1 -> 198.18.0.2); use kind gretap"),
    ]
    for bad, message in cases:
        for check in (True, False):
            result = ansible.one("tunnel", {"lab": lab.name, "tunnels": good + [bad], "namespaces": [a, b]},
                                 check=check)
            assert result.get("failed") and message in result["msg"], result
    assert "vxlan42" not in links(a) and "vxlan42" not in links(b)


def test_a_kernel_without_ip6gre_is_named_before_anything_is_built(lab, ansible):
    from ansible_collections.topo.lab.plugins.module_utils._netns import missing_features
    assert missing_features(["ip6gre", "ip6gretap"]) == [f for f in ("ip6gre", "ip6gretap") if not host_has(f)]
    if host_has("ip6gre"):
        pytest.skip("this kernel has ip6gre; the refusal needs one without")
    a, b = underlay6(lab)
    params = {"lab": lab.name, "tunnels": vxlan6(a, b) + [
        dict(kind="ip6gretap", netns=a, ifname="gt1", local="2001:db8:ff::1", remote="2001:db8:ff::2")],
        "namespaces": [a, b]}
    for check in (True, False):
        result = ansible.one("tunnel", params, check=check)
        assert result.get("failed"), result
        assert "cannot create ip6gretap links (CONFIG_IPV6_GRE); load ip6_gre (modprobe ip6_gre) or use vxlan" \
            in result["msg"], result["msg"]
    assert "vxlan42" not in links(a) and "vxlan42" not in links(b)


@pytest.mark.kernel("ip6gre", "ip6gretap")
def test_ip6gre_and_ip6gretap_four_steps_and_traffic(lab, ansible):
    a, b = underlay6(lab)
    lab.make_bridge(a, "br0")
    tunnels = []
    for ns, local, remote in ((a, "2001:db8:ff::1", "2001:db8:ff::2"), (b, "2001:db8:ff::2", "2001:db8:ff::1")):
        tunnels.append(dict(kind="ip6gre", netns=ns, ifname="g6", local=local, remote=remote, key=7, ttl=64,
                            mtu=1444))
        tunnels.append(dict(kind="ip6gretap", netns=ns, ifname="gt6", local=local, remote=remote, mtu=1434,
                            master="br0"))
    params = {"lab": lab.name, "tunnels": tunnels, "namespaces": [a, b]}
    four_steps(ansible, lab, "tunnel", params,
               sorted(("create", "tunnel", "%s/%s" % (t["netns"], t["ifname"])) for t in tunnels))
    g6 = info(a, "g6")
    assert (g6["kind"], g6["local"], g6["remote"], g6["ikey"], g6["okey"], g6["mtu"]) == \
        ("ip6gre", "2001:db8:ff::1", "2001:db8:ff::2", "0.0.0.7", "0.0.0.7", 1444), g6
    assert (info(b, "gt6")["kind"], info(b, "gt6")["master"]) == ("ip6gretap", "br0")
    sh("ip", "-n", a, "addr", "add", "2001:db8:61::1/64", "dev", "g6", "nodad")
    sh("ip", "-n", b, "addr", "add", "2001:db8:61::2/64", "dev", "g6", "nodad")
    sh("ip", "-n", a, "addr", "add", "198.18.2.1/24", "dev", "br0")
    sh("ip", "-n", b, "addr", "add", "198.18.2.2/24", "dev", "br0")
    for family, target in (("-6", "2001:db8:61::2"), ("-4", "198.18.2.2")):
        out = sh("ip", "netns", "exec", a, "ping", family, "-c", "3", "-i", "0.2", "-W", "2", target, check=False)
        assert "3 received" in out, out
    # another key is a recreate
    rekeyed = dict(params, tunnels=[dict(t, key=8) if t["kind"] == "ip6gre" else t for t in tunnels])
    result = ok(ansible.one("tunnel", rekeyed))
    assert changes(result) == [("fix", "tunnel", a + "/g6"), ("fix", "tunnel", b + "/g6")]
    assert "key 7 -> 8" in detail(result, "fix", a + "/g6")
