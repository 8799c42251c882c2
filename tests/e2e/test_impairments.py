"""Impairments through `topo apply`: a declared rate limits iperf3 within 10 %, a declared
delay shows in ping's RTT, edits are fixed in place, and re-apply changes nothing."""

import json
import re
import subprocess

import pytest

from tests.conftest import netns_list

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAB = """name: {name}
routing: auto
nodes: {{a: {{}}, r: {{forwarding: true}}, b: {{}}}}
links:
  - [a, r]
  - endpoints: [r, b]
    impair: {impair}
"""


def write(tmp_path, name, impair):
    path = tmp_path / f"{name}.yml"
    path.write_text(LAB.format(name=name, impair=impair))
    return str(path)


def iperf3_mbits(server_ns, client_ns, address, seconds=3):
    """Received Mbit/s of one TCP iperf3 run from client_ns to server_ns."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-J"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):  # until the server listens
            probe = subprocess.run(["ip", "netns", "exec", server_ns, "ss", "-Hltn", "sport = :5201"],
                                   capture_output=True, text=True)
            if probe.stdout.strip():
                break
            subprocess.run(["sleep", "0.1"])
        out = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", address, "-t", str(seconds), "-J"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.kill()
        server.wait()


def test_rate_is_real_and_edits_fix_in_place(topo_cli, tmp_path):
    lab = write(tmp_path, "imprate", "{rate: 20mbit}")
    first = topo_cli.json("apply", lab)
    assert first["checks"]["failed"] == 0
    impairs = sorted(c["name"] for c in first["changes"] if c["resource"] == "impair")
    assert impairs == ["topo-imprate-b/eth0", "topo-imprate-r/eth1"]
    assert topo_cli.json("apply", lab, "--no-verify")["changed"] == 0
    b_addr = topo_cli.json("show", lab)["nodes"][2]["interfaces"][0]["address"].split("/")[0]
    for mbits in (20, 50):
        if mbits != 20:  # an edit of the rate is one fix per end, in place
            edit = topo_cli.json("apply", write(tmp_path, "imprate", f"{{rate: {mbits}mbit}}"), "--no-verify")
            assert sorted((c["action"], c["name"]) for c in edit["changes"]) == [
                ("fix", "topo-imprate-b/eth0"), ("fix", "topo-imprate-r/eth1")]
        got = iperf3_mbits("topo-imprate-b", "topo-imprate-a", b_addr)
        assert 0.9 * mbits <= got <= 1.1 * mbits, f"declared {mbits} Mbit/s, iperf3 got {got:.2f}"
    # dropping the impairment removes topo's qdisc, and only that
    lab = write(tmp_path, "imprate", "null")
    removed = topo_cli.json("apply", lab, "--no-verify")
    assert sorted((c["action"], c["name"]) for c in removed["changes"]) == [
        ("remove", "topo-imprate-b/eth0"), ("remove", "topo-imprate-r/eth1")]
    topo_cli("destroy", lab)
    assert not [n for n in netns_list() if n.startswith("topo-imprate-")]


@pytest.mark.kernel("netem")
def test_delay_shows_in_the_round_trip(topo_cli, tmp_path):
    lab = write(tmp_path, "impdelay", "{delay: 50, loss: 0}")
    assert topo_cli.json("apply", lab, "--no-verify")["changed"] > 0
    assert topo_cli.json("plan", lab)["changes"] == []
    shown = topo_cli.json("show", lab)
    b_addr = shown["nodes"][2]["interfaces"][0]["address"].split("/")[0]
    out = subprocess.run(["ip", "netns", "exec", "topo-impdelay-a", "ping", "-c", "5", "-i", "0.2", b_addr],
                         capture_output=True, text=True, check=True).stdout
    low = float(re.search(r"= ([\d.]+)/", out).group(1))
    # 50 ms one way on each end of r-b: the round trip gains 100 ms (the minimum: a busy host,
    # with the shared lane guest beside the host's tests, delays some replies more)
    assert 100.0 <= low < 130.0, out
    topo_cli("destroy", lab)
