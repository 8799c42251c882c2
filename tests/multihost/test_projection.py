"""The multi-host parts that need no root and no host: the build-host inventory, the lab
inventory's host and node variables, the pyroute2 zip, the ssh argv."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from topo import hosts, inventory
from topo.errors import EnvironmentProblem, UsageError
from topo.pipeline import compile_file

REMOTE = {"bh1": {"ansible_host": "192.0.2.11", "ansible_user": "root", "ansible_ssh_private_key_file": "/k",
                  "ansible_ssh_common_args": "-o StrictHostKeyChecking=no"}}


def routed():
    return compile_file(os.path.join(ROOT, "examples", "routed.yml")).expanded


def test_remote_host_gets_python_pyroute2_and_ssh_settings():
    files = inventory.project(routed(), python="/ctl/python", hosts=REMOTE)
    bh1 = files["hosts.yml"]["all"]["children"]["topo_hosts"]["hosts"]["bh1"]
    assert bh1 == {"ansible_python_interpreter": "/usr/bin/python3", "topo_pythonpath": "/var/lib/topo/pyroute2.zip",
                   "ansible_ssh_args": "-C -o ControlMaster=auto -o ControlPersist=600s "
                                       "-o ServerAliveInterval=5 -o ServerAliveCountMax=3",
                   "ansible_ssh_pipelining": True, **REMOTE["bh1"]}
    r1 = files["host_vars/r1.json"]
    assert r1["topo_build_host"] == "bh1" and r1["ansible_host"] == "192.0.2.11"
    assert {k: r1[k] for k in ("ansible_user", "ansible_ssh_private_key_file", "ansible_ssh_common_args",
                               "ansible_python_interpreter", "topo_pythonpath")} == {
        "ansible_user": "root", "ansible_ssh_private_key_file": "/k",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
        "ansible_python_interpreter": "/usr/bin/python3", "topo_pythonpath": "/var/lib/topo/pyroute2.zip"}


def test_inventory_settings_win_and_local_hosts_get_nothing():
    own = {"bh1": dict(REMOTE["bh1"], ansible_python_interpreter="/opt/py/bin/python3", ansible_ssh_pipelining=False)}
    v = inventory.host_vars(own, "/ctl/python")["bh1"]
    assert v["ansible_python_interpreter"] == "/opt/py/bin/python3" and v["ansible_ssh_pipelining"] is False
    files = inventory.project(routed(), python="/ctl/python", hosts={"localhost": {"ansible_connection": "local"}})
    assert "topo_build_host" not in files["host_vars/r1.json"]
    assert files["hosts.yml"]["all"]["children"]["topo_hosts"]["hosts"]["localhost"] == {
        "ansible_connection": "local", "ansible_python_interpreter": "/ctl/python"}


def test_node_names_its_build_host_among_several():
    e = routed()
    e["nodes"]["r2"]["host"] = "bh2"
    two = dict(REMOTE, bh2={"ansible_host": "192.0.2.12"})
    files = inventory.project(e, hosts=two)
    assert files["host_vars/r2.json"]["topo_build_host"] == "bh2"
    assert files["host_vars/r2.json"]["ansible_host"] == "192.0.2.12"
    assert "topo_build_host" not in files["host_vars/r1.json"]  # several hosts, none named: not guessed


def test_build_host_named_like_a_node_is_refused():
    with pytest.raises(UsageError, match="build host h1 also names a node of lab routed"):
        inventory.project(routed(), hosts={"h1": {"ansible_host": "192.0.2.11"}})


def test_build_hosts_merges_group_vars(tmp_path):
    path = tmp_path / "inv.yml"
    path.write_text(json.dumps({"all": {"vars": {"ansible_user": "me", "x": 1}, "children": {"topo_hosts": {
        "vars": {"ansible_user": "root"}, "hosts": {"a": {"ansible_host": "192.0.2.1"}, "b": None}}}}}))
    assert inventory.build_hosts(str(path)) == {"a": {"ansible_user": "root", "x": 1, "ansible_host": "192.0.2.1"},
                                                "b": {"ansible_user": "root", "x": 1}}
    path.write_text("all: {children: {other: {}}}")
    with pytest.raises(EnvironmentProblem, match="all.children.topo_hosts.hosts"):
        inventory.build_hosts(str(path))
    shipped = inventory.build_hosts(os.path.join(ROOT, "inventories", "three-hosts.yml"))
    assert sorted(shipped) == ["server1", "server2", "server3"]
    assert shipped["server3"]["topo_underlay"] == "198.51.100.13" and shipped["server1"]["ansible_user"] == "root"


def test_pyroute2_zip_is_byte_identical_and_imports(tmp_path):
    from ansible_collections.topo.lab.plugins.lookup.pyroute2_zip import make_zip
    a, b = make_zip(str(tmp_path / "a")), make_zip(str(tmp_path / "b"))
    assert open(a, "rb").read() == open(b, "rb").read()
    assert make_zip(str(tmp_path / "a")) == a  # made once per version
    # a Python without site-packages (-S, -I) imports pyroute2 from the zip alone
    code = "import sys; sys.path.insert(0, sys.argv[1]); import pyroute2; from pyroute2 import IPRoute; " \
           "print(pyroute2.__file__)"
    out = subprocess.run([sys.executable, "-S", "-I", "-c", code, a], capture_output=True, text=True, check=True)
    # the bytecode the zip carries, compiled by this same Python, is what it imports
    assert out.stdout.strip() == os.path.join(a, "pyroute2", "__init__.pyc")


def test_ssh_argv_quotes_the_remote_argv():
    argv = hosts.ssh_argv("bh1", dict(REMOTE["bh1"], ansible_port=2222),
                          ["ip", "netns", "exec", "topo-x-a", "sh", "-c", "echo 'a b'; $HOME"])
    assert argv[0] == "ssh" and "-T" in argv and argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/k" and argv[argv.index("-l") + 1] == "root"
    assert "StrictHostKeyChecking=no" in argv and "BatchMode=yes" in argv
    assert argv[-3:-1] == ["192.0.2.11", "--"]
    assert shlex.split(argv[-1]) == ["ip", "netns", "exec", "topo-x-a", "sh", "-c", "echo 'a b'; $HOME"]


BECOME = {"bh1": dict(REMOTE["bh1"], ansible_user="topo", ansible_become=True)}


def test_a_host_with_become_runs_topos_own_commands_behind_sudo():
    argv = hosts.ssh_argv("bh1", BECOME["bh1"], ["ip", "netns", "exec", "topo-x-a", "tcpdump", "-i", "eth0"])
    assert argv[argv.index("-l") + 1] == "topo"
    assert shlex.split(argv[-1]) == ["sudo", "-n", "-u", "root", "--", "ip", "netns", "exec", "topo-x-a",
                                     "tcpdump", "-i", "eth0"]
    # as the login user (doctor's probe), or root already, or become not asked: no sudo
    assert shlex.split(hosts.ssh_argv("bh1", BECOME["bh1"], ["id"], become=False)[-1]) == ["id"]
    assert hosts.become_argv(dict(BECOME["bh1"], ansible_user="root")) == []
    assert hosts.become_argv(dict(BECOME["bh1"], ansible_become="no")) == []
    assert hosts.become_argv(dict(BECOME["bh1"], ansible_become="yes", ansible_become_user="lab")) == [
        "sudo", "-n", "-u", "lab", "--"]


def test_become_reaches_the_checks_and_the_nodes_connection():
    files = inventory.project(routed(), python="/ctl/python", hosts=BECOME)
    assert files["hosts.yml"]["all"]["children"]["topo_hosts"]["hosts"]["bh1"]["ansible_become"] is True
    r1 = files["host_vars/r1.json"]
    # sudo before `ip netns exec` (the connection's own option), not Ansible's become inside the node
    assert r1["topo_build_host_become"] is True and "ansible_become" not in r1
    assert "topo_build_host_become_user" not in r1
    r1 = inventory.project(routed(), python="/ctl/python", hosts={
        "bh1": dict(BECOME["bh1"], ansible_become_user="lab")})["host_vars/r1.json"]
    assert r1["topo_build_host_become_user"] == "lab"
    # a participant on the host carries become, so the controller's programs there run behind sudo
    check = {"type": "unicast", "sender": {"node": "h1", "netns": "topo-routed-h1"}}
    nodes = routed()["nodes"]
    reached = inventory._reached(check, {n: dict(v, host="bh1") for n, v in nodes.items()},
                                 inventory.host_vars(BECOME, "/ctl/python"))
    assert reached["sender"]["ssh"]["ansible_become"] is True and reached["sender"]["ssh"]["ansible_user"] == "topo"
