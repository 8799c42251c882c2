"""topo show's comparison of what a node declares with what its namespace holds
(topo.show.interface_rows), both address families."""

from topo.show import interface_rows

NODE = {"loopback": "10.0.0.1/32", "loopback6": "2001:db8::1/128", "anycast": ["10.255.0.1/32"],
        "interfaces": [{"ifname": "eth0", "address": "10.1.0.1/30", "address6": "2001:db8:2::1/64",
                        "peer": "r2:eth0", "mtu": None}]}
UP = {"mtu": 1500, "up": True}


def test_both_families_declared_and_present_are_up():
    rows = interface_rows(NODE, {
        "eth0": {"addresses": ["10.1.0.1/30", "2001:db8:2::1/64"], **UP},
        "lo": {"addresses": ["10.0.0.1/32", "10.255.0.1/32", "2001:db8::1/128"], **UP}})
    assert [(r["ifname"], r["state"]) for r in rows] == [("eth0", "up"), ("lo", "up")]
    assert rows[0]["address6"] == "2001:db8:2::1/64" and rows[1]["address6"] == "2001:db8::1/128"


def test_a_missing_or_foreign_ipv6_address_is_drift():
    rows = interface_rows(NODE, {
        "eth0": {"addresses": ["10.1.0.1/30"], **UP},
        "lo": {"addresses": ["10.0.0.1/32", "10.255.0.1/32", "2001:db8::1/128", "2001:db8::99/128"], **UP}})
    assert rows[0]["state"] == "drift: addresses 10.1.0.1/30"
    assert rows[1]["state"] == "drift: addresses 10.0.0.1/32, 10.255.0.1/32, 2001:db8::1/128, 2001:db8::99/128"


def test_an_ipv4_lab_keeps_its_rows():
    v4 = {"loopback": None, "interfaces": [{"ifname": "eth0", "address": "10.1.0.1/30", "peer": "r2:eth0",
                                            "mtu": 1400}]}
    rows = interface_rows(v4, {"eth0": {"addresses": ["10.1.0.1/30"], "mtu": 1500, "up": False}})
    assert rows == [{"ifname": "eth0", "address": "10.1.0.1/30", "peer": "r2:eth0", "state": "drift: mtu 1500",
                     "observed": {"addresses": ["10.1.0.1/30"], "mtu": 1500, "up": False}}]


def test_an_impairment_that_differs_from_the_file_is_drift():
    """What ``topo impair`` leaves is drift; the kernel's rounding is not; no ``impair``
    observed (a remote read) is not compared."""
    v4 = {"loopback": None, "interfaces": [{"ifname": "eth0", "address": "10.1.0.1/30", "peer": "r2:eth0",
                                            "mtu": None}]}
    have = {"addresses": ["10.1.0.1/30"], "mtu": 1500, "up": True}
    declared = {"eth0": {"delay": None, "jitter": None, "loss": None, "rate": 20_000_000}}
    rate = {"rate": 20_000_000, "burst": 25000}
    state = lambda impair, declared=declared: interface_rows(  # noqa: E731
        v4, {"eth0": dict(have, impair=impair)}, impairments=declared)[0]["state"]
    assert state(rate) == "up"
    assert state({"rate": 20_000_004, "burst": 25000}) == "up"
    assert state({"rate": 1_000_000, "burst": 3028}) == "drift: impair rate 1000000 bit/s"
    assert state({}) == "drift: impair none"
    assert state(rate, {"eth0": {}}) == "drift: impair rate 20000000 bit/s"
    assert state({}, {"eth0": {}}) == "up"
    assert interface_rows(v4, {"eth0": have}, impairments=declared)[0]["state"] == "up"


def test_a_tunnel_end_whose_peer_is_outside_the_lab_shows_that_peer():
    """examples/outside-peer.yml: vtep1's vxlan77 has no peer in the lab; show names the
    outside peer's underlay address instead of an empty peer."""
    import os

    from topo.pipeline import compile_file
    from topo.show import outside_peers

    expanded = compile_file(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "outside-peer.yml")).expanded
    outside = outside_peers(expanded)
    assert outside == {("topo-outside-vtep1", "vxlan77"): "192.0.2.100"}
    vtep = expanded["nodes"]["vtep1"]
    rows = {r["ifname"]: r for r in interface_rows(vtep, {}, outside=outside)}
    assert rows["vxlan77"]["peer"] == "outside 192.0.2.100"
    assert rows["eth0"]["peer"] == "wan:vtep1-eth0"
    assert interface_rows(vtep, {})[[r["ifname"] for r in interface_rows(vtep, {})].index("vxlan77")]["peer"] is None
