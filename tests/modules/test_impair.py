"""topo.lab.impair against the real kernel: tbf and netem built, read back with ``tc -j``,
fixed, pruned and refused; the rate measured with iperf3 and the delay with ping.

This host's kernel has tbf but not netem: tests that need netem carry
``@pytest.mark.kernel("netem")`` and run in the UML guest of tests/kernel where it lacks it.
"""

import json
import re
import subprocess
import time

import pytest

from tests.modules.conftest import ROOT_ONLY, assert_noop, changes, detail, four_steps, ok, sh, step

pytestmark = ROOT_ONLY

MBIT = 1000000


def qdiscs(ns, ifname):
    """Parsed ``tc -j -n NS qdisc show dev IF``."""
    return json.loads(sh("tc", "-j", "-n", ns, "qdisc", "show", "dev", ifname))


def root(ns, ifname):
    """The root qdisc of an interface, from tc's JSON."""
    found = [q for q in qdiscs(ns, ifname) if q.get("root")]
    assert len(found) == 1, found
    return found[0]


def build(lab):
    """Namespaces a and b joined by the lab's veth a/e0 <-> b/e0 (198.18.0.1/30, .2/30)."""
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "e0", b, "e0")
    sh("ip", "-n", a, "addr", "add", "198.18.0.1/30", "dev", "e0")
    sh("ip", "-n", b, "addr", "add", "198.18.0.2/30", "dev", "e0")
    return a, b


def params(lab, items, scope):
    return {"lab": lab.name, "impairments": items, "namespaces": scope}


def untouched(*ends):
    """A check for ``four_steps``: every end still has the kernel's default root qdisc."""
    def check():
        for ns, ifname in ends:
            assert root(ns, ifname)["handle"] == "0:", qdiscs(ns, ifname)
    return check


def test_rate_four_steps(lab, ansible):
    a, b = build(lab)
    items = [{"netns": a, "ifname": "e0", "rate": 20 * MBIT}, {"netns": b, "ifname": "e0", "rate": 20 * MBIT}]
    expected = [("create", "impair", "%s/e0" % a), ("create", "impair", "%s/e0" % b)]

    apply = four_steps(ansible, lab, "impair", params(lab, items, [a, b]), expected,
                       after_check=untouched((a, "e0"), (b, "e0")))

    assert detail(apply, "create", "%s/e0" % a) == "rate 20000000 bit/s, burst 25000 B"
    assert "impair %s/e0: rate 20000000 bit/s, burst 25000 B" % a in apply["diff"]["after"]
    for ns in (a, b):
        q = root(ns, "e0")
        assert (q["kind"], q["handle"]) == ("tbf", "7470:")
        # tc prints tbf's rate in bytes/s and its latency in µs: 20 Mbit/s, 10 ms bucket, 50 ms queue
        assert q["options"] == {"rate": 2500000, "burst": 25000, "lat": 50000}


@pytest.mark.kernel("netem")
def test_netem_four_steps(lab, ansible):
    a, b = build(lab)
    items = [{"netns": a, "ifname": "e0", "delay": 10, "jitter": 2, "loss": 1.5},
             {"netns": b, "ifname": "e0", "delay": 10.5, "loss": 0.1, "rate": 5 * MBIT}]
    expected = [("create", "impair", "%s/e0" % a), ("create", "impair", "%s/e0" % b)]

    four_steps(ansible, lab, "impair", params(lab, items, [a, b]), expected,
               after_check=untouched((a, "e0"), (b, "e0")))

    q = root(a, "e0")
    assert (q["kind"], q["handle"]) == ("netem", "7470:")
    assert q["options"]["delay"]["delay"] == pytest.approx(0.010)  # tc -j: seconds
    assert q["options"]["delay"]["jitter"] == pytest.approx(0.002)
    assert q["options"]["loss-random"]["loss"] == pytest.approx(0.015)
    assert len(qdiscs(a, "e0")) == 1  # no child without a rate
    q = root(b, "e0")
    assert (q["kind"], q["handle"]) == ("netem", "7470:")
    # 10.5 ms is 164062.5 ticks of 64 ns: the kernel keeps 164062, which tc prints as 10.499 ms
    assert q["options"]["delay"]["delay"] == pytest.approx(0.0105, abs=2e-6)
    assert q["options"]["loss-random"]["loss"] == pytest.approx(0.001)
    assert "rate" not in q["options"]  # the rate is the child's, not netem's own
    child = [c for c in qdiscs(b, "e0") if c.get("parent") == "7470:1"]
    assert [(c["kind"], c["handle"]) for c in child] == [("tbf", "7471:")]
    assert child[0]["options"]["rate"] == 625000
    assert child[0]["options"]["burst"] == 6250


def _wait_listening(ns, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sh("ip", "netns", "exec", ns, "ss", "-Hltn", "sport", "= :%d" % port).strip():
            return
        time.sleep(0.1)
    raise AssertionError("iperf3 server in %s did not listen on %d" % (ns, port))


def iperf3(client_ns, server_ns, server_ip, seconds=3):
    """Received throughput in bit/s of one TCP iperf3 run from client_ns to server_ns."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-J"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_listening(server_ns, 5201)
        out = sh("ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-J", "-t", seconds)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()  # by PID: the iperf3 process ip netns exec became
            server.wait()
    return json.loads(out)["end"]["sum_received"]["bits_per_second"]


def test_rate_is_real(lab, ansible):
    a, b = build(lab)
    items = [{"netns": a, "ifname": "e0", "rate": 20 * MBIT}, {"netns": b, "ifname": "e0", "rate": 20 * MBIT}]
    ok(ansible.one("impair", params(lab, items, [a, b])))
    got = iperf3(a, b, "198.18.0.2")
    print("iperf3 received %.2f Mbit/s at a declared 20 Mbit/s" % (got / MBIT))
    assert got == pytest.approx(20 * MBIT, rel=0.10)


def ping_min(ns, ip, count=5):
    """The smallest round trip of ``count`` pings (ms): the delay the path adds, without the
    scheduling noise of a busy host (the shared lane guest runs beside the host's tests)."""
    out = sh("ip", "netns", "exec", ns, "ping", "-c", count, "-i", "0.2", "-W", "2", ip)
    return float(re.search(r"= ([\d.]+)/", out).group(1))


@pytest.mark.kernel("netem")
def test_delay_is_real(lab, ansible):
    a, b = build(lab)
    before = ping_min(a, "198.18.0.2")
    ok(ansible.one("impair", params(lab, [{"netns": a, "ifname": "e0", "delay": 50}], [a, b])))
    low = ping_min(a, "198.18.0.2")
    print("ping RTT min %.3f ms with 50 ms delay on one end (%.3f ms without)" % (low, before))
    assert 50.0 <= low < 80.0


def test_rate_fix_remove_prune_and_foreign(lab, ansible):
    a, b = build(lab)
    lab.make_veth(a, "e1", b, "e1")
    # someone's own root qdiscs (handle 1:) on two of the lab's interfaces
    for ns in (a, b):
        sh("tc", "-n", ns, "qdisc", "add", "dev", "e1", "root", "handle", "1:", "tbf",
           "rate", "1mbit", "burst", "32kbit", "latency", "50ms")
    full = params(lab, [{"netns": a, "ifname": "e0", "rate": 20 * MBIT},
                        {"netns": b, "ifname": "e0", "rate": 20 * MBIT},
                        {"netns": a, "ifname": "e1", "rate": 10 * MBIT}], [a, b])
    faster = dict(full, impairments=[dict(full["impairments"][0], rate=50 * MBIT)] + full["impairments"][1:])
    pruned = dict(faster, impairments=faster["impairments"][:1])
    cleared = dict(faster, impairments=[{"netns": a, "ifname": "e0", "rate": None}])

    create, again, fix, prune, remove, idle = ansible.run(
        step("impair", full), step("impair", full), step("impair", faster), step("impair", pruned),
        step("impair", cleared), step("impair", cleared))

    # a foreign root qdisc on a declared interface is replaced, and said so
    assert detail(create, "create", "%s/e1" % a) == "rate 10000000 bit/s, burst 12500 B; replaces tbf 1:"
    assert_noop(again)
    assert changes(fix) == [("fix", "impair", "%s/e0" % a)]
    assert detail(fix, "fix", "%s/e0" % a) == "rate 20000000 -> 50000000 bit/s, burst 25000 -> 62500 B"
    assert changes(prune) == [("remove", "impair", "%s/e1" % a), ("remove", "impair", "%s/e0" % b)]
    assert detail(prune, "remove", "%s/e0" % b) == "no longer declared: rate 20000000 bit/s, burst 25000 B"
    assert changes(remove) == [("remove", "impair", "%s/e0" % a)]  # an item with nothing set
    assert_noop(idle)
    for ns, ifname in ((a, "e0"), (b, "e0"), (a, "e1")):
        assert root(ns, ifname)["handle"] == "0:", qdiscs(ns, ifname)  # back to the kernel's default
    # the foreign qdisc on the interface never declared is left alone throughout
    q = root(b, "e1")
    assert (q["kind"], q["handle"], q["options"]["rate"]) == ("tbf", "1:", 125000)


@pytest.mark.kernel("netem")
def test_netem_fix_and_kind_changes(lab, ansible):
    a, b = build(lab)
    end = {"netns": a, "ifname": "e0"}
    shapes = [dict(end, delay=10), dict(end, delay=50), dict(end, delay=50, rate=20 * MBIT),
              dict(end, delay=50, loss=2), dict(end, rate=20 * MBIT), dict(end, delay=5, jitter=1)]
    results = ansible.run(*[step("impair", params(lab, [s], [a, b])) for s in shapes])
    name = "%s/e0" % a
    assert [changes(r) for r in results] == [[("create", "impair", name)]] + [[("fix", "impair", name)]] * 5
    assert [detail(r, "fix", name) for r in results[1:]] == [
        "delay 10.0 -> 50.0 ms",
        "rate none -> 20000000 bit/s, burst none -> 25000 B",
        "loss none -> 2.0 %, rate 20000000 -> none bit/s, burst 25000 -> none B",
        "delay 50.0 -> none ms, loss 2.0 -> none %, rate none -> 20000000 bit/s, burst none -> 25000 B",
        "delay none -> 5.0 ms, jitter none -> 1.0 ms, rate 20000000 -> none bit/s, burst 25000 -> none B",
    ]
    assert_noop(ansible.one("impair", params(lab, [shapes[-1]], [a, b])))
    assert [(q["kind"], q["handle"]) for q in qdiscs(a, "e0")] == [("netem", "7470:")]
    assert root(a, "e0")["options"]["delay"]["jitter"] == pytest.approx(0.001)


def test_unmarked_interface_is_refused(lab, ansible):
    a, b = build(lab)
    lab.make_veth(a, "mine", b, "mine", alias=None)
    res = ansible.one("impair", params(lab, [{"netns": a, "ifname": "e0", "rate": MBIT},
                                             {"netns": a, "ifname": "mine", "rate": MBIT}], [a, b]))
    assert res["failed"] is True
    assert "%s/mine" % a in res["msg"] and "not made by topo" in res["msg"]
    assert root(a, "mine")["handle"] == "0:"


def test_missing_netem_is_a_clean_failure(lab, ansible):
    a, b = build(lab)
    probe = ["tc", "-n", b, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        pytest.skip("this kernel has netem")
    res = ansible.one("impair", params(lab, [{"netns": a, "ifname": "e0", "delay": 10}], [a, b]))
    assert res["failed"] is True
    assert "cannot run netem qdiscs (CONFIG_NET_SCH_NETEM); load sch_netem" in res["msg"], res["msg"]
    assert root(a, "e0")["handle"] == "0:"
