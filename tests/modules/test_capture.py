"""topo.lab.capture: tcpdump in a namespace while traffic runs, summarised with scapy.

Two namespaces joined by a veth (underlay 198.18.0.0/30) carry a VXLAN (VNI 42,
port 4789) with the overlay 198.18.1.0/30; all traffic stays between them.
"""

import os

import pytest

from tests.modules.conftest import ROOT_ONLY, ok, sh, step

pytestmark = ROOT_ONLY + [pytest.mark.skipif(
    not any(os.path.exists(d + "/tcpdump") for d in ("/usr/sbin", "/usr/bin")),
    reason="needs tcpdump")]

PING = ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1"]


@pytest.fixture
def pair(lab):
    """(a, b): namespaces with veth eth0 (198.18.0.1/.2) and vxlan vx42 (198.18.1.1/.2)."""
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "eth0", b, "eth0")
    for ns, me, peer in ((a, 1, 2), (b, 2, 1)):
        sh("ip", "-n", ns, "addr", "add", "198.18.0.%d/30" % me, "dev", "eth0")
        sh("ip", "-n", ns, "link", "add", "vx42", "type", "vxlan", "id", "42", "dstport", "4789",
           "local", "198.18.0.%d" % me, "remote", "198.18.0.%d" % peer, "dev", "eth0")
        sh("ip", "-n", ns, "addr", "add", "198.18.1.%d/30" % me, "dev", "vx42")
        sh("ip", "-n", ns, "link", "set", "vx42", "up")
    return a, b


def capture(tmp_path, netns, name, **params):
    return dict({"netns": netns, "interface": "eth0", "path": str(tmp_path / "pcap" / name),
                 "settle": 0.3}, **params)


def gone(pid):
    """True when no tcpdump runs under ``pid`` any more."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() != "tcpdump"
    except FileNotFoundError:
        return True


def test_vxlan_on_the_underlay(pair, ansible, tmp_path):
    a, b = pair
    traffic = [{"netns": a, "argv": PING + ["198.18.1.2"]}]
    good, wrong_vni, checked = ansible.run(
        step("capture", capture(tmp_path, a, "good.pcap", traffic=traffic,
                                expect={"layers": ["VXLAN", "ICMP"], "vni": 42})),
        step("capture", capture(tmp_path, a, "wrong.pcap", traffic=traffic,
                                expect={"layers": ["VXLAN", "ICMP"], "vni": 43})),
        step("capture", capture(tmp_path, a, "check.pcap", traffic=traffic), check=True),
    )

    ok(good)
    assert good["changed"] is False
    assert good["matched"] >= 6  # 3 requests and 3 replies
    assert good["traffic"][0]["rc"] == 0 and "3 received" in good["traffic"][0]["stdout"]
    assert os.path.getsize(good["path"]) > 24 and good["total"] == len(good["rows"])
    icmp = [r for r in good["rows"] if r["protocol"] == "ICMP"]
    assert len(icmp) >= 6
    for r in icmp:
        assert r["layers"] == ["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"]
        assert r["vni"] == 42 and r["kind"] == "unicast" and r["gre_key"] is None
        assert {r["src"], r["dst"]} == {"198.18.0.1", "198.18.0.2"}
        assert {r["inner_src"], r["inner_dst"]} == {"198.18.1.1", "198.18.1.2"}
    assert [r["time"] for r in good["rows"]] == sorted(r["time"] for r in good["rows"])
    assert good["rows"][0]["time"] == 0.0
    assert gone(good["tcpdump"]["pid"])

    assert wrong_vni["failed"] is True and wrong_vni["matched"] == 0
    msg = wrong_vni["msg"]
    assert "vni 43" in msg and "0 matched" in msg
    assert "Ether/IP/UDP/VXLAN/Ether/IP/ICMP (vni 42)" in msg, msg
    assert gone(wrong_vni["tcpdump"]["pid"])

    # the module returns skipped=true; Ansible reports the task as skipped
    assert checked["_status"] == "skipped" and checked["changed"] is False
    assert not os.path.exists(tmp_path / "pcap" / "check.pcap")


def test_broadcast_and_filter_matching_nothing(pair, ansible, tmp_path):
    a, b = pair
    sh("ip", "netns", "exec", b, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0")
    bcast = [{"netns": a, "argv": ["ping", "-n", "-b", "-c", "2", "-i", "0.2", "-W", "1",
                                   "198.18.0.3"]}]
    unicast = [{"netns": a, "argv": PING + ["198.18.0.2"]}]
    seen, nothing, expected = ansible.run(
        step("capture", capture(tmp_path, b, "bcast.pcap", filter="icmp", traffic=bcast)),
        step("capture", capture(tmp_path, b, "none.pcap", filter="tcp port 9", traffic=unicast)),
        step("capture", capture(tmp_path, b, "none2.pcap", filter="tcp port 9", traffic=unicast,
                                expect={"layers": ["TCP"]})),
    )

    ok(seen)
    assert seen["traffic"][0]["rc"] == 0
    rows = [(r["kind"], r["protocol"], r["src"], r["dst"]) for r in seen["rows"]]
    assert rows == [("broadcast", "ICMP", "198.18.0.1", "198.18.0.3"),   # echo request
                    ("unicast", "ICMP", "198.18.0.2", "198.18.0.1")] * 2  # its reply
    assert all(r["vni"] is None and r["inner_src"] is None for r in seen["rows"])

    ok(nothing)
    assert nothing["rows"] == [] and nothing["total"] == 0
    assert nothing["traffic"][0]["rc"] == 0

    assert expected["failed"] is True and expected["matched"] == 0
    assert "layers TCP" in expected["msg"] and "seen: no packets" in expected["msg"]


def test_tcpdump_stopped_whatever_the_traffic_does(pair, ansible, tmp_path):
    a, b = pair
    traffic = [{"netns": a, "argv": ["no-such-command-xyz"]},
               {"netns": a, "argv": ["sleep", "30"], "timeout": 0.5},
               {"argv": ["false"]}]
    res, failed = ansible.run(
        step("capture", capture(tmp_path, a, "t1.pcap", traffic=traffic, filter="icmp")),
        step("capture", capture(tmp_path, a, "t2.pcap", traffic=traffic, filter="icmp",
                                expect={"layers": ["ICMP"]})),
    )
    ok(res)
    bad, slow, false = res["traffic"]
    assert bad["rc"] != 0 and "no-such-command-xyz" in bad["stderr"]
    assert slow["timed_out"] is True and slow["rc"] is None
    assert false["netns"] == a and false["rc"] == 1
    assert res["tcpdump"]["rc"] == 0 and gone(res["tcpdump"]["pid"])

    assert failed["failed"] is True
    assert "traffic failed: no-such-command-xyz (rc %d)" % bad["rc"] in failed["msg"]
    assert "sleep 30 (rc None, timed out)" in failed["msg"]
    assert gone(failed["tcpdump"]["pid"])


def test_clean_errors(pair, ansible, tmp_path, lab):
    a, b = pair
    no_ns, no_if, bad_filter, no_traffic_ns = ansible.run(
        step("capture", capture(tmp_path, lab.ns("ghost"), "x.pcap")),
        step("capture", capture(tmp_path, a, "x.pcap", interface="eth9")),
        step("capture", capture(tmp_path, a, "x.pcap", filter="no such filter")),
        step("capture", capture(tmp_path, a, "x.pcap",
                                traffic=[{"netns": lab.ns("ghost2"), "argv": ["true"]}])),
    )
    assert no_ns["failed"] and no_ns["msg"] == "namespace %s does not exist" % lab.ns("ghost")
    assert no_if["failed"] and no_if["msg"] == "interface eth9 does not exist in namespace %s" % a
    assert bad_filter["failed"] and "can't parse filter expression" in bad_filter["msg"]
    assert "exited with 1 before listening" in bad_filter["msg"]
    assert no_traffic_ns["failed"] and lab.ns("ghost2") in no_traffic_ns["msg"]


def test_duration_without_traffic(pair, ansible, tmp_path):
    a, b = pair
    res = ok(ansible.one("capture", capture(tmp_path, a, "idle.pcap", filter="icmp",
                                            duration=0.5)))
    assert res["total"] == 0 and res["traffic"] == []
    assert 0.5 <= res["elapsed"] < 3


# --------------------------------------------------------------------------- IPv6

JOIN6 = ("import socket, struct, time; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
         "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton("
         "socket.AF_INET6, 'ff0e::42') + struct.pack('@I', socket.if_nametoindex('eth0'))); "
         "time.sleep(0.3)")


@pytest.fixture
def pair6(lab):
    """(a, b): veth eth0 over IPv6 only (2001:db8:f::1/.2, no DAD) carrying vxlan vx42 with
    IPv6 local/remote, overlay 2001:db8:e::1/.2."""
    a, b = lab.make_ns("a"), lab.make_ns("b")
    for ns in (a, b):
        for key in ("all.accept_dad", "default.accept_dad"):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s=0" % key)
    lab.make_veth(a, "eth0", b, "eth0")
    for ns, me, peer in ((a, 1, 2), (b, 2, 1)):
        sh("ip", "-n", ns, "addr", "add", "2001:db8:f::%d/64" % me, "dev", "eth0", "nodad")
        sh("ip", "-n", ns, "link", "add", "vx42", "type", "vxlan", "id", "42", "dstport", "4789",
           "local", "2001:db8:f::%d" % me, "remote", "2001:db8:f::%d" % peer, "dev", "eth0")
        sh("ip", "-n", ns, "addr", "add", "2001:db8:e::%d/64" % me, "dev", "vx42", "nodad")
        sh("ip", "-n", ns, "link", "set", "vx42", "up")
    return a, b


def test_ipv6_underlay_icmpv6_and_mld(pair6, ansible, tmp_path):
    """VXLAN over an IPv6 underlay carrying ping -6 is summarised layer by layer; a group
    join shows as MLD (not as other ICMPv6)."""
    a, b = pair6
    ping6 = [{"netns": a, "argv": ["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:e::2"]}]
    join = [{"netns": a, "argv": ["python3", "-c", JOIN6]}]
    tunnel, mld = ansible.run(
        step("capture", capture(tmp_path, b, "vx6.pcap", traffic=ping6, filter="udp port 4789",
                                expect={"layers": ["IPv6", "VXLAN", "IPv6", "ICMPv6EchoRequest"],
                                        "vni": 42, "inner_dst": "2001:db8:e::2", "min_packets": 3})),
        step("capture", capture(tmp_path, b, "mld.pcap", traffic=join, filter="ip6 dst ff02::16",
                                expect={"layers": ["IPv6", "ICMPv6MLReport2"]})),
    )
    ok(tunnel)
    icmp6 = [r for r in tunnel["rows"] if r["protocol"] == "ICMPv6"]  # echoes, and the overlay's ND
    echo = [r for r in icmp6 if r["layers"][-1].startswith("ICMPv6Echo")]
    assert len(echo) == 6, tunnel["rows"]  # 3 requests, 3 replies
    for r in icmp6:
        assert r["layers"][:6] == ["Ether", "IPv6", "UDP", "VXLAN", "Ether", "IPv6"]
        assert {r["src"], r["dst"]} == {"2001:db8:f::1", "2001:db8:f::2"} and r["vni"] == 42
    for r in echo:
        assert {r["inner_src"], r["inner_dst"]} == {"2001:db8:e::1", "2001:db8:e::2"}
    ok(mld)
    assert mld["matched"] >= 1
    for r in mld["rows"]:
        assert (r["protocol"], r["dst"], r["kind"]) == ("MLD", "ff02::16", "multicast")
        assert r["src"].startswith("fe80:")  # MLD is sent from the link-local address
