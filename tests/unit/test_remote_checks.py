"""Checks of a lab on several build hosts run on the controller (no root, no SSH needed):
the projection sends them to group topo_controller with each remote participant's SSH
settings, and the node-process layer turns such a participant into an ``ssh`` argv."""

import os
import shlex

import yaml

from ansible_collections.topo.lab.plugins.module_utils import _process
from ansible_collections.topo.lab.plugins.module_utils._checks import specs
from tests.unit.snapshot import PYTHON
from tests.unit.test_multihost import CASES, compile_, three_hosts
from topo.inventory import CONTROLLER, project

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REMOTE = {"name": "bh2", "ansible_host": "192.0.2.12", "ansible_user": "root", "ansible_port": 2222,
          "ansible_ssh_private_key_file": "/k", "ansible_ssh_common_args": "-o StrictHostKeyChecking=no"}


def places(item):
    """Every dict of ``item`` (a check) with a ``netns``."""
    if isinstance(item, list):
        return [p for i in item for p in places(i)]
    if not isinstance(item, dict):
        return []
    return ([item] if "netns" in item else []) + [p for v in item.values() for p in places(v)]


def test_a_multihost_lab_runs_its_casts_on_the_controller():
    path, hosts = CASES["clusters-auto"]
    expanded = compile_(path, hosts)
    files = project(expanded, python=PYTHON, hosts=hosts)
    group = files["hosts.yml"]["all"]["children"]["topo_controller"]["hosts"]
    assert group == {CONTROLLER: {"ansible_connection": "local", "ansible_python_interpreter": PYTHON}}
    mine = files["group_vars/topo_controller.json"]
    want = sorted(c["name"] for c in expanded["checks"] if c["type"] != "ping")
    assert sorted(c["name"] for c in mine["topo_casts"] + mine["topo_captures"] + mine["topo_iperfs"]) == want
    where = {n: node["host"] for n, node in expanded["nodes"].items()}
    for check in mine["topo_casts"]:
        for p in places(check):
            assert p["ssh"]["name"] == where[p["node"]], p
            assert p["ssh"]["ansible_host"] == hosts[where[p["node"]]]["ansible_host"]
        assert not specs.validate(check)[1], check["name"]  # the ssh key is part of the spec
    for h in hosts:  # the build hosts keep their pings and nothing else
        build = files[f"host_vars/{h}.json"]
        assert build["topo_casts"] == build["topo_captures"] == build["topo_iperfs"] == []
        assert build["topo_pings"] and {p["node"] for p in build["topo_pings"]} <= {n for n, x in where.items() if x == h}
    assert "ssh" not in str(expanded["checks"])  # the expanded lab itself is untouched


DURING = """name: mhdur
routing: auto
nodes: {a: {host: hostA}, r: {host: hostB, forwarding: true}, b: {host: hostC}}
links: [[a, r], [r, b]]
verify:
  - ping: {from: a, to: b, expect: fail, during: {down: [r:eth1]}}
  - unicast: {name: cut, from: a, to: b, expect: fail, during: {down: [r:eth1, b:eth0]}}
  - unicast: {name: plain, from: a, to: b}
"""


def test_checks_with_links_down_on_several_hosts(tmp_path):
    """Each interface a during: takes down names its node's build host; every build host
    and the controller get the same topo_during list (role verify_during walks it in step):
    the ping runs on its source's host, the cast check on the controller, with its remote
    participants' SSH settings, and not among the controller's plain casts."""
    path = tmp_path / "mhdur.yml"
    path.write_text(DURING)
    hosts = three_hosts()
    expanded = compile_(str(path), hosts)
    ping, cut = [c for c in expanded["checks"] if "during" in c]
    assert [(d["on"], d["host"]) for d in ping["during"]["down"]] == [("r:eth1", "hostB")]
    assert [(d["on"], d["host"]) for d in cut["during"]["down"]] == [("r:eth1", "hostB"), ("b:eth0", "hostC")]
    files = project(expanded, python=PYTHON, hosts=hosts)
    mine = files["group_vars/topo_controller.json"]
    assert [c["name"] for c in mine["topo_casts"]] == ["plain"]
    during = mine["topo_during"]
    assert [(c["type"], c["runs_on"]) for c in during] == [("ping", "hostA"), ("unicast", CONTROLLER)]
    assert {p["ssh"]["name"] for p in places(during[1]) if "node" in p} == {"hostA", "hostC"}
    assert during[1]["during"] == cut["during"]  # interfaces for topo.lab.link, no ssh in them
    for h in hosts:
        assert files[f"host_vars/{h}.json"]["topo_during"] == during, h
        assert files[f"host_vars/{h}.json"]["topo_casts"] == [], h


def test_a_local_lab_has_no_controller_group():
    path, _ = CASES["routed-auto"]
    files = project(compile_(path, None), python=PYTHON, hosts={"localhost": {"ansible_connection": "local"}})
    assert "topo_controller" not in files["hosts.yml"]["all"]["children"]
    assert not any("topo_controller" in f for f in files)


def test_verify_runs_the_spanning_checks_on_the_controller_when_there_is_one():
    """One play on the build hosts and the controller: pings and during: checks on the build
    hosts, captures, casts and iperf3 on the controller when there is one; checks with a
    during: on every host that has them."""
    with open(os.path.join(ROOT, "playbooks", "verify.yml")) as f:
        (play,) = yaml.safe_load(f)
    assert play["hosts"] == "{{ 'topo_hosts:topo_controller' if 'topo_controller' in groups else 'topo_hosts' }}"
    assert play["vars"]["topo_spanning_group"] == "{{ 'topo_controller' if 'topo_controller' in groups else " \
                                                  "'topo_hosts' }}"
    roles = {r["role"]: r["when"] for r in play["roles"]}
    assert list(roles) == ["topo.lab.verify_ping", "topo.lab.verify_capture", "topo.lab.verify_cast",
                           "topo.lab.verify_iperf", "topo.lab.verify_during"]
    assert roles["topo.lab.verify_ping"] == "inventory_hostname in groups['topo_hosts']"
    # the build hosts and, with its cast checks, the controller (topo_during is theirs only)
    assert roles["topo.lab.verify_during"] == "topo_during | default([]) | length > 0"
    for name in ("capture", "cast", "iperf"):
        assert roles[f"topo.lab.verify_{name}"].endswith("inventory_hostname in groups[topo_spanning_group]")


def test_a_remote_place_is_reached_over_ssh():
    place = {"node": "h3", "netns": "topo-x-h3", "container": None, "ssh": REMOTE}
    argv = _process.exec_argv(place, ["python3", "-c", "print('a b')"], ip="/usr/sbin/ip")
    assert argv[0] == "ssh" and argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "root"
    assert "BatchMode=yes" in argv and "ControlMaster=auto" in argv and "StrictHostKeyChecking=no" in argv
    assert argv[-3:-1] == ["192.0.2.12", "--"]
    # the remote host's own ip (its PATH), never the controller's path
    assert shlex.split(argv[-1]) == ["ip", "netns", "exec", "topo-x-h3", "python3", "-c", "print('a b')"]
    assert _process.netns_argv(place, ["tcpdump", "-i", "eth0"])[-1] == "ip netns exec topo-x-h3 tcpdump -i eth0"
    local = dict(place, ssh=None)
    assert _process.exec_argv(local, ["true"], ip="/usr/sbin/ip") == ["/usr/sbin/ip", "netns", "exec", "topo-x-h3", "true"]


def test_ssh_shares_the_master_connections_in_ansibles_directory(monkeypatch):
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", "/tmp/cp-test")
    argv = _process.ssh_argv("bh2", REMOTE, ["true"])
    assert "ControlPath=/tmp/cp-test/%C" in argv and "ControlPersist=600s" in argv


def test_a_remote_tcpdump_streams_its_pcap_and_tells_its_pid():
    dump = _process.Tcpdump({"netns": "topo-x-h3", "ssh": REMOTE}, "eth0", "/tmp/x.pcap", "udp")
    remote = shlex.split(_process.netns_argv(dump.place, dump.argv_tail)[-1])
    assert remote[:7] == ["ip", "netns", "exec", "topo-x-h3", "sh", "-c", 'echo "$$" >&2; exec "$@"']
    assert remote[8] == "tcpdump" and remote[remote.index("-w") + 1] == "-" and remote[-2:] == ["--", "udp"]


class _Running:
    """A stand-in for a Popen: running until ``done`` is set."""

    def __init__(self):
        self.done = False

    def poll(self):
        return 0 if self.done else None


def test_more_programs_on_one_host_than_a_master_carries_go_over_further_masters(monkeypatch):
    """sshd refuses sessions beyond its MaxSessions (default 10) on one connection: the
    ninth program at once on one host goes over a second master connection (``%C-1``),
    opened once before it; a program that ended frees its place on the first; another
    host has masters of its own."""
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", "/tmp/cp-test")
    monkeypatch.setattr(_process, "_SESSIONS", {})
    monkeypatch.setattr(_process, "_OPENED", set())
    opened = []
    monkeypatch.setattr(_process.subprocess, "run", lambda argv, **kw: opened.append(argv))
    place = {"node": "h3", "netns": "topo-x-h3", "ssh": REMOTE}
    other = {"node": "h4", "netns": "topo-x-h4", "ssh": dict(REMOTE, ansible_host="192.0.2.13")}
    first = []
    for _ in range(_process.SESSIONS_PER_MASTER):
        assert _process._master(place) == 0
        first.append(_Running())
        _process._started(place, 0, first[-1])
    assert opened == []
    for _ in range(_process.SESSIONS_PER_MASTER):
        assert _process._master(place) == 1
        _process._started(place, 1, _Running())
    (argv,) = opened  # the second master, opened once, before its first session
    assert "ControlPath=/tmp/cp-test/%C-1" in argv and shlex.split(argv[-1]) == ["true"]
    assert _process._master(place) == 2 and len(opened) == 2
    first[3].done = True
    assert _process._master(place) == 0
    assert _process._master(other) == 0
    remote = _process.exec_argv(place, ["true"], master=2)
    assert "ControlPath=/tmp/cp-test/%C-2" in remote
    assert "ControlPath=/tmp/cp-test/%C" in _process.netns_argv(place, ["true"])
