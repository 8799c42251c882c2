"""Docker nodes end to end: the examples with containers, mixed with namespace nodes, through
the real CLI, dockerd and the topo-node image (built by the docker_client fixture if missing)."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, netns_list, root_state
from tests.e2e.conftest import changes_of, dual_stack

pytestmark = [pytest.mark.root, pytest.mark.slow]


def lab_containers(client, lab):
    """Names of the lab's containers, from one listing (no per-container inspect that a
    container removed meanwhile would fail)."""
    return sorted(n.lstrip("/") for c in client.api.containers(all=True, filters={"label": f"topo.lab={lab}"})
                  for n in c["Names"][:1])


@pytest.fixture
def clean(docker_client, topo_cli):
    """Destroy the labs these tests use, and their containers, whatever happened."""
    labs = []
    yield labs
    for lab in labs:
        topo_cli("destroy", "--lab", lab, check=False)
        for c in docker_client.containers.list(all=True, filters={"label": f"topo.lab={lab}"}):
            c.remove(force=True)


@pytest.mark.parametrize("example,lab,containers,nodes,checks", [
    ("examples/clusters-docker.yml", "clusters-docker", 16, 16, 243),
    ("examples/vxlan-docker.yml", "vxlan-docker", 5, 7, 23),
])
def test_docker_example_lifecycle(docker_client, topo_cli, clean, example, lab, containers, nodes, checks):
    clean.append(lab)
    before = root_state()
    plan = topo_cli.json("plan", example)
    assert sum(1 for c in plan["changes"] if c["resource"] == "container") == containers
    assert lab_containers(docker_client, lab) == [], "plan must not start anything"

    t0 = time.monotonic()
    first = topo_cli.json("apply", example)
    apply_s = time.monotonic() - t0
    assert first["checks"] == {"total": checks, "passed": checks, "failed": 0}, first["check_results"]
    made = lab_containers(docker_client, lab)
    assert len(made) == containers
    for name in made:
        c = docker_client.containers.get(name)
        host = c.attrs["HostConfig"]
        assert c.status == "running" and host["NetworkMode"] == "none" and not host["Privileged"]
        assert set(host["CapAdd"]) >= {"NET_ADMIN", "NET_RAW"} or \
            set(host["CapAdd"]) >= {"CAP_NET_ADMIN", "CAP_NET_RAW"}
        assert c.attrs["Config"]["Hostname"] == c.labels["topo.node"]
        assert os.stat(f"/run/netns/{name}").st_ino == os.stat(f"/proc/{c.attrs['State']['Pid']}/ns/net").st_ino

    t0 = time.monotonic()
    again = topo_cli.json("apply", example)
    reapply_s = time.monotonic() - t0
    assert again["changed"] == 0, again["changes"]
    assert again["checks"]["failed"] == 0
    assert topo_cli.json("plan", example)["changes"] == []
    assert lab_containers(docker_client, lab) == made
    shown = topo_cli.json("show", example)
    assert len(shown["nodes"]) == nodes
    assert {n["kind"] for n in shown["nodes"]} >= {"docker"}
    assert all(i["state"] == "up" for n in shown["nodes"] for i in n["interfaces"])

    # Ansible reaches docker nodes through community.docker's docker connection
    node = docker_client.containers.get(made[0]).labels["topo.node"]
    inv = os.path.join(topo_cli.home, "labs", lab, "inventory")
    r = subprocess.run(["ansible", "-i", inv, node, "-m", "command", "-a", "hostname"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split()[-1] == node, r.stdout + r.stderr
    r = topo_cli.json("exec", example, node, "--", "cat", "/etc/debian_version")
    assert r["rc"] == 0 and r["stdout"].startswith("12."), r  # inside the container's filesystem

    t0 = time.monotonic()
    gone = topo_cli.json("destroy", example)
    destroy_s = time.monotonic() - t0
    assert len(gone["labs"][0]["containers"]) == containers
    assert lab_containers(docker_client, lab) == []
    assert not [n for n in netns_list() if n.startswith(f"topo-{lab}-")]
    assert root_state() == before, "the root namespace must be exactly as before"
    print(f"\n{lab}: apply {apply_s:.1f} s, re-apply {reapply_s:.1f} s, destroy {destroy_s:.1f} s (wall, with checks)")


def test_a_mixed_docker_lab_runs_dual_stack(docker_client, topo_cli, clean, tmp_path):
    """vxlan-docker.yml with ``af: [ipv4, ipv6]``: Docker starts containers with IPv6 off;
    the lab's sysctls switch it on, so every container interface has its IPv6 address (and
    a link-local one) and every IPv6 ping passes beside the IPv4 ones; re-apply 0 changed."""
    clean.append("vxlan-docker")
    lab_file = dual_stack("examples/vxlan-docker.yml", tmp_path)
    first = topo_cli.json("apply", lab_file)
    pings6 = [r for r in first["check_results"] if r["type"] == "ping" and ":" in r["address"]]
    assert first["checks"]["failed"] == 0 and len(pings6) == 22, [r for r in first["check_results"] if not r["ok"]]
    name = lab_containers(docker_client, "vxlan-docker")[0]
    out = docker_client.containers.get(name).exec_run(["ip", "-6", "-j", "addr", "show", "dev", "eth0"]).output
    scopes = sorted(a["scope"] for link in json.loads(out) for a in link["addr_info"])
    assert scopes == ["global", "link"], out
    assert topo_cli.json("apply", lab_file, "--no-verify")["changed"] == 0
    topo_cli.json("destroy", lab_file)
    assert lab_containers(docker_client, "vxlan-docker") == []


def test_container_drift_is_repaired(docker_client, topo_cli, clean):
    """Stopped by hand, removed by hand: plan names each, apply restarts and re-wires them."""
    clean.append("vxlan-docker")
    ex = "examples/vxlan-docker.yml"
    topo_cli("apply", ex, "--no-verify")
    docker_client.containers.get("topo-vxlan-docker-h1").stop(timeout=0)
    docker_client.containers.get("topo-vxlan-docker-vtep2").remove(force=True)
    plan = topo_cli.json("plan", ex)
    containers = {(c["action"], c["name"]) for c in plan["changes"] if c["resource"] == "container"}
    assert containers == {("fix", "topo-vxlan-docker-h1"), ("create", "topo-vxlan-docker-vtep2")}
    # what apply will re-wire in the containers' new namespaces is listed too
    assert ("create", "veth", "topo-vxlan-docker-h1/eth0 <-> topo-vxlan-docker-vtep1/h1-eth0") in \
        {(c["action"], c["resource"], c["name"].split("  ")[0]) for c in plan["changes"]}
    assert any(c["resource"] == "tunnel" and c["name"].startswith("topo-vxlan-docker-vtep2/") for c in plan["changes"])
    applied = topo_cli.json("apply", ex)
    assert {(c["action"], c["name"]) for c in applied["changes"] if c["resource"] == "container"} == containers
    assert changes_of(applied) == changes_of(plan), "plan must list exactly what apply does"
    assert applied["checks"]["failed"] == 0, [c for c in applied["check_results"] if not c["ok"]]
    assert topo_cli.json("apply", ex, "--no-verify")["changed"] == 0


def test_a_changed_setting_recreates_only_that_container(docker_client, topo_cli, clean, tmp_path):
    clean.append("vxlan-docker")
    lab = tmp_path / "lab.yml"
    text = open(os.path.join(ROOT, "examples/vxlan-docker.yml")).read()
    lab.write_text(text)
    topo_cli("apply", str(lab), "--no-verify")
    ids = {c.name: c.id for c in docker_client.containers.list(filters={"label": "topo.lab=vxlan-docker"})}
    lab.write_text(text.replace("h3: {kind: docker}", "h3: {kind: docker, env: {ROLE: server}}"))
    r = topo_cli.json("apply", str(lab))
    fixes = [c for c in r["changes"] if c["resource"] == "container"]
    assert [(c["action"], c["name"]) for c in fixes] == [("fix", "topo-vxlan-docker-h3")]
    assert fixes[0]["detail"].startswith("recreated: env {} -> ")
    after = {c.name: c.id for c in docker_client.containers.list(filters={"label": "topo.lab=vxlan-docker"})}
    assert {n for n in ids if ids[n] != after[n]} == {"topo-vxlan-docker-h3"}
    assert docker_client.containers.get("topo-vxlan-docker-h3").attrs["Config"]["Env"].count("ROLE=server") == 1
    assert r["checks"]["failed"] == 0


def test_destroy_by_label_with_the_file_gone_never_touches_lookalikes(docker_client, topo_cli, clean, tmp_path):
    clean.append("vxlan-docker")
    lab = tmp_path / "gone.yml"
    lab.write_text(open(os.path.join(ROOT, "examples/vxlan-docker.yml")).read())
    topo_cli("apply", str(lab), "--no-verify")
    lookalike = docker_client.containers.run("topo-node:latest", name="topo-vxlan-docker-lookalike",
                                             network_mode="none", detach=True)
    try:
        lab.unlink()
        from topo.show import labs_in_docker
        assert "vxlan-docker" in labs_in_docker()  # what destroy --all finds (not run here: it takes every lab)
        r = topo_cli.json("destroy", "--lab", "vxlan-docker")
        assert len(r["labs"][0]["containers"]) == 5
        assert lab_containers(docker_client, "vxlan-docker") == []
        assert docker_client.containers.get("topo-vxlan-docker-lookalike").status == "running"
    finally:
        lookalike.remove(force=True)


def test_missing_image_or_dockerd_stops_before_building(docker_client, topo_cli, tmp_path):
    lab = tmp_path / "img.yml"
    lab.write_text("name: dkimg\nnodes:\n  a: {kind: docker, image: 'topo-missing:0'}\n  b: {}\nlinks: [[a, b]]\n")
    r = topo_cli("apply", str(lab), check=False)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "image topo-missing:0 is not in the local image store" in " ".join(r.stderr.split())
    # no dockerd at the address the Docker SDK is given: a real connection failure
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock", TOPO_HOME=topo_cli.home)
    r = subprocess.run([sys.executable, "-m", "topo", "apply", "examples/clusters-docker.yml"], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    said = " ".join(r.stderr.split())
    assert "no Docker daemon answers at unix:///nonexistent/docker.sock (the socket does not exist)" in said
    assert "start it (systemctl start docker, or run dockerd)" in said
    assert not [n for n in netns_list() if n.startswith(("topo-dkimg-", "topo-clusters-docker-"))]
    assert lab_containers(docker_client, "dkimg") == [] and lab_containers(docker_client, "clusters-docker") == []


def test_doctor_reports_docker_and_image(docker_client, topo_cli):
    r = topo_cli.json("doctor", "examples/clusters-docker.yml")
    found = {f["check"]: f for f in r["findings"]}
    assert found["dockerd"]["status"] == "ok" and found["image topo-node:latest"]["status"] == "ok"
    assert found["root"]["status"] == "ok" and r["ok"] is True
    assert found["kernel vxlan"]["status"] == "ok"
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock", TOPO_HOME=topo_cli.home)
    p = subprocess.run([sys.executable, "-m", "topo", "doctor", "examples/clusters-docker.yml", "--json"],
                       cwd=ROOT, capture_output=True, text=True, env=env)
    assert p.returncode == 3
    assert {f["check"]: f["status"] for f in json.loads(p.stdout)["findings"]}["dockerd"] == "fail"


@pytest.mark.parametrize("then", ["apply", "destroy"])
def test_interrupted_apply_with_containers(docker_client, topo_cli, clean, then):
    """topo, ansible-playbook and the module all SIGKILLed while containers are being made
    (some made, some started, some with their namespace not yet named): the next apply
    converges (plan: nothing to do, every check passes), or destroy leaves no container and
    no namespace of the lab."""
    from tests.e2e.test_faults import descendants, wait_for_orphans, wait_until
    import signal
    lab, ex = "clusters-docker", "examples/clusters-docker.yml"
    clean.append(lab)
    proc = subprocess.Popen([sys.executable, "-m", "topo", "apply", ex, "--no-verify"], cwd=ROOT,
                            env=dict(os.environ, TOPO_HOME=topo_cli.home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(lab_containers(docker_client, lab)) >= 3, timeout=120)
        for pid in descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=60)
        wait_for_orphans(lab)
        if then == "apply":
            r = topo_cli.json("apply", ex)
            assert r["checks"]["failed"] == 0, [c for c in r["check_results"] if not c["ok"]]
            assert topo_cli.json("plan", ex)["changes"] == []
            assert len(lab_containers(docker_client, lab)) == 16
        topo_cli.json("destroy", "--lab", lab)
        assert lab_containers(docker_client, lab) == []
        assert not [n for n in netns_list() if n.startswith(f"topo-{lab}-")]
    finally:
        if proc.poll() is None:
            proc.kill()
