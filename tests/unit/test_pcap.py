"""topo.lab's pcap summariser (module_utils/_pcap.py) on captures crafted with scapy."""

import pytest

scapy_all = pytest.importorskip("scapy.all")

from ansible_collections.topo.lab.plugins.module_utils._pcap import matches, summarize  # noqa: E402
from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, GRE, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def one(tmp_path, pkt, **kw):
    path = tmp_path / "one.pcap"
    wrpcap(str(path), [pkt], **kw)
    rows = summarize(str(path))
    assert len(rows) == 1
    return rows[0]


def test_gre_carrying_vxlan(tmp_path):
    pkt = (Ether(src=MAC_A, dst=MAC_B) / IP(src="198.18.0.1", dst="198.18.0.2") / GRE()
           / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=40000, dport=4789) / VXLAN(vni=42)
           / Ether() / IP(src="172.16.0.1", dst="172.16.0.2") / ICMP() / b"payload")
    row = one(tmp_path, pkt)
    assert row == {
        "time": 0.0, "src": "198.18.0.1", "dst": "198.18.0.2", "protocol": "ICMP",
        "length": len(pkt), "kind": "unicast", "vni": 42, "gre_key": None,
        "layers": ["Ether", "IP", "GRE", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"],
        "inner_src": "172.16.0.1", "inner_dst": "172.16.0.2",
    }


def test_gretap_and_gre_key(tmp_path):
    tap = (Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / GRE(proto=0x6558)
           / Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
    row = one(tmp_path, tap)
    assert row["layers"] == ["Ether", "IP", "GRE", "Ether", "ARP"]
    assert row["protocol"] == "ARP" and row["kind"] == "unicast"  # the outer dst decides
    assert row["inner_src"] is None and row["gre_key"] is None

    keyed = (Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / GRE(key_present=1, key=7)
             / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())
    row = one(tmp_path, keyed)
    assert row["gre_key"] == 7 and row["vni"] is None
    assert row["layers"] == ["Ether", "IP", "GRE", "IP", "ICMP"]
    assert (row["inner_src"], row["inner_dst"]) == ("10.0.0.1", "10.0.0.2")


def test_gre_device_capture_without_ethernet(tmp_path):
    """An ip_gre device captures raw IP (linktype RAW): no Ethernet header."""
    row = one(tmp_path, IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(), linktype=101)
    assert row["layers"] == ["IP", "ICMP"]
    assert (row["src"], row["dst"], row["kind"]) == ("10.0.0.1", "10.0.0.2", "unicast")


def test_linux_cooked_capture(tmp_path):
    """tcpdump -i any (and some tunnel devices) write Linux cooked headers (SLL)."""
    from scapy.layers.l2 import CookedLinux
    pkt = CookedLinux(pkttype=1, proto=0x0800) / IP(src="10.0.0.1", dst="10.0.0.255") / ICMP()
    row = one(tmp_path, pkt, linktype=113)
    assert row["layers"] == ["CookedLinux", "IP", "ICMP"]
    assert (row["src"], row["dst"], row["kind"]) == ("10.0.0.1", "10.0.0.255", "broadcast")


def test_kinds(tmp_path):
    mcast = Ether(dst="01:00:5e:01:01:01") / IP(src="10.0.0.1", dst="224.1.1.1") / UDP(dport=5000)
    row = one(tmp_path, mcast / (b"x" * 10))
    assert (row["kind"], row["protocol"], row["dst"]) == ("multicast", "UDP", "224.1.1.1")
    assert row["layers"] == ["Ether", "IP", "UDP"]

    from scapy.layers.igmp import IGMPv3, IGMPv3_MR
    report = (Ether(dst="01:00:5e:00:00:16") / IP(src="10.0.0.1", dst="224.0.0.22")
              / IGMPv3() / IGMPv3_MR())
    row = one(tmp_path, report)
    assert (row["kind"], row["protocol"]) == ("multicast", "IGMP")

    subnet_bcast = Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.1", dst="10.0.0.255") / ICMP()
    assert one(tmp_path, subnet_bcast)["kind"] == "broadcast"
    limited = IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
    assert one(tmp_path, limited, linktype=101)["kind"] == "broadcast"

    arp = Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2")
    row = one(tmp_path, arp)
    assert (row["src"], row["dst"], row["protocol"], row["kind"]) == (
        MAC_A, "ff:ff:ff:ff:ff:ff", "ARP", "broadcast")


def test_times_lengths_and_limit(tmp_path):
    pkts = []
    for i in range(3):
        p = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=9) / (b"x" * (10 * i))
        p.time = 1000.25 + i * 0.5
        pkts.append(p)
    path = str(tmp_path / "three.pcap")
    wrpcap(path, pkts)
    rows = summarize(path)
    assert [r["time"] for r in rows] == [0.0, 0.5, 1.0]
    assert [r["length"] for r in rows] == [42, 52, 62]
    assert len(summarize(path, limit=2)) == 2
    assert summarize(path, limit=0) == []


def test_wire_length_not_snap_length(tmp_path):
    pkt = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=9) / (b"x" * 100)
    path = str(tmp_path / "snap.pcap")
    wrpcap(path, [Ether(bytes(pkt)[:60])], snaplen=60)
    # rewrite the record's original length as tcpdump -s 60 would have written it
    data = bytearray(open(path, "rb").read())
    data[24 + 12:24 + 16] = len(pkt).to_bytes(4, "little")
    open(path, "wb").write(bytes(data))
    assert summarize(path)[0]["length"] == len(pkt)


def test_matches_order_and_fields():
    rows = [
        {"layers": ["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"], "vni": 42,
         "gre_key": None, "inner_src": "10.0.0.1", "inner_dst": "10.0.0.2"},
        {"layers": ["Ether", "IP", "UDP", "VXLAN", "Ether", "ARP"], "vni": 42,
         "gre_key": None, "inner_src": None, "inner_dst": None},
        {"layers": ["Ether", "IP", "GRE", "IP", "ICMP"], "vni": None, "gre_key": 7,
         "inner_src": "10.0.0.1", "inner_dst": "10.0.0.2"},
    ]
    assert matches(rows) == rows
    assert matches(rows, layers=["VXLAN", "ICMP"]) == rows[:1]
    assert matches(rows, layers=["ICMP", "VXLAN"]) == []
    assert matches(rows, layers=["IP", "IP"]) == [rows[0], rows[2]]
    assert matches(rows, layers=["IP", "IP", "IP"]) == []
    assert matches(rows, vni=42) == rows[:2]
    assert matches(rows, vni=43) == []
    assert matches(rows, gre_key=7, inner_dst="10.0.0.2") == rows[2:]
    assert matches(rows, layers=["GRE"], inner_src="10.0.0.9") == []


# --------------------------------------------------------------------------- IPv6

def test_ipv6_udp_and_icmpv6(tmp_path):
    from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, IPv6
    udp = (Ether(src=MAC_A, dst="33:33:00:00:00:05") / IPv6(src="2001:db8:1::1", dst="ff0e::5", hlim=1)
           / UDP(sport=40000, dport=50001) / b"Hello, World!")
    row = one(tmp_path, udp)
    assert row == {
        "time": 0.0, "src": "2001:db8:1::1", "dst": "ff0e::5", "protocol": "UDP",
        "length": len(udp), "kind": "multicast", "vni": None, "gre_key": None,
        "layers": ["Ether", "IPv6", "UDP"], "inner_src": None, "inner_dst": None,
    }
    echo = Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / ICMPv6EchoRequest()
    row = one(tmp_path, echo)
    assert (row["protocol"], row["kind"], row["layers"]) == ("ICMPv6", "unicast",
                                                             ["Ether", "IPv6", "ICMPv6EchoRequest"])
    ns = (Ether(src=MAC_A, dst="33:33:ff:00:00:02") / IPv6(src="2001:db8:1::1", dst="ff02::1:ff00:2")
          / ICMPv6ND_NS(tgt="2001:db8:1::2"))
    assert (one(tmp_path, ns)["protocol"], one(tmp_path, ns)["kind"]) == ("ICMPv6", "multicast")


def test_mld_is_told_from_other_icmpv6(tmp_path):
    """MLDv2 reports (join and leave, after the hop-by-hop router alert), MLDv1 report/done
    and queries are protocol MLD; the raw-IP linktype of a tunnel device reads alike."""
    from scapy.layers.inet6 import (ICMPv6MLDMultAddrRec, ICMPv6MLDone, ICMPv6MLQuery,
                                    ICMPv6MLReport, ICMPv6MLReport2, IPv6, IPv6ExtHdrHopByHop,
                                    RouterAlert)
    hbh = IPv6ExtHdrHopByHop(options=[RouterAlert()])
    join = (Ether(src=MAC_A, dst="33:33:00:00:00:16") / IPv6(src="2001:db8:1::2", dst="ff02::16", hlim=1)
            / hbh / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst="ff0e::5")]))
    row = one(tmp_path, join)
    assert (row["protocol"], row["kind"], row["src"], row["dst"]) == (
        "MLD", "multicast", "2001:db8:1::2", "ff02::16")
    assert row["layers"] == ["Ether", "IPv6", "IPv6ExtHdrHopByHop", "ICMPv6MLReport2"]
    assert row["inner_src"] is None  # an extension header is no second IP header
    for msg in (ICMPv6MLReport(mladdr="ff0e::5"), ICMPv6MLDone(mladdr="ff0e::5"), ICMPv6MLQuery()):
        pkt = IPv6(src="fe80::1", dst="ff02::1", hlim=1) / hbh / msg
        assert one(tmp_path, pkt, linktype=101)["protocol"] == "MLD", msg


def test_icmpv6_error_quote_is_not_an_inner_packet(tmp_path):
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
    err = (Ether() / IPv6(src="2001:db8:1::fe", dst="2001:db8:1::1") / ICMPv6DestUnreach(code=4)
           / IPv6(src="2001:db8:1::1", dst="2001:db8:2::9") / UDP(sport=40000, dport=41000) / b"x")
    row = one(tmp_path, err)
    assert row["protocol"] == "ICMPv6"
    assert row["layers"] == ["Ether", "IPv6", "ICMPv6DestUnreach", "IPerror6", "UDPerror"]
    assert (row["src"], row["inner_src"], row["inner_dst"]) == ("2001:db8:1::fe", None, None)


def test_tunnels_over_an_ipv6_underlay(tmp_path):
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    vxlan = (Ether() / IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2") / UDP(sport=40000, dport=4789)
             / VXLAN(vni=42) / Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2")
             / ICMPv6EchoRequest())
    row = one(tmp_path, vxlan)
    assert row["layers"] == ["Ether", "IPv6", "UDP", "VXLAN", "Ether", "IPv6", "ICMPv6EchoRequest"]
    assert (row["src"], row["dst"], row["vni"], row["protocol"]) == (
        "2001:db8:ff::1", "2001:db8:ff::2", 42, "ICMPv6")
    assert (row["inner_src"], row["inner_dst"]) == ("2001:db8:1::1", "2001:db8:1::2")
    assert matches([row], layers=["IPv6", "VXLAN", "IPv6"], vni=42, inner_dst="2001:db8:1::2") == [row]

    ip6gretap = (Ether() / IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2") / GRE(proto=0x6558, key_present=1, key=9)
                 / Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())
    row = one(tmp_path, ip6gretap)
    assert row["layers"] == ["Ether", "IPv6", "GRE", "Ether", "IP", "ICMP"]
    assert (row["gre_key"], row["inner_src"], row["protocol"]) == (9, "10.0.0.1", "ICMP")

    ip6gre = IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2") / GRE(proto=0x86DD) / IPv6(
        src="2001:db8:1::1", dst="2001:db8:2::1") / UDP(dport=5000)
    row = one(tmp_path, ip6gre, linktype=101)
    assert row["layers"] == ["IPv6", "GRE", "IPv6", "UDP"]
    assert (row["inner_dst"], row["kind"]) == ("2001:db8:2::1", "unicast")
