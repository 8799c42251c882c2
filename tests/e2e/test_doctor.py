"""topo doctor against real state: the br_netfilter trap, armed for real in a scratch
namespace that plays the Docker host (never in the root namespace: this host's firewall is
not ours to change)."""

import json
import os
import secrets
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.root]


def sh(*argv, check=True):
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stdout}{proc.stderr}")
    return proc


def ping(ns, address):
    return sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", address, check=False).returncode == 0


def doctor_in(ns):
    code = "import json; from topo.doctor import br_netfilter_trap; print(json.dumps(br_netfilter_trap().as_dict()))"
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c", code).stdout
    return json.loads(out)


@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (Docker's dependency) to arm the trap")
def test_br_netfilter_trap_is_real_and_reported():
    """A bridge whose namespace has FORWARD policy DROP and bridge-nf-call-iptables=1 (what
    Docker leaves on a host) drops bridged traffic silently; doctor, run there, says so and
    names the fix. Without the DROP policy it reports the namespace as safe - as every
    namespace topo puts a bridge in is (each has its own, empty, netfilter tables)."""
    tag = secrets.token_hex(3)
    host, a, b = f"trap{tag}-host", f"trap{tag}-a", f"trap{tag}-b"
    try:
        for ns in (host, a, b):
            sh("ip", "netns", "add", ns)
        sh("ip", "-n", host, "link", "add", "br0", "type", "bridge")
        for ns, addr in ((a, "10.99.0.1/24"), (b, "10.99.0.2/24")):
            sh("ip", "-n", host, "link", "add", f"p-{ns[-1]}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", host, "link", "set", f"p-{ns[-1]}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", host, "link", "set", "br0", "up")
        assert ping(a, "10.99.0.2"), "the bridge must pass traffic before the trap is armed"
        if not os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
            pytest.skip("this kernel has no br_netfilter: the trap cannot happen here")
        sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        assert doctor_in(host)["status"] == "ok"
        sh("ip", "netns", "exec", host, "iptables", "-w", "5", "-P", "FORWARD", "DROP")
        assert not ping(a, "10.99.0.2"), "armed trap: bridged frames go through FORWARD and are dropped"
        found = doctor_in(host)
        assert found["status"] == "warn", found
        assert "FORWARD policy is DROP" in found["detail"] and "DOCKER-USER" in found["fix"]
    finally:
        for ns in (host, a, b):
            sh("ip", "netns", "del", ns, check=False)


def test_doctor_without_a_file_never_fails_for_docker(tmp_path):
    """A namespace-only user is not told to install Docker: without FILE, Docker findings
    are at most warnings. Exit 0 on this machine (root, iproute2)."""
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock", TOPO_HOME=str(tmp_path))
    p = subprocess.run([sys.executable, "-m", "topo", "doctor", "--json"], cwd=ROOT, capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    found = {f["check"]: f for f in json.loads(p.stdout)["findings"]}
    assert found["dockerd"]["status"] == "warn" and "docker.io" in found["dockerd"]["fix"]
    assert found["program ip"]["status"] == "ok"
