"""Docker nodes on a remote build host (issue 12): a container on a simulated host that runs
its own dockerd, linked across hosts to a namespace node on another host.

The host ``bh4`` is made for this module only (:meth:`Sim.add_docker_host`: its own dockerd,
the node image loaded into it) and removed at the end with its cgroups; ``bh1`` has no Docker
at all. Apply brings the Docker SDK to bh4 (and only there), makes the container there and
names its namespace, stitches its link to ``n1`` on bh1 with VXLAN; the checks (pings, and a
unicast message each way, run from the controller through both hosts) pass; a re-apply
changes nothing; ``topo exec``, ``ansible`` and ``topo show`` reach the container through bh4;
``topo list --hosts`` sees the lab up; destroy leaves no container, namespace or cgroup
there. Before any of it, a host without Docker, a stopped dockerd and a missing image each
stop apply with exit 3 naming the host and the fix, with nothing built anywhere, and
``topo doctor --hosts`` names the stopped dockerd.
"""

import json
import os
import time

import pytest

from tests.multihost.conftest import cgroups_of

pytestmark = pytest.mark.root

DOCKER_HOST, DOCKER_ADDR = "bh4", "192.0.2.14"
LAB = "dkr"
TEXT = """\
name: dkr
nodes:
  d1: {{kind: docker, host: {docker_host}{image}}}
  n1: {{host: bh1}}
links:
  - [d1, n1]
verify:
  - ping: all
  - unicast: {{from: d1, to: n1, port: 7001, message: hello-n1}}
  - unicast: {{from: n1, to: d1, port: 7002, message: hello-d1}}
"""


def lab_file(tmp_path, name="dkr.yml", docker_host=DOCKER_HOST, image=None):
    path = tmp_path / name
    path.write_text(TEXT.format(docker_host=docker_host, image=f", image: {image}" if image else ""))
    return str(path)


def inner(sim, *argv):
    """``docker ARGV`` with bh4's own dockerd; its stdout."""
    return sim.on_host(DOCKER_HOST, "docker", *argv)


def nothing_built(sim):
    assert sim.netns_on("bh1") == [] and sim.netns_on(DOCKER_HOST) == []
    assert inner(sim, "ps", "-aq", "--filter", f"label=topo.lab={LAB}").strip() == ""


@pytest.fixture(scope="module")
def docker_sim(sim, tmp_path_factory):
    """The session's hosts plus bh4 with its own dockerd, and the inventory ``docker`` (bh1,
    bh4); at the end the lab is destroyed and bh4 removed, with its cgroups."""
    start = time.monotonic()
    sim.add_docker_host(DOCKER_HOST, DOCKER_ADDR)
    print(f"\nTIMING bh4 with its own dockerd and the node image: {time.monotonic() - start:.1f} s")
    sim.inventory["docker"] = sim.write_inventory("docker", ["bh1", DOCKER_HOST])
    try:
        yield sim
    finally:
        sim.topo("destroy", "--lab", LAB, "--hosts", sim.inventory["docker"], check=False)
        sim.remove_host(DOCKER_HOST)
        sim.inventory.pop("docker", None)
        assert cgroups_of(f"topo-mh-{DOCKER_HOST}") == []


def test_without_docker_on_the_host_apply_stops_before_building(docker_sim, tmp_path):
    sim = docker_sim
    inv = sim.inventory["docker"]
    # bh1 has no Docker at all
    proc = sim.topo("apply", lab_file(tmp_path, "on-bh1.yml", docker_host="bh1"), "--hosts", inv, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "bh1" in proc.stderr and "apt-get install docker.io" in proc.stderr and "d1" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    nothing_built(sim)
    # a missing image on bh4
    proc = sim.topo("apply", lab_file(tmp_path, "absent.yml", image="topo-node:absent"), "--hosts", inv,
                    check=False)
    assert proc.returncode == 3, proc.stderr
    assert "bh4" in proc.stderr and "topo-node:absent" in proc.stderr and "docker load" in proc.stderr, proc.stderr
    nothing_built(sim)
    # bh4's dockerd stopped: apply and doctor name it
    sim.stop_dockerd(DOCKER_HOST)
    try:
        proc = sim.topo("apply", lab_file(tmp_path), "--hosts", inv, check=False)
        assert proc.returncode == 3, proc.stderr
        assert "bh4" in proc.stderr and "no Docker daemon answers" in proc.stderr, proc.stderr
        assert "systemctl start docker" in proc.stderr, proc.stderr
        doctor = sim.topo_json("doctor", lab_file(tmp_path), "--hosts", inv, check=False)
        rows = {f["check"]: f for f in doctor["findings"]}
        assert rows["host bh4: dockerd"]["status"] == "fail", rows.get("host bh4: dockerd")
        assert "host bh1: dockerd" not in rows  # no docker nodes there
        assert sim.netns_on("bh1") == [] and sim.netns_on(DOCKER_HOST) == []
    finally:
        sim.start_dockerd(DOCKER_HOST)
    nothing_built(sim)


@pytest.fixture(scope="module")
def applied(docker_sim, tmp_path_factory):
    sim = docker_sim
    path = lab_file(tmp_path_factory.mktemp("dkr"))
    start = time.monotonic()
    first = sim.topo_json("apply", path, "--hosts", sim.inventory["docker"])
    print(f"\nTIMING first apply + verify, docker node on bh4: {time.monotonic() - start:.1f} s "
          f"(playbook {first['seconds']} s)")
    ids = inner(sim, "ps", "-q", "--no-trunc", "--filter", f"label=topo.lab={LAB}").split()
    return {"path": path, "first": first, "ids": ids}


def test_apply_makes_the_container_on_the_remote_host_and_verifies(docker_sim, applied):
    sim, first = docker_sim, applied["first"]
    checks = first["checks"]
    assert checks["failed"] == 0 and checks["passed"] >= 4, checks  # 2 pings, 2 unicasts
    assert {c["host"] for c in first["changes"]} == {"bh1", DOCKER_HOST}, first["changes"]
    # the container is bh4's dockerd's, running, labelled, its namespace named there
    assert len(applied["ids"]) == 1, applied
    info = json.loads(inner(sim, "inspect", applied["ids"][0]))[0]
    assert info["Name"] == "/topo-dkr-d1" and info["State"]["Running"], info["State"]
    assert info["Config"]["Labels"]["topo.node"] == "d1" and info["HostConfig"]["NetworkMode"] == "none"
    assert sim.netns_on(DOCKER_HOST) == ["topo-dkr-d1"] and sim.netns_on("bh1") == ["topo-dkr-n1"]
    pid = info["State"]["Pid"]
    assert sim.on_host(DOCKER_HOST, "readlink", f"/proc/{pid}/ns/net") == \
        sim.on_host(DOCKER_HOST, "ip", "netns", "exec", "topo-dkr-d1", "readlink", "/proc/self/ns/net")
    # the Docker SDK came from the controller, zipped, to bh4 only
    assert sim.on_host(DOCKER_HOST, "python3", "-c", "import sys; sys.path.append('/var/lib/topo/docker.zip'); "
                       "import docker; print(docker.__file__)").startswith("/var/lib/topo/docker.zip/")
    assert sim.on_host("bh1", "sh", "-c", "test -e /var/lib/topo/docker.zip || echo absent").strip() == "absent"
    # the kernel agrees, read independently: inside the container, n1 answers a ping
    n1 = json.loads(sim.on_host("bh1", "ip", "-n", "topo-dkr-n1", "-j", "addr", "show", "dev", "eth0"))
    addr = next(a["local"] for a in n1[0]["addr_info"] if a["family"] == "inet")
    inner(sim, "exec", "topo-dkr-d1", "ping", "-c1", "-W2", addr)


def test_reapply_and_plan_change_nothing(docker_sim, applied):
    start = time.monotonic()
    again = docker_sim.topo_json("apply", applied["path"], "--hosts", docker_sim.inventory["docker"])
    print(f"\nTIMING re-apply + verify: {time.monotonic() - start:.1f} s (playbook {again['seconds']} s)")
    assert again["changes"] == [], again["changes"]
    assert again["checks"]["failed"] == 0 and again["checks"]["passed"] >= 4, again["checks"]
    plan = docker_sim.topo_json("plan", applied["path"])  # check mode asks bh4's dockerd too
    assert plan["changes"] == [], plan


def test_exec_ansible_show_and_doctor_reach_the_container(docker_sim, applied):
    sim, path = docker_sim, applied["path"]
    r = sim.topo_json("exec", path, "d1", "--", "cat", "/etc/hostname")
    assert r["rc"] == 0 and r["stdout"].strip() == "d1", r  # the container's own file, not bh4's
    r = sim.topo_json("exec", path, "n1", "--", "cat", "/etc/hostname")
    assert r["stdout"].strip() == "bh1", r
    inv = os.path.join(sim.home, "labs", LAB, "inventory")
    proc = sim.controller("ansible", "-i", inv, "d1", "-m", "command", "-a", "cat /etc/hostname")
    assert "CHANGED" in proc.stdout and proc.stdout.strip().splitlines()[-1] == "d1", proc.stdout
    show = sim.topo_json("show", path)
    assert {n["node"]: n["state"] for n in show["nodes"]} == {"d1": "up", "n1": "up"}, show
    labs = {e["lab"]: e for e in sim.topo_json("list", "--hosts", sim.inventory["docker"])["labs"]}
    assert labs[LAB]["state"] == "up" and labs[LAB]["namespaces"] == 2, labs[LAB]  # d1's is named on bh4
    doctor = sim.topo_json("doctor", path, "--hosts", sim.inventory["docker"], check=False)
    rows = {f["check"]: f["status"] for f in doctor["findings"]}
    assert rows["host bh4: dockerd"] == "ok" and rows["host bh4: image topo-node:latest"] == "ok", rows


def test_destroy_leaves_no_container_namespace_or_cgroup(docker_sim, applied):
    sim = docker_sim
    cid = applied["ids"][0]
    parent = f"topo-mh-{DOCKER_HOST}"
    # while it runs, the container's cgroup is under bh4's dockerd's parent
    assert any(os.path.isdir(os.path.join(top, cid)) for top in cgroups_of(parent)), cgroups_of(parent)
    sim.topo_json("destroy", applied["path"], "--hosts", sim.inventory["docker"])
    assert inner(sim, "ps", "-aq").strip() == ""
    assert sim.netns_on(DOCKER_HOST) == [] and sim.netns_on("bh1") == []
    left = [os.path.join(top, d) for top in cgroups_of(parent) for d in os.listdir(top)
            if os.path.isdir(os.path.join(top, d))]
    assert left == [], left
    for host in ("bh1", DOCKER_HOST):
        links = json.loads(sim.on_host(host, "ip", "-j", "link"))
        assert sorted(link["ifname"] for link in links) == ["eth0", "lo"], host
