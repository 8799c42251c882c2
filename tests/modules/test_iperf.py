"""topo.lab.iperf run through ansible-playbook on the build host, with real iperf3 between
real namespaces (and a real container).

Every test makes its own pair of namespaces ``ti<hex>-a`` / ``ti<hex>-b`` joined by a veth
(198.18.5.0/24; the ``lab`` fixture deletes them whatever happens). Traffic never leaves
them: the only route either has is the veth's subnet. The container test runs its own
container (label ``topo.test=<tag>``, no network of docker's), wired into ``b`` with a veth
by its PID, and removes it in a finally.

No iperf3 process may outlive a check: every server PID the module reports is looked up
afterwards (on the host, or inside the container), never a process found by name.
"""

from __future__ import annotations

import secrets
import statistics

import pytest

from tests.conftest import NODE_IMAGE
from tests.modules.conftest import ROOT_ONLY, ok, sh, step

pytestmark = ROOT_ONLY

NET = "198.18.5."
A_ADDR, B_ADDR, GHOST = NET + "1", NET + "2", NET + "77"


class Pair:
    """Two namespaces joined by a veth: a (client side, .1) and b (server side, .2)."""

    def __init__(self, lab):
        self.tag = "ti" + secrets.token_hex(3)
        self.a = lab.make_ns("a", alias=None, name=self.tag + "-a")
        self.b = lab.make_ns("b", alias=None, name=self.tag + "-b")
        lab.make_veth(self.a, "eth0", self.b, "eth0", alias=None)
        sh("ip", "-n", self.a, "addr", "add", A_ADDR + "/24", "dev", "eth0")
        sh("ip", "-n", self.b, "addr", "add", B_ADDR + "/24", "dev", "eth0")

    def part(self, side, container=None):
        ns = {"a": self.a, "b": self.b}.get(side)
        addr = {"a": A_ADDR, "b": B_ADDR}.get(side)
        return {"node": side, "netns": ns, "container": container, "address": addr}

    def check(self, name, **over):
        c = {"type": "iperf3", "name": name, "description": "iperf3 test " + name,
             "client": self.part("a"), "server": self.part("b"), "address": B_ADDR,
             "proto": "tcp", "duration": 1, "parallel": 1, "lengths": [], "repeats": 1, "bitrate": None,
             "min_bps": None, "port": 5201}
        c.update(over)
        return c


@pytest.fixture
def pair(lab):
    return Pair(lab)


def host_pid_gone(pid):
    """True when host PID ``pid`` is no longer an iperf3 (gone, or reused by another program)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"iperf3" not in f.read()
    except OSError:
        return True


def server_pids(result, node="b"):
    pids = [r["pid"] for r in result["details"][node]["runs"]]
    assert pids and all(isinstance(p, int) and p > 0 for p in pids), result["details"]
    return pids


def iperf(ansible, *checks):
    return ansible.run(*[step("iperf", {"check": c}) for c in checks])


def mbit(run):
    return run["bits_per_second"] / 1e6


# --------------------------------------------------------------------------- netns nodes

def test_tcp_sweep_and_udp_run(pair, ansible, tmp_path):
    tcp_check = pair.check("tcp-sweep", lengths=[200, 800, 3200], min_bps=30e6)
    # the UDP run is captured on b's side of the veth
    udp_check = pair.check("udp-10m", proto="udp", bitrate=10_000_000, lengths=[], capture={
        "node": "b", "interface": "eth0", "netns": pair.b, "container": None, "filter": "udp port 5201"})
    captures = tmp_path / "captures"
    tcp, udp, checked, no_dir = ansible.run(
        step("iperf", {"check": tcp_check}),
        step("iperf", {"check": udp_check, "capture_dir": str(captures)}),
        step("iperf", {"check": tcp_check}, check=True),
        step("iperf", {"check": udp_check}))

    # TCP: one run per length, in order, each well above 30 Mbit/s over a veth (measured 235+ at 200 B on a busy 2-core machine)
    ok(tcp)
    assert tcp["ok"] is True and tcp["changed"] is False
    assert (tcp["type"], tcp["name"], tcp["description"]) == ("iperf3", "tcp-sweep", "iperf3 test tcp-sweep")
    runs = tcp["figures"]["runs"]
    assert [r["length"] for r in runs] == [200, 800, 3200]
    for r in runs:
        assert r["bits_per_second"] > 30e6, r
        assert isinstance(r["retransmits"], int) and r["retransmits"] >= 0
        assert r["jitter_ms"] is None and r["lost_percent"] is None and r["packets"] is None
    bps = [r["bits_per_second"] for r in runs]
    assert tcp["figures"]["min_bps"] == min(bps)
    assert tcp["figures"]["median_bps"] == statistics.median(bps)
    assert tcp["figures"]["threshold_bps"] == 30e6
    assert tcp["expected"] == ">= 30 Mbit/s at every length (200, 800, 3200 B)"
    assert tcp["observed"].startswith("200 B: ") and ", 3200 B: " in tcp["observed"]
    assert "msg" not in tcp
    # what each node reported: the client's argv, the server's PID and its own measurement
    assert tcp["details"]["a"]["role"] == "client" and tcp["details"]["b"]["role"] == "server"
    assert [r["argv"].split()[-2:] for r in tcp["details"]["a"]["runs"]] == \
        [["-l", "200"], ["-l", "800"], ["-l", "3200"]]
    for srv in tcp["details"]["b"]["runs"]:
        assert srv["rc"] == 0 and srv["stopped"] is False  # each one-off server exited by itself
        assert srv["bits_per_second"] > 30e6
    assert all(host_pid_gone(p) for p in server_pids(tcp))
    print("\nveth TCP: " + ", ".join("%d B %.0f Mbit/s" % (r["length"], mbit(r)) for r in runs))

    # UDP at 10 Mbit/s, iperf3's default length: jitter and loss from the server's counts
    ok(udp)
    assert udp["expected"] == "runs with iperf3's default length"
    (run,) = udp["figures"]["runs"]
    assert isinstance(run["length"], int) and run["length"] > 0  # iperf3's blksize
    assert 8e6 < run["bits_per_second"] < 12e6, run
    assert isinstance(run["jitter_ms"], float) and run["jitter_ms"] >= 0
    assert run["lost_percent"] is not None and 0 <= run["lost_percent"] < 5
    assert isinstance(run["lost_packets"], int) and run["lost_packets"] >= 0
    assert isinstance(run["packets"], int) and run["packets"] > 0
    assert run["retransmits"] is None
    assert "lost, jitter" in udp["observed"] and "-u" in udp["details"]["a"]["runs"][0]["argv"].split()
    assert all(host_pid_gone(p) for p in server_pids(udp))
    print("veth UDP 10 Mbit/s: %.2f Mbit/s, jitter %.4f ms, %s/%s lost"
          % (mbit(run), run["jitter_ms"], run["lost_packets"], run["packets"]))

    # the capture: the datagrams of the test, from a to b
    cap = udp["capture"]
    assert cap["path"] == str(captures / "udp-10m.pcap") and (captures / "udp-10m.pcap").exists()
    assert cap["total"] >= 50 and len(cap["rows"]) == 50  # 1000 packets kept, 50 rows returned
    assert all(r["protocol"] == "UDP" and {r["src"], r["dst"]} == {A_ADDR, B_ADDR} for r in cap["rows"])
    # (iperf3 opens its UDP stream with a datagram each way; the rest flows from a to b)
    assert sum((r["src"], r["dst"]) == (A_ADDR, B_ADDR) for r in cap["rows"]) >= 45
    assert "capture" not in tcp
    # a capture needs somewhere to go
    assert no_dir["failed"] is True and "has a capture but no capture_dir was given" in no_dir["msg"]

    # a check runs in check mode too
    ok(checked)
    assert len(checked["figures"]["runs"]) == 3


def test_sweep_repeats_give_each_length_its_median_and_spread(pair, ansible):
    """The sweep runs three times, in rounds (200, 3200, 200, 3200, ...): each length's rate
    is the median of its three runs, with the lowest and highest beside it; every server of
    the six runs is reaped. Without ``repeats`` the module runs three too."""
    check = pair.check("repeated", lengths=[200, 3200], repeats=3, min_bps=30e6)
    default = dict(pair.check("default-repeats"))
    del default["repeats"]
    res, dflt, bad = iperf(ansible, check, default, pair.check("too-many", repeats=21))
    ok(res)
    runs = res["figures"]["runs"]
    assert [r["length"] for r in runs] == [200, 3200] and res["figures"]["repeats"] == 3
    for r in runs:
        assert r["repeats"] == 3 and len(r["samples_bps"]) == 3 and all(x > 30e6 for x in r["samples_bps"])
        assert r["bits_per_second"] == r["median_bps"] == statistics.median(r["samples_bps"])
        assert r["min_bps"] == min(r["samples_bps"]) <= r["median_bps"] <= r["max_bps"] == max(r["samples_bps"])
        assert isinstance(r["retransmits"], (int, float)) and r["retransmits"] >= 0
    client_runs = res["details"]["a"]["runs"]
    assert [(c["repeat"], c["argv"].split()[-1]) for c in client_runs] == \
        [(1, "200"), (1, "3200"), (2, "200"), (2, "3200"), (3, "200"), (3, "3200")]
    assert len(server_pids(res)) == 6 and all(host_pid_gone(p) for p in server_pids(res))
    assert res["expected"] == ">= 30 Mbit/s at every length (200, 3200 B), median of 3 runs"
    assert res["observed"].startswith("200 B: ") and res["observed"].count(", 3 runs)") == 2, res["observed"]
    print("\nveth TCP, median of 3 (min..max): " + ", ".join(
        "%d B %.0f (%.0f..%.0f) Mbit/s" % (r["length"], mbit(r), r["min_bps"] / 1e6, r["max_bps"] / 1e6)
        for r in runs))

    ok(dflt)
    (run,) = dflt["figures"]["runs"]
    assert run["repeats"] == 3 and len(dflt["details"]["a"]["runs"]) == 3

    assert bad["failed"] is True and "repeats must be 1 to 20 (runs of the sweep), got 21" in bad["msg"]
    assert "details" not in bad  # refused before anything ran


def test_below_minimum_fails_naming_length(pair, ansible):
    (res,) = iperf(ansible, pair.check("absurd", lengths=[200, 400], min_bps=1e15))
    assert res["failed"] is True and res["ok"] is False
    assert res["msg"].startswith("iperf3 TCP a -> b %s:5201: below the minimum 1000 Tbit/s: 200 B: "
                                 % B_ADDR), res["msg"]
    assert ", 400 B: " in res["msg"]
    # both runs ran and are reported; only the threshold failed
    assert [r["length"] for r in res["figures"]["runs"]] == [200, 400]
    assert all(r["bits_per_second"] > 0 for r in res["figures"]["runs"])
    assert res["expected"] == ">= 1000 Tbit/s at every length (200, 400 B)"
    assert all(host_pid_gone(p) for p in server_pids(res))


def test_unreachable_server_fails_with_iperf3_error_and_reaps_server(pair, ansible):
    # nobody holds GHOST: the connection times out; the client's own address: refused
    ghost, refused = iperf(
        ansible,
        pair.check("ghost", address=GHOST, lengths=[200, 400], timeout=1),
        pair.check("refused", address=A_ADDR, lengths=[200]))

    assert ghost["failed"] is True and ghost["ok"] is False
    assert ghost["msg"] == ("iperf3 TCP a -> b %s:5201: the run at 200 B failed: "
                            "unable to connect to server: Connection timed out" % GHOST)
    assert ghost["observed"] == ("200 B: failed (unable to connect to server: Connection timed out), "
                                 "400 B: not run")
    assert ghost["figures"]["runs"] == [] and ghost["figures"]["median_bps"] is None
    (srv,) = ghost["details"]["b"]["runs"]
    assert srv["stopped"] is True  # the one-off server never got its client: stopped by PID
    assert host_pid_gone(srv["pid"])

    assert refused["failed"] is True
    assert refused["msg"].endswith("the run at 200 B failed: unable to connect to server: Connection refused")
    assert all(host_pid_gone(p) for p in server_pids(refused))


def test_bad_check_is_refused_before_running(pair, ansible):
    bad = pair.check("bad name!", parallel=0)
    bad["client"] = {"node": "a", "netns": None, "container": None, "address": A_ADDR}
    unknown = dict(pair.check("extra"), payloads=[{"text": "x"}])
    res, extra = iperf(ansible, bad, unknown)
    assert res["failed"] is True
    assert "name 'bad name!'" in res["msg"] and "client a has neither netns nor container" in res["msg"]
    assert "parallel must be at least 1" in res["msg"]
    assert extra["failed"] is True and "payloads" in extra["msg"]


# --------------------------------------------------------------------------- a docker node

def container_pid_gone(container, pid):
    proc = sh("docker", "exec", container, "sh", "-c",
              "cat /proc/%d/cmdline 2>/dev/null || true" % pid)
    return "iperf3" not in proc


def test_docker_node_as_client_and_server(pair, ansible, docker_client):
    name = pair.tag + "-d"
    container = docker_client.containers.run(
        NODE_IMAGE, detach=True, name=name, network_mode="none", cap_add=["NET_ADMIN", "NET_RAW"],
        labels={"topo.test": pair.tag})
    try:
        container.reload()
        pid = container.attrs["State"]["Pid"]
        assert pid > 0
        # a veth from b into the container's namespace (found by its PID; not named)
        sh("ip", "-n", pair.b, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0",
           "netns", str(pid))
        sh("ip", "-n", pair.b, "addr", "add", "198.18.6.2/24", "dev", "eth1")
        sh("ip", "-n", pair.b, "link", "set", "eth1", "up")
        for argv in (["addr", "add", "198.18.6.1/24", "dev", "eth0"], ["link", "set", "eth0", "up"],
                     ["link", "set", "lo", "up"]):
            sh("nsenter", "-t", str(pid), "-n", "ip", *argv)
        dnode = {"node": "d", "netns": None, "container": name, "address": "198.18.6.1"}

        to_b = pair.check("docker-client", client=dnode, address="198.18.6.2", lengths=[400, 1600])
        to_d = pair.check("docker-server", client=pair.part("b"), server=dnode, address="198.18.6.1",
                          lengths=[1600])
        to_ghost = pair.check("docker-ghost", client=pair.part("b"), server=dnode,
                              address="198.18.6.77", timeout=1)
        c2b, b2d, ghost = iperf(ansible, to_b, to_d, to_ghost)

        ok(c2b)
        assert [r["length"] for r in c2b["figures"]["runs"]] == [400, 1600]
        assert all(r["bits_per_second"] > 10e6 for r in c2b["figures"]["runs"])
        assert c2b["details"]["d"]["container"] == name and c2b["details"]["d"]["role"] == "client"
        assert all(host_pid_gone(p) for p in server_pids(c2b))

        ok(b2d)  # the server in the container, its PID the container's
        assert b2d["figures"]["runs"][0]["bits_per_second"] > 10e6
        assert all(container_pid_gone(name, p) for p in server_pids(b2d, node="d"))

        # a server in the container that never gets its client is stopped there, by PID
        assert ghost["failed"] is True and "Connection timed out" in ghost["msg"]
        (srv,) = ghost["details"]["d"]["runs"]
        assert srv["stopped"] is True and container_pid_gone(name, srv["pid"])
        print("\ncontainer -> veth TCP: " + ", ".join(
            "%d B %.0f Mbit/s" % (r["length"], mbit(r)) for r in c2b["figures"]["runs"]))

        # iperf3 gone from the node: the message names the node and how to install it
        sh("docker", "exec", name, "rm", "-f", "/usr/bin/iperf3")
        (missing,) = iperf(ansible, to_b)
        assert missing["failed"] is True
        assert "iperf3 is not installed in node d (container %s" % name in missing["msg"]
        assert "apt-get install iperf3" in missing["msg"]
    finally:
        container.remove(force=True, v=True)


# --------------------------------------------------------------------------- IPv6

A6, B6 = "2001:db8:5::1", "2001:db8:5::2"


def test_ipv6_tcp_and_udp(pair, ansible, tmp_path):
    """iperf3 -6 over the same veth, IPv6 only (accept_dad=0 and nodad: usable at once)."""
    for ns, addr in ((pair.a, A6), (pair.b, B6)):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
        sh("ip", "-n", ns, "addr", "add", addr + "/64", "dev", "eth0", "nodad")
    # as a lab's `ping: all` does before its checks: the neighbours answer (in 1 of 6 runs
    # on a loaded machine the first connect failed with "No route to host" without this)
    sh("ip", "netns", "exec", pair.a, "ping", "-6", "-c", "1", "-W", "3", B6)
    six = dict(family=6, address=B6, client=dict(pair.part("a"), address=A6),
               server=dict(pair.part("b"), address=B6))
    tcp, udp, wrong_family, ghost = ansible.run(
        step("iperf", {"check": pair.check("tcp6", lengths=[800], min_bps=30e6, **six)}),
        step("iperf", {"check": pair.check("udp6", proto="udp", bitrate=5_000_000, capture={
            "node": "b", "interface": "eth0", "netns": pair.b, "container": None,
            "filter": "udp port 5201"}, **six), "capture_dir": str(tmp_path)}),
        step("iperf", {"check": pair.check("v4-address", **dict(six, address=B_ADDR))}),
        # nobody holds 2001:db8:5::77: the connection times out
        step("iperf", {"check": pair.check("ghost6", timeout=1, **dict(six, address="2001:db8:5::77"))}))
    ok(tcp)
    assert tcp["ok"] is True
    (run,) = tcp["figures"]["runs"]
    assert run["bits_per_second"] > 30e6, run
    argv = tcp["details"]["a"]["runs"][0]["argv"].split()
    assert argv[:3] == ["iperf3", "-c", B6] and argv[-1] == "-6"
    assert all(host_pid_gone(p) for p in server_pids(tcp))
    print("\nveth TCP over IPv6: %.0f Mbit/s" % mbit(run))

    ok(udp)
    (run,) = udp["figures"]["runs"]
    assert 4e6 < run["bits_per_second"] < 6e6, run
    rows = udp["capture"]["rows"]
    assert rows and all(r["layers"][:3] == ["Ether", "IPv6", "UDP"] and {r["src"], r["dst"]} == {A6, B6}
                        for r in rows), rows

    assert wrong_family["failed"] is True
    assert "iperf3 check v4-address: address 198.18.5.2 is not an IPv6 address" in wrong_family["msg"]
    assert ghost["failed"] is True
    assert ghost["msg"].startswith("iperf3 TCP a -> b [2001:db8:5::77]:5201: the run at "), ghost["msg"]
