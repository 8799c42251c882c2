"""containerlab files (topo.load.clab): the raw records they load into, with the lines they
came from; containerlab's merge of defaults, kinds and nodes; the lab options; what is
ignored with a warning; the exec: key through expansion and inventory; and the node set
topo.lab.exec runs commands in. The snapshot pairs (input/clab-*, errors/clab-*) hold the
expansions and the error messages."""

import os
import pathlib
import subprocess
import sys
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.topo.lab.plugins.modules.exec import fresh_namespaces
from topo.errors import InputError
from topo.inventory import project
from topo.load import load
from topo.load.clab import IgnoredInput
from topo.pipeline import compile_file
from tests.unit import test_hostile_input as hostile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples")


def write(tmp_path, text, name="lab.clab.yml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def quiet_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredInput)
        return load(path)


def test_the_veth_example_loads_into_topo_records_with_its_lines():
    raw = quiet_load(os.path.join(EXAMPLES, "clab-veth.clab.yml"))
    assert raw.data == {
        "autoaddress": False, "name": "clab-veth",
        "nodes": {
            "n1": {"kind": "docker", "image": "topo-node:latest", "env": {"LAB": "clab-veth"},
                   "exec": ["ip addr add 192.168.1.1/24 dev eth1", "ip addr add 192.168.2.1/24 dev eth2"]},
            "n2": {"kind": "docker", "image": "topo-node:latest", "env": {"LAB": "clab-veth", "ROLE": "right"},
                   "exec": ["ip addr add 192.168.1.2/24 dev eth1", "ip addr add 192.168.2.2/24 dev eth2"]}},
        "links": [
            {"endpoints": [{"node": "n1", "ifname": "eth1"}, {"node": "n2", "ifname": "eth1"}]},
            {"endpoints": [{"node": "n1", "ifname": "eth2", "mac": "02:00:00:00:01:02"},
                           {"node": "n2", "ifname": "eth2"}], "mtu": 1400}]}
    # each record names the containerlab line it came from
    assert raw.lines[("nodes", "n1")] == 18
    assert raw.lines[("nodes", "n1", "image")] == 13  # from topology.kinds.linux.image
    assert raw.lines[("nodes", "n2", "exec")] == 25
    assert raw.lines[("links", 0)] == 28
    assert raw.lines[("links", 1, "mtu")] == 30
    assert raw.lines[("links", 1, "endpoints", 0, "mac")] == 34


def test_a_bridge_node_is_a_bridge_and_its_side_takes_topo_port_names():
    raw = quiet_load(os.path.join(EXAMPLES, "clab-bridge.clab.yml"))
    assert raw.data["bridges"] == {"br1": {}}
    assert raw.data["links"][2] == {"endpoints": [{"node": "br1"}, {"node": "h3", "ifname": "eth1"}]}
    e = compile_file(os.path.join(EXAMPLES, "clab-bridge.clab.yml")).expanded
    assert e["bridges"]["br1"]["netns"] == "topo-clab-bridge-br1"  # its own namespace, not the root one
    assert e["bridges"]["br1"]["ports"] == ["h1-eth1", "h2-eth1", "h3-eth1"]
    assert e["nodes"]["h3"]["container"]["cmd"] == ["sleep", "infinity"]
    assert e["nodes"]["h3"]["exec"] == [["sh", "-c", "ip addr add 10.10.0.3/24 dev eth1 && ip link set eth1 mtu 1500"]]


def test_no_addresses_are_assigned_or_managed():
    c = compile_file(os.path.join(EXAMPLES, "clab-veth.clab.yml"))
    assert c.expanded["autoaddress"] is False
    assert all(i["address"] is None for n in c.expanded["nodes"].values() for i in n["interfaces"])
    assert c.expanded["checks"] == []  # topo knows no address to ping
    build = project(c.expanded, python="/usr/bin/python3", hosts={"localhost": {}})["group_vars/topo_hosts.json"]
    assert build["topo_addresses"] == []  # so a re-apply leaves the addresses exec: set
    assert [e["node"] for e in build["topo_execs"]] == ["n1", "n2"]
    assert build["topo_execs"][0]["commands"][0] == ["ip", "addr", "add", "192.168.1.1/24", "dev", "eth1"]


def test_mgmt_is_ignored_with_a_warning_naming_file_and_line():
    path = os.path.join(EXAMPLES, "clab-veth.clab.yml")
    with pytest.warns(IgnoredInput, match=r"clab-veth.clab.yml:5: mgmt: ignored: topo nodes have no management"):
        load(path)


def test_the_cli_prints_the_warning(tmp_path):
    r = subprocess.run([sys.executable, "-m", "topo", "validate", "examples/clab-veth.clab.yml"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, TOPO_HOME=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "warning: examples/clab-veth.clab.yml:5: mgmt: ignored" in r.stderr
    assert "Traceback" not in r.stderr


def test_node_wins_over_kind_over_defaults(tmp_path):
    path = write(tmp_path, """name: merge
topology:
  defaults: {kind: linux, image: a:1, cmd: sleep 1, env: {X: d, Y: d}, binds: ["/d:/data", "rel:/rel"],
             exec: ["echo defaults"]}
  kinds:
    linux: {image: b:2, env: {Y: k, Z: k}, exec: ["echo kind"]}
  nodes:
    one: {env: {Z: n}}
    two: {image: c:3, cmd: sleep 2, binds: ["/n:/data:ro"], exec: ["echo node"]}
""")
    nodes = quiet_load(path).data["nodes"]
    assert nodes["one"] == {"kind": "docker", "image": "b:2", "cmd": "sleep 1", "exec": ["echo kind"],
                            "env": {"X": "d", "Y": "k", "Z": "n"},
                            "binds": ["/d:/data", f"{tmp_path}/rel:/rel"]}  # relative to the file, as containerlab
    assert nodes["two"] == {"kind": "docker", "image": "c:3", "cmd": "sleep 2", "exec": ["echo node"],
                            "env": {"X": "d", "Y": "k", "Z": "k"},
                            "binds": ["/n:/data:ro", f"{tmp_path}/rel:/rel"]}


def test_kind_netns_makes_namespaces_and_drops_container_settings_with_a_warning(tmp_path):
    path = os.path.join(HERE, "input", "clab-netns.clab.yml")
    with pytest.warns(IgnoredInput, match=r"clab-netns.clab.yml:7: topology.nodes.a: image ignored"):
        raw = load(path)
    assert raw.data["nodes"]["a"] == {"kind": "netns", "exec": ["ip addr add 192.0.2.1/24 dev eth1"]}
    e = compile_file(path).expanded
    assert {n["kind"] for n in e["nodes"].values()} == {"netns"}
    assert e["nodes"]["b"]["exec"] == [["ip", "addr", "add", "192.0.2.2/24", "dev", "eth1"]]
    assert "exec" not in e["nodes"]["c"]  # only present when used


def test_autoaddress_option_addresses_from_the_pools_and_pings(tmp_path):
    path = write(tmp_path, """# topo: kind=netns autoaddress=true routing=auto
name: auto
topology:
  nodes: {a: {kind: linux}, b: {kind: linux}}
  links: [{endpoints: ["a:eth1", "b:eth1"]}]
""")
    e = compile_file(path).expanded
    assert "autoaddress" not in e and e["routing"] == "auto"
    assert [i["address"] for i in e["nodes"]["a"]["interfaces"]] == ["10.1.0.1/30"]
    assert [c["from"] for c in e["checks"]] == ["a", "b"]


def test_verify_option_reads_checks_beside_the_file(tmp_path):
    (tmp_path / "checks.yml").write_text("verify:\n  - ping: {from: a, to: b}\n")
    path = write(tmp_path, """# topo: autoaddress=true verify=checks.yml
name: withchecks
topology:
  nodes: {a: {kind: linux}, b: {kind: linux}}
  links: [{endpoints: ["a:eth1", "b:eth1"]}]
""")
    assert compile_file(path).expanded["checks"] == [
        {"type": "ping", "from": "a", "targets": [{"node": "b", "address": "10.1.0.2", "expect": "pass"}]}]


def test_clab_yaml_suffix_and_the_name_from_the_file(tmp_path):
    path = write(tmp_path, "topology:\n  nodes:\n    a: {kind: linux}\n", name="mylab.clab.yaml")
    assert compile_file(path).expanded["lab"] == "mylab"


@pytest.mark.parametrize("text,where,message", [
    ("name: x\ntopology:\n  nodes:\n    r: {kind: ceos}\n", "lab.clab.yml:4: topology.nodes.r.kind",
     "kind 'ceos' is not supported; supported: kinds linux and bridge"),
    ("name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - type: vxlan\n      endpoint: {node: a}\n",
     "lab.clab.yml:5: topology.links[0].type", "type 'vxlan' joins a node to a remote host"),
    ("name: x\ntopology:\n  nodes: {a: {kind: linux, memory: 1G}}\n",
     "lab.clab.yml:3: topology.nodes.a.memory", "unknown or unsupported key"),
    ("name: x\nsettings: {}\ntopology:\n  nodes: {a: {kind: linux}}\n", "lab.clab.yml:2: settings", "unknown key"),
    ("name: x\n", "lab.clab.yml", "no topology: block"),
])
def test_errors_name_file_line_and_field(tmp_path, text, where, message):
    with pytest.raises(InputError) as exc:
        compile_file(write(tmp_path, text))
    lines = [str(p) for p in exc.value.problems]
    assert any(line.startswith(f"{tmp_path}/{where}") and message in line for line in lines), lines
    assert exc.value.phase == "load"


def test_apply_of_an_unsupported_file_is_exit_2_and_builds_nothing(tmp_path):
    path = write(tmp_path, "name: x\ntopology:\n  nodes:\n    r: {kind: nokia_srlinux}\n")
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-m", "topo", "apply", path], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, TOPO_HOME=str(home)))
    assert r.returncode == 2
    assert f"{path}:4: topology.nodes.r.kind: kind 'nokia_srlinux' is not supported" in r.stderr
    assert "Traceback" not in r.stderr and not home.exists()


def test_exec_in_topo_yaml_is_argv_split_like_a_shell_never_run_by_one(tmp_path):
    path = write(tmp_path, "name: y\nnodes:\n  a:\n    exec: [\"echo 'a b' c\", [ls, -l]]\n", name="lab.yml")
    assert compile_file(path).expanded["nodes"]["a"]["exec"] == [["echo", "a b", "c"], ["ls", "-l"]]


def test_exec_runs_only_in_what_the_lab_run_created():
    changes = [
        {"action": "create", "resource": "netns", "name": "topo-l-a"},
        {"action": "fix", "resource": "netns", "name": "topo-l-b", "detail": "lo down -> up"},
        {"action": "create", "resource": "container", "name": "topo-l-c"},
        {"action": "fix", "resource": "container", "name": "topo-l-d", "detail": "recreated: image x -> y"},
        {"action": "fix", "resource": "container", "name": "topo-l-e", "detail": "started (was exited)"},
        {"action": "fix", "resource": "container", "name": "topo-l-f",
         "detail": "namespace named again: /run/netns/topo-l-f was not the container's"},
        {"action": "create", "resource": "veth", "name": "topo-l-g/eth0"},
    ]
    assert fresh_namespaces(changes) == {"topo-l-a", "topo-l-c", "topo-l-d", "topo-l-e"}
    assert fresh_namespaces([]) == set()


def test_the_brief_link_form_takes_an_mtu_as_containerlab_does(tmp_path):
    path = write(tmp_path, """name: brief
topology:
  nodes: {l1: {kind: linux}, l2: {kind: linux}}
  links:
    - endpoints: ["l1:eth1", "l2:some1"]
      mtu: 2000
""")
    e = compile_file(path).expanded
    assert e["veths"] == [{"a": {"netns": "topo-brief-l1", "ifname": "eth1", "mtu": 2000},
                           "b": {"netns": "topo-brief-l2", "ifname": "some1", "mtu": 2000}}]


CLAB_SEEDS = [pathlib.Path(EXAMPLES, "clab-veth.clab.yml").read_text(),
              pathlib.Path(HERE, "input", "clab-merge.clab.yml").read_text()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), seed=st.sampled_from(CLAB_SEEDS))
def test_mutated_containerlab_files_are_loaded_or_cleanly_rejected(tmp_path, monkeypatch, data, seed):
    """Whatever the mutation: valid, or exit 2 with file:line: field problems; never a traceback."""
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredInput)
        hostile._check(tmp_path, ".clab.yml", hostile._mutate(seed, data))
