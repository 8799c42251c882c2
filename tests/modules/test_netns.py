"""topo.lab.netns against the real kernel: namespaces, lo marker, sysctls (IPv4 and IPv6), prune, absent."""

import os
import sys

from tests.modules.conftest import (
    ROOT_ONLY, assert_noop, changes, detail, links, lo_alias, netns_exists, ok, sh, step,
    sysctl,
)

pytestmark = ROOT_ONLY


def nsdecl(lab, node, **sysctls):
    return {"name": lab.ns(node), "node": node, "sysctls": sysctls}


def set_sysctl(ns, key, value):
    sh("ip", "netns", "exec", ns, "sh", "-c",
       "echo %s > /proc/sys/%s" % (value, key.replace(".", "/")))


def test_netns_four_steps(lab, ansible):
    params = {"lab": lab.name, "namespaces": [
        nsdecl(lab, "h1"),
        {"name": lab.ns("r1"), "node": "r1",
         "sysctls": {"net.ipv4.ip_forward": 1, "net.ipv4.icmp_echo_ignore_broadcasts": "0"}},
    ]}
    expected = [("create", "netns", lab.ns("h1")), ("create", "netns", lab.ns("r1"))]

    # 1. check mode: reports both creates, creates nothing
    check = ansible.one("netns", params, check=True)
    assert check["changed"] is True
    assert changes(check) == expected
    assert lab.owned_names() == []

    # 2. apply, 3. apply again, 4. check again
    apply, again, recheck = ansible.run(step("netns", params), step("netns", params),
                                        step("netns", params, check=True))
    assert apply["changed"] is True
    assert changes(apply) == expected
    assert apply["owned"] == []
    assert_noop(again)
    assert again["owned"] == [lab.ns("h1"), lab.ns("r1")]
    assert_noop(recheck)

    # the kernel holds exactly what was declared
    assert lab.owned_names() == [lab.ns("h1"), lab.ns("r1")]
    for node in ("h1", "r1"):
        lo = links(lab.ns(node))
        assert list(lo) == ["lo"], lo
        assert lo["lo"]["up"] is True
        assert lo["lo"]["alias"] == "topo:%s:%s" % (lab.name, node)
    assert sysctl(lab.ns("r1"), "net.ipv4.ip_forward") == "1"
    assert sysctl(lab.ns("r1"), "net.ipv4.icmp_echo_ignore_broadcasts") == "0"
    # undeclared sysctls keep what a new namespace starts with: for IPv4, a copy of the root
    # namespace's values (net.core.devconf_inherit_init_net=0, the kernel's default)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        inherited = f.read().strip()
    assert sysctl(lab.ns("h1"), "net.ipv4.ip_forward") == inherited
    assert sysctl(lab.ns("h1"), "net.ipv4.icmp_echo_ignore_broadcasts") == "1"


def test_netns_drift_repair_and_prune(lab, ansible):
    full = {"lab": lab.name, "namespaces": [
        nsdecl(lab, "h1"), nsdecl(lab, "h2", **{"net.ipv4.ip_forward": "1"}), nsdecl(lab, "h3")]}
    ok(ansible.one("netns", full))
    assert lab.owned_names() == [lab.ns("h1"), lab.ns("h2"), lab.ns("h3")]

    # look-alikes that prune must not touch: a lab-named namespace without a marker,
    # one whose lo carries the interface marker (no node), and another lab's namespace
    bare = lab.make_ns("x", alias=None)
    ifmark = lab.make_ns("y", alias=lab.if_marker)
    other = lab.make_ns("z", alias="topo:%sz:z" % lab.name,
                        name="topo-%sz-z" % lab.name)

    # drift by hand: lo of h1 down, sysctl of h2 reset; and h3 is no longer declared
    sh("ip", "-n", lab.ns("h1"), "link", "set", "lo", "down")
    set_sysctl(lab.ns("h2"), "net.ipv4.ip_forward", 0)
    reduced = {"lab": lab.name, "namespaces": full["namespaces"][:2]}

    check, apply, again = ansible.run(step("netns", reduced, check=True),
                                      step("netns", reduced), step("netns", reduced))
    expected = [("fix", "netns", lab.ns("h1")), ("fix", "netns", lab.ns("h2")),
                ("remove", "netns", lab.ns("h3"))]
    assert changes(check) == expected
    # the apply after the check saw the same drift: check mode changed nothing
    assert changes(apply) == expected
    assert apply["owned"] == [lab.ns("h1"), lab.ns("h2"), lab.ns("h3")]
    assert "lo down -> up" in detail(apply, "fix", lab.ns("h1"))
    assert "net.ipv4.ip_forward 0 -> 1" in detail(apply, "fix", lab.ns("h2"))
    assert_noop(again)

    assert links(lab.ns("h1"))["lo"]["up"] is True
    assert sysctl(lab.ns("h2"), "net.ipv4.ip_forward") == "1"
    assert not netns_exists(lab.ns("h3"))
    for name in (bare, ifmark, other):
        assert netns_exists(name), name
    assert lo_alias(bare) is None
    assert lo_alias(ifmark) == lab.if_marker
    assert lo_alias(other) == "topo:%sz:z" % lab.name


def test_netns_absent_removes_only_this_lab(lab, ansible):
    # the lab's namespaces carry the marker (made by hand: ownership is only the marker)
    h1 = lab.make_ns("h1")
    r1 = lab.make_ns("r1", name="renamed-%s-r1" % lab.name)  # owned by marker, not by name
    bare = lab.make_ns("x", alias=None)
    lookalike = lab.make_ns("y", alias="topo:%sy:y" % lab.name)
    other = lab.make_ns("z", alias="topo:%sz:z" % lab.name, name="topo-%sz-z" % lab.name)
    params = {"lab": lab.name, "state": "absent"}

    check, apply, again = ansible.run(step("netns", params, check=True),
                                      step("netns", params), step("netns", params))
    expected = [("remove", "netns", r1), ("remove", "netns", h1)]
    assert changes(check) == sorted(expected)
    assert changes(apply) == sorted(expected)
    assert apply["owned"] == sorted([h1, r1])
    assert_noop(again)
    assert again["owned"] == []

    assert not netns_exists(h1) and not netns_exists(r1)
    for name in (bare, lookalike, other):
        assert netns_exists(name), name
        assert links(name)["lo"]["up"] is True
    assert lo_alias(bare) is None
    assert lo_alias(lookalike) == "topo:%sy:y" % lab.name


def test_netns_refuses_namespace_not_made_by_topo(lab, ansible):
    bare = lab.make_ns("h1", alias=None)
    foreign = lab.make_ns("h2", alias="topo:%sq:h2" % lab.name)  # another lab's marker
    results = ansible.run(
        step("netns", {"lab": lab.name, "namespaces": [nsdecl(lab, "h1")]}, check=True),
        step("netns", {"lab": lab.name, "namespaces": [nsdecl(lab, "h1")]}),
        step("netns", {"lab": lab.name, "namespaces": [nsdecl(lab, "h2")]}),
    )
    for res, name in zip(results, (bare, bare, foreign)):
        assert res.get("failed") is True, res
        assert "not made by topo" in res["msg"]
        assert name in res["msg"]
    # nothing was adopted, re-marked or created
    assert lo_alias(bare) is None
    assert lo_alias(foreign) == "topo:%sq:h2" % lab.name
    assert lab.owned_names() == sorted([bare, foreign])


#: The IPv6 sysctls the expansion gives a node of a lab with IPv6 (a forwarding one here).
IPV6_SYSCTLS = {"net.ipv6.conf.all.forwarding": "1",
                "net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0",
                "net.ipv6.conf.all.accept_ra": "0", "net.ipv6.conf.default.accept_ra": "0"}


def test_netns_ipv6_sysctls_reach_every_lab_interface_and_drift_is_repaired(lab, ansible):
    params = {"lab": lab.name, "namespaces": [
        {"name": lab.ns("r1"), "node": "r1", "sysctls": dict(IPV6_SYSCTLS, **{"net.ipv4.ip_forward": "1"})},
        nsdecl(lab, "h1")]}
    check, apply, again, recheck = ansible.run(step("netns", params, check=True), step("netns", params),
                                               step("netns", params), step("netns", params, check=True))
    expected = [("create", "netns", lab.ns("h1")), ("create", "netns", lab.ns("r1"))]
    assert changes(check) == expected and changes(apply) == expected
    assert_noop(again)
    assert_noop(recheck)
    r1, h1 = lab.ns("r1"), lab.ns("h1")
    for key, value in IPV6_SYSCTLS.items():
        assert sysctl(r1, key) == value, key
    # h1 declared none: the kernel's defaults for a new namespace (not the root's)
    assert (sysctl(h1, "net.ipv6.conf.all.forwarding"), sysctl(h1, "net.ipv6.conf.default.accept_dad")) == ("0", "1")

    # an interface moved in afterwards (as the veth pass does) takes the default.* values:
    # no DAD, no router advertisements, forwarding; its link-local address is there at once
    sh("ip", "-n", h1, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", r1)
    sh("ip", "-n", h1, "link", "set", "eth0", "up")
    sh("ip", "-n", r1, "link", "set", "eth0", "up")
    for key, value in (("accept_dad", "0"), ("accept_ra", "0"), ("forwarding", "1"), ("disable_ipv6", "0")):
        assert sysctl(r1, "net.ipv6.conf.eth0." + key) == value, key
    import json
    import time

    # without DAD the kernel clears "tentative" from its workqueue within milliseconds of the
    # link coming up; real DAD would hold it for a second or more (one probe, RetransTimer
    # 1000 ms, RFC 4862), so half a second tells the two apart
    deadline = time.monotonic() + 0.5
    while True:
        local = [a for link in json.loads(sh("ip", "-j", "-n", r1, "-6", "addr", "show", "dev", "eth0"))
                 for a in link["addr_info"] if a["scope"] == "link"]
        if (local and not local[0].get("tentative")) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(local) == 1 and not local[0].get("tentative"), local

    # drift: a default.* value and forwarding reset by hand are compared and written again
    set_sysctl(r1, "net.ipv6.conf.default.accept_dad", 1)
    set_sysctl(r1, "net.ipv6.conf.all.forwarding", 0)
    plan, fix, again = ansible.run(step("netns", params, check=True), step("netns", params), step("netns", params))
    for result in (plan, fix):
        assert changes(result) == [("fix", "netns", r1), ("fix", "netns", r1)]
        details = sorted(c["detail"] for c in result["changes"])
        assert details == ["net.ipv6.conf.all.forwarding 0 -> 1", "net.ipv6.conf.default.accept_dad 1 -> 0"]
    assert_noop(again)
    assert sysctl(r1, "net.ipv6.conf.default.accept_dad") == "0"
    assert sysctl(r1, "net.ipv6.conf.all.forwarding") == "1"
    assert sysctl(r1, "net.ipv6.conf.eth0.forwarding") == "1"


def test_quick_link_reading_equals_the_full_decode(lab):
    """The lab module reads links through plain netlink sockets and, for plain devices and
    veths, only the attributes it compares (quick_link_summary); every link of real
    namespaces must read the same, key for key, as pyroute2's full decode (link_summary),
    whatever was set by hand: MTU, MAC, group, master, a non-ASCII alias, down, a peer in
    the same and in another namespace, bridges with each multicast switch on and off."""
    from ansible_collections.topo.lab.plugins.module_utils._netns import (
        IPRoute, entered, link_dump, link_get, link_reading, links_by_name, netnsid, quick_link_summary, raw_socket,
    )
    a, b = lab.make_ns("q1"), lab.make_ns("q2")
    sh("ip", "-n", a, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", a, "link", "add", "br1", "type", "bridge", "mcast_snooping", "0", "mcast_querier", "1")
    sh("ip", "-n", a, "link", "add", "v1", "address", "02:aa:bb:cc:dd:01", "mtu", "1400", "group", "29808",
       "type", "veth", "peer", "name", "v2", "netns", b)
    sh("ip", "-n", a, "link", "set", "v1", "master", "br0", "up", "alias", "topo:é lab")
    sh("ip", "-n", a, "link", "add", "v3", "type", "veth", "peer", "name", "v4")
    sh("ip", "-n", b, "link", "set", "v2", "alias", "topo:x")
    for ns, names in ((a, ["br0", "br1", "lo", "v1", "v3", "v4"]), (b, ["lo", "v2"])):
        sock = raw_socket(ns)
        with entered(ns):
            ipr = IPRoute()
        try:
            quick, full = links_by_name(sock), links_by_name(ipr)
            # the quick reading served every link, bridges included
            read = [quick_link_summary(data) for data in link_dump(sock, raw=True)]
            # one link asked by name (the read-back after a change) reads the same too
            one = dict((name, link_reading(link_get(sock, name, raw=True))) for name in names)
        finally:
            sock.close()
            ipr.close()
        assert sorted(quick) == names
        assert quick == full
        assert one == full
        assert sorted(r["ifname"] for r in read if r is not None) == names
        if ns == a:
            assert (full["br0"]["mcast_snooping"], full["br0"]["mcast_querier"]) == (1, 0)
            assert (full["br1"]["mcast_snooping"], full["br1"]["mcast_querier"]) == (0, 1)
    assert full["v2"]["alias"] == "topo:x" and full["v2"]["peer_netnsid"] is not None
    # the id under which b sees a (read with one hand-packed RTM_GETNSID) is what v2's
    # IFLA_LINK_NETNSID says and what pyroute2's IPRoute answers; a namespace b has no id
    # for has none
    c = lab.make_ns("q4")
    sock = raw_socket(b)
    with entered(b):
        ipr = IPRoute()
    fd_a, fd_c = os.open("/run/netns/" + a, os.O_RDONLY), os.open("/run/netns/" + c, os.O_RDONLY)
    try:
        assert netnsid(sock, fd_a) == full["v2"]["peer_netnsid"] == ipr.get_netnsid(fd=fd_a).get("nsid")
        assert netnsid(sock, fd_c) is None
    finally:
        os.close(fd_a)
        os.close(fd_c)
        sock.close()
        ipr.close()


def test_quick_address_and_route_reading_equals_the_full_decode(lab):
    """The lab module reads addresses and routes through plain netlink sockets, straight from
    the attributes it compares (address_record, route_record); every address and route of a
    real namespace must read the same as pyroute2's full decode of the same messages, and
    the addresses the same as through an IPRoute socket: IPv4 with and without a broadcast,
    a secondary, a /32, IPv6 without DAD and tentative, the kernel's link-local ones; routes
    via a gateway, through a device only (scope link), IPv6, topo's protocol, another table."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    from ansible_collections.topo.lab.plugins.module_utils._netns import (
        _ADDRESS_DUMP, _RTMSG, RTM_GETADDR, RTM_GETROUTE, IPRoute, address_dump, address_flags, address_record,
        address_records, entered, raw_socket, request, route_dump, route_record,
    )
    ns = lab.make_ns("q3")
    sh("ip", "-n", ns, "link", "add", "v1", "type", "veth", "peer", "name", "v2")
    for ifname in ("v1", "v2"):
        sh("ip", "-n", ns, "link", "set", ifname, "up")
    for args in (["10.9.0.1/24", "brd", "+"], ["10.9.0.2/24"], ["10.9.1.1/32"], ["2001:db8:9::1/64", "nodad"],
                 ["2001:db8:9::2/64"]):
        sh("ip", "-n", ns, "address", "add", *args, "dev", "v1")
    sh("ip", "-n", ns, "address", "add", "10.9.2.1/30", "brd", "10.9.2.3", "dev", "v2")
    for args in (["10.20.0.0/16", "via", "10.9.0.254", "proto", "116"], ["10.21.0.0/16", "dev", "v2"],
                 ["default", "via", "10.9.0.254"], ["2001:db8:20::/48", "via", "2001:db8:9::fe", "proto", "116"],
                 ["10.22.0.0/16", "via", "10.9.0.254", "table", "100"],
                 ["10.23.0.0/16", "via", "10.9.0.254", "table", "1000", "proto", "116"]):
        sh("ip", "-n", ns, "route", "add", *args)

    def full(cls, data):
        msg = cls(data)
        msg.decode()
        return msg

    sock = raw_socket(ns)
    with entered(ns):
        ipr = IPRoute()
    try:
        raw = request(sock, _ADDRESS_DUMP, RTM_GETADDR, bytes)
        quick = [address_record(data) for data in raw]
        decoded = [full(ifaddrmsg, data) for data in raw]
        assert quick == [{"family": m["family"], "prefixlen": m["prefixlen"], "index": m["index"],
                          "flags": address_flags(m), "scope": m["scope"], "address": m.get_attr("IFA_ADDRESS"),
                          "broadcast": m.get_attr("IFA_BROADCAST")} for m in decoded]
        assert address_records(sock) == address_records(ipr)
        cidrs = set("%s/%d" % (a["address"], a["prefixlen"]) for a in address_dump(sock))
        assert {"10.9.0.1/24", "10.9.0.2/24", "10.9.1.1/32", "2001:db8:9::1/64", "10.9.2.1/30"} <= cidrs
        assert any(a["address"].startswith("fe80:") for a in address_dump(sock))  # the kernel's, read too

        raw = request(sock, _RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0), RTM_GETROUTE, bytes)
        quick = [route_record(data) for data in raw]
        decoded = [full(rtmsg, data) for data in raw]
        assert quick == [{"family": m["family"], "dst_len": m["dst_len"],
                          "table": m.get_attr("RTA_TABLE") or m["table"], "proto": m["proto"], "scope": m["scope"],
                          "type": m["type"], "dst": m.get_attr("RTA_DST"), "gateway": m.get_attr("RTA_GATEWAY"),
                          "oif": m.get_attr("RTA_OIF")} for m in decoded]
        main = route_dump(sock, 254)
        assert [(r["dst"], r["dst_len"], r["gateway"]) for r in route_dump(sock, 254, 116)] == [
            ("10.20.0.0", 16, "10.9.0.254"), ("2001:db8:20::", 48, "2001:db8:9::fe")]
        assert ("10.21.0.0", None, 253) in [(r["dst"], r["gateway"], r["scope"]) for r in main]
        assert (None, 0, "10.9.0.254") in [(r["dst"], r["dst_len"], r["gateway"]) for r in main]
        assert [r["dst"] for r in route_dump(sock, 100)] == ["10.22.0.0"]
        assert [r["dst"] for r in route_dump(sock, 1000, 116)] == ["10.23.0.0"]
    finally:
        sock.close()
        ipr.close()


def test_netns_helpers_import_pyroute2_message_classes_only():
    """Importing the module utils the lab module runs imports pyroute2's netlink errors only,
    not the package's __init__ (which imports every socket class of the library, about
    0.25 s), nor IPRoute, nor the link message class (about 17 ms, for links the quick
    reading cannot serve); a later ``from pyroute2 import ...`` in the same process still
    gets the whole library."""
    code = (
        "import sys\n"
        "import ansible_collections.topo.lab.plugins.module_utils._resources.veth\n"
        "import ansible_collections.topo.lab.plugins.module_utils._resources.impairment\n"
        "loaded = set(m for m in sys.modules if m.startswith('pyroute2'))\n"
        "assert 'pyroute2.netlink.exceptions' in loaded, loaded\n"
        "assert not loaded & {'pyroute2.ndb.main', 'pyroute2.conntrack', 'pyroute2.iproute.linux',\n"
        "                     'pyroute2.netlink.rtnl.tcmsg', 'pyroute2.netlink.rtnl.ifinfmsg'}, sorted(loaded)\n"
        "from pyroute2 import IPRoute, NDB, config\n"
        "import pyroute2\n"
        "assert pyroute2.IPRoute is IPRoute and pyroute2.__version__\n"
        "assert 'pyroute2.ndb.main' in sys.modules\n"
        "print('ok')\n"
    )
    assert sh(sys.executable, "-c", code).strip() == "ok"
