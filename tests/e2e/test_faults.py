"""Faults a lab tool must survive (DESIGN.md 4): an interrupted apply, two applies at once,
and labs side by side - each ending in exactly the declared lab, or in nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import ROOT, netns_list, root_state

pytestmark = [pytest.mark.root, pytest.mark.slow]

N = 200


def chain(path, name, n=N):
    """A chain of n nodes joined by point-to-point links (pool addresses)."""
    path.write_text(yaml.safe_dump({
        "name": name, "nodes": {f"n{i}": {} for i in range(1, n + 1)},
        "links": [[f"n{i}", f"n{i + 1}"] for i in range(1, n)], "verify": []}))
    return str(path)


def lab_namespaces(lab):
    return [n for n in netns_list() if n.startswith(f"topo-{lab}-")]


def wait_for_orphans(lab, timeout=120):
    """A killed topo can leave ansible-playbook running; wait until none works on ``lab``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        if f"/labs/{lab}/" not in out and f"labs/{lab}/inventory" not in out:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes of lab {lab} still running after {timeout} s")


def descendants(pid):
    """``pid`` and every process below it (by parent links in /proc), parents first."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children.get(p, [])
    return out


def start_time(pid):
    """The start time of process ``pid`` (clock ticks since boot), None when it is gone: a
    PID with another start time is another process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def comm(pid):
    """The name of process ``pid`` (``/proc/PID/comm``), None when it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def survivors(tree):
    """``[(pid, command line)]`` of the processes of ``tree`` ({pid: start time}) still alive."""
    out = []
    for pid, started in tree.items():
        if started is not None and start_time(pid) == started:
            try:
                with open(f"/proc/{pid}/cmdline") as f:
                    out.append((pid, f.read().replace("\0", " ").strip()))
            except OSError:
                pass
    return out


def assert_none_survives(tree, timeout=10.0):
    """Every process of ``tree`` ({pid: start time}) is gone within ``timeout`` seconds;
    otherwise those left are killed (by PID) and named in the failure."""
    deadline = time.monotonic() + timeout
    while survivors(tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = survivors(tree)
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the cancelled run survived topo: {left}"


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.mark.parametrize("fault", ["tree-sigkill", "sigint", "pid-sigkill"])
@pytest.mark.parametrize("then", ["apply", "destroy"])
def test_interrupted_apply(topo_cli, tmp_path, fault, then):
    """Interrupt `topo apply` of a 200-node lab while it makes veths; the next apply converges
    to exactly the lab (plan shows nothing left to do), or destroy leaves nothing of it.

    tree-sigkill: topo, ansible-playbook and the module all die at once (power cut, OOM):
    the lab is left half-built, some pairs made but not yet configured. sigint: Ctrl-C; topo
    cancels the playbook and exits 130, and no process of the run survives it (Ansible's
    workers are session leaders, out of the playbook's process group). pid-sigkill: topo
    alone dies; the playbook runs on.
    """
    lab = "faults"
    before = root_state()
    path = chain(tmp_path / "faults.yml", lab)
    proc = subprocess.Popen([sys.executable, "-m", "topo", "apply", path, "--no-verify"], cwd=ROOT,
                            env=dict(os.environ, TOPO_HOME=topo_cli.home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the first pair (n1 -- n2) exists: the module is making veths right now
        wait_until(lambda: os.path.exists(f"/run/netns/topo-{lab}-n2") and subprocess.run(
            ["ip", "-n", f"topo-{lab}-n2", "link", "show", "eth0"], capture_output=True).returncode == 0)
        tree = {pid: start_time(pid) for pid in descendants(proc.pid)}
        # ansible-playbook as topo starts it: topo/ansible_playbook.py
        assert any("ansible_playbook.py" in cmd for _, cmd in survivors(tree)), "the playbook should be running"
        if fault == "tree-sigkill":
            for pid in descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        else:
            proc.send_signal(signal.SIGINT if fault == "sigint" else signal.SIGKILL)
        proc.wait(timeout=60)
        if fault == "sigint":
            assert proc.returncode == 130
            assert_none_survives(tree)
        if fault == "tree-sigkill":
            assert topo_cli.json("plan", path)["changes"], "the kill should have left work undone"
        if then == "apply":
            topo_cli.json("apply", path, "--no-verify")
            assert topo_cli.json("plan", path)["changes"] == []
            assert len(lab_namespaces(lab)) == N
            show = topo_cli.json("show", path)
            assert all(i["state"] == "up" for node in show["nodes"] for i in node["interfaces"])
        topo_cli.json("destroy", "--lab", lab)
        wait_for_orphans(lab)
        assert lab_namespaces(lab) == []
        assert root_state() == before, "no veth end or address may be left in the root namespace"
    finally:
        if proc.poll() is None:
            proc.kill()
        wait_for_orphans(lab)
        subprocess.run([sys.executable, "-m", "topo", "destroy", "--lab", lab], cwd=ROOT, capture_output=True,
                       env=dict(os.environ, TOPO_HOME=topo_cli.home))


def test_interrupted_verify_leaves_no_process(topo_cli, tmp_path):
    """Ctrl-C while the ping module of a 50-node star works (its result, 2,450 pings, is
    larger than a pipe holds): topo exits 130 and no process of the run survives it. Before,
    the Ansible worker was left blocked writing that result to the dead playbook."""
    lab = "faultsv"
    nodes = [f"n{i}" for i in range(1, 51)]
    path = tmp_path / "star.yml"
    path.write_text(yaml.safe_dump({"name": lab, "nodes": nodes, "bridges": {"lan": {}},
                                    "links": [[n, "lan"] for n in nodes]}))
    env = dict(os.environ, TOPO_HOME=topo_cli.home)
    try:
        topo_cli.json("apply", str(path), "--no-verify")
        proc = subprocess.Popen([sys.executable, "-m", "topo", "verify", str(path)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def module_started():
            # the module in a fork of Ansible's worker (plugins/plugin_utils/module_fork.py)
            # is named topo.ping; through AnsiballZ it is started by /bin/sh -c
            tree = {pid: start_time(pid) for pid in descendants(proc.pid)}
            return any(cmd.startswith("/bin/sh -c") or comm(pid) == "topo.ping" for pid, cmd in survivors(tree))

        try:
            wait_until(module_started)
            # the module pings for 0.15-0.25 s, the whole run ends about 0.5 s after it
            # started: interrupt it while it works
            time.sleep(0.05)
            tree = {pid: start_time(pid) for pid in descendants(proc.pid)}
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130
            assert_none_survives(tree)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        subprocess.run([sys.executable, "-m", "topo", "destroy", "--lab", lab], cwd=ROOT, capture_output=True, env=env)
        assert lab_namespaces(lab) == []


def test_two_applies_of_one_lab_at_once(topo_cli, tmp_path):
    """One builds the lab, the other refuses with a clear message; the lab is whole."""
    path = chain(tmp_path / "twice.yml", "twice", n=50)
    env = dict(os.environ, TOPO_HOME=topo_cli.home)
    procs = [subprocess.Popen([sys.executable, "-m", "topo", "apply", path, "--no-verify"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        codes = sorted(rc for rc, _ in results)
        assert codes in ([0, 0], [0, 3]), results
        if codes == [0, 3]:
            assert "locked by another topo" in [e for rc, e in results if rc == 3][0]
        assert topo_cli.json("plan", path)["changes"] == []
        assert len(lab_namespaces("twice")) == 50
    finally:
        topo_cli("destroy", "--lab", "twice", check=False)


def test_two_labs_at_once_are_whole_and_isolated(topo_cli, tmp_path):
    """Two different labs applied at the same time both pass their checks and cannot reach
    each other; destroying one leaves the other intact."""
    src = open(os.path.join(ROOT, "examples/routed.yml")).read()
    a = tmp_path / "laba.yml"
    b = tmp_path / "labb.yml"
    a.write_text(src.replace("name: routed", "name: laba"))
    b.write_text(src.replace("name: routed", "name: labb\naddressing:\n  lan: {ipv4: 172.20.0.0/16, prefix: 24}"
                                               "\n  p2p: {ipv4: 10.2.0.0/16, prefix: 30}"))
    env = dict(os.environ, TOPO_HOME=topo_cli.home)
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "topo", "apply", str(f), "--json"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in (a, b)]
        for p in procs:
            out, errs = p.communicate(timeout=300)
            assert p.returncode == 0, errs
            assert json.loads(out)["checks"]["failed"] == 0
        # lab a's h1 cannot reach lab b's h3 (its address is only in lab b), and the reverse
        b_h3 = topo_cli.json("validate", str(b))["expanded"]["nodes"]["h3"]["interfaces"][0]["address"].split("/")[0]
        a_h3 = topo_cli.json("validate", str(a))["expanded"]["nodes"]["h3"]["interfaces"][0]["address"].split("/")[0]
        r = topo_cli.json("exec", str(a), "h1", "--", "ping", "-c1", "-W1", b_h3, check=False)
        assert r["rc"] != 0
        r = topo_cli.json("exec", str(b), "h1", "--", "ping", "-c1", "-W1", a_h3, check=False)
        assert r["rc"] != 0
        topo_cli("destroy", str(a))
        assert lab_namespaces("laba") == [] and len(lab_namespaces("labb")) == 8
        assert topo_cli.json("verify", str(b))["checks"]["failed"] == 0
    finally:
        for lab in ("laba", "labb"):
            topo_cli("destroy", "--lab", lab, check=False)


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (nftables) is not installed")
def test_firewall_untouched(topo_cli):
    """A lab that asks for no host connectivity leaves the host's ruleset byte-identical."""
    before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    topo_cli("apply", "examples/routed.yml")
    topo_cli("destroy", "examples/routed.yml")
    assert subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout == before
