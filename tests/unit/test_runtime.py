"""Runtime changes without root: ``topo link`` / ``topo impair`` arguments (what is refused,
with exit 2, before anything runs), and ``during:`` on checks: validated names with
file:line: field, the expanded check, and its place in the inventory."""

import os
import subprocess
import sys

import pytest

from topo import inventory, usecases
from topo.errors import InputError, UsageError
from topo.pipeline import compile_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LAB = """name: rtunit
routing: auto
nodes: {a: {forwarding: true}, b: {forwarding: true}, c: {forwarding: true}}
links:
  - [a, b]
  - [a, c]
  - [b, c]
"""


def write(tmp_path, verify=""):
    path = tmp_path / "rtunit.yml"
    path.write_text(LAB + verify)
    return str(path)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))


# --------------------------------------------------------------------------- topo impair arguments

def test_impairment_values_validated_like_a_links_impair():
    assert usecases.runtime_impairment(rate="20mbit") == {"delay": None, "jitter": None, "loss": None,
                                                          "rate": 20_000_000}
    assert usecases.runtime_impairment(delay=50, jitter=5, loss=1.5) == {"delay": 50.0, "jitter": 5.0, "loss": 1.5,
                                                                         "rate": None}
    assert usecases.runtime_impairment(clear=True) == dict.fromkeys(("delay", "jitter", "loss", "rate"))


@pytest.mark.parametrize("kw,message", [
    ({}, "say what to impair: --delay MS"),
    ({"clear": True, "rate": "1mbit"}, "--clear removes the impairment; it takes no --rate"),
    ({"jitter": 5}, "jitter needs a delay"),
    ({"loss": 150}, "--loss: Input should be less than or equal to 100"),
    ({"delay": -1}, "--delay: Input should be greater than or equal to 0"),
    ({"rate": "fast"}, "--rate: 'fast' is not a rate"),
    ({"rate": "1kbit"}, "--rate: Input should be greater than or equal to 8000"),
])
def test_impairment_refusals_name_the_option(kw, message):
    with pytest.raises(UsageError) as exc:
        usecases.runtime_impairment(**kw)
    assert message in str(exc.value)
    assert exc.value.exit_code == 2


def test_unknown_node_or_interface_is_refused_before_root(tmp_path):
    lab = write(tmp_path)
    for call in (lambda on: usecases.set_link(lab, on, "down"), lambda on: usecases.impair(lab, on, rate="1mbit")):
        with pytest.raises(UsageError, match=r"'x:eth0': no node 'x' in .*rtunit.yml; nodes: a, b, c"):
            call("x:eth0")
        with pytest.raises(UsageError, match=r"'a:eth7': node a has no interface 'eth7'; it has: eth0, eth1"):
            call("a:eth7")
        with pytest.raises(UsageError, match="not NODE:IFACE"):
            call("a")
    with pytest.raises(UsageError, match="'sideways' is not a link state"):
        usecases.set_link(lab, "a:eth0", "sideways")


def test_cli_exit_2_and_help_teaches(tmp_path):
    lab = write(tmp_path)
    env = dict(os.environ, TOPO_HOME=str(tmp_path / "home"))
    run = lambda *a: subprocess.run([sys.executable, "-m", "topo", *a], capture_output=True, text=True,  # noqa: E731
                                    cwd=ROOT, env=env)
    r = run("impair", lab, "a:eth0")
    assert r.returncode == 2 and "say what to impair" in r.stderr and "Traceback" not in r.stderr
    r = run("link", lab, "q:eth0", "down")
    assert r.returncode == 2 and "nodes: a, b, c" in r.stderr
    r = run("link", lab, "a:eth0", "sideways")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    for cmd, example in (("link", "topo link examples/routed.yml r1:eth1 down"),
                         ("impair", "topo impair examples/routed.yml r1:eth1 --rate 1mbit")):
        r = run(cmd, "--help")
        assert r.returncode == 0 and example in r.stdout and "topo apply" in r.stdout


# --------------------------------------------------------------------------- during:

def test_during_names_are_validated_with_file_line_field(tmp_path):
    lab = write(tmp_path, """verify:
  - ping: {from: a, to: b, during: {down: [a:eth0, x:eth0]}}
  - unicast: {from: a, to: c, during: {down: [b:eth5, a:eth0, a:eth0]}}
  - ping: {from: a, to: b, during: {down: []}}
  - ping: {from: a, to: b, during: {down: [a-eth0]}}
""")
    with pytest.raises(InputError) as exc:
        compile_file(lab)
    text = "\n".join(str(p) for p in exc.value.problems)
    assert "rtunit.yml:11: verify[2].ping.during.down: List should have at least 1 item" in text
    assert "rtunit.yml:12: verify[3].ping.during.down[0]: 'a-eth0' is not" in text
    lab = write(tmp_path, """verify:
  - ping: {from: a, to: b, during: {down: [a:eth0, x:eth0]}}
  - unicast: {from: a, to: c, during: {down: [b:eth5, a:eth0, a:eth0]}}
""")
    with pytest.raises(InputError) as exc:
        compile_file(lab)
    text = "\n".join(str(p) for p in exc.value.problems)
    assert "rtunit.yml:9: verify[0].ping.during.down[1]: unknown node 'x' (nodes: a, b, c)" in text
    assert "rtunit.yml:10: verify[1].unicast.during.down[0]: node b has no interface 'eth5' (eth0, eth1)" in text
    assert "rtunit.yml:10: verify[1].unicast.during.down[2]: a:eth0 is listed twice" in text


def test_during_checks_run_on_their_own(tmp_path):
    lab = write(tmp_path, """verify:
  - ping: {from: a, to: c}
  - ping: {from: a, to: b, expect: fail, during: {down: [a:eth0, b:eth1]}}
  - unicast: {from: a, to: b, during: {down: [a:eth1]}}
""")
    e = compile_file(lab).expanded
    plain = [c for c in e["checks"] if "during" not in c]
    during = [c for c in e["checks"] if "during" in c]
    assert [c["type"] for c in plain] == ["ping"] and plain[0]["from"] == "a"
    assert {t["node"] for t in plain[0]["targets"]} == {"c"}
    ping, cast = during
    assert ping["type"] == "ping" and ping["from"] == "a" and {t["expect"] for t in ping["targets"]} == {"fail"}
    assert ping["during"] == {"down": [{"on": "a:eth0", "node": "a", "link": {"netns": "topo-rtunit-a",
                                                                              "ifname": "eth0"}},
                                       {"on": "b:eth1", "node": "b", "link": {"netns": "topo-rtunit-b",
                                                                              "ifname": "eth1"}}]}
    assert cast["type"] == "unicast" and cast["description"].endswith(" with a:eth1 down")
    files = inventory.project(e)
    build = files["group_vars/topo_hosts.json"]
    assert build["topo_during"] == during
    assert [p["node"] for p in build["topo_pings"]] == ["a"]
    assert set(build["topo_pings"][0]["nodes"].split(",")) == {"c"}
    assert build["topo_casts"] == []


def test_no_during_no_key(tmp_path):
    """A lab without during: has no topo_during in its inventory (snapshots unchanged)."""
    e = compile_file(write(tmp_path, "verify:\n  - ping: {from: a, to: c}\n")).expanded
    assert "topo_during" not in inventory.project(e)["group_vars/topo_hosts.json"]


def test_runtime_result_json_keys():
    r = usecases.RuntimeResult("l", "l.yml", "a:eth0", "down", [{"action": "fix", "resource": "link"}], 1.234, "/log")
    assert r.to_json() == {"lab": "l", "file": "l.yml", "on": "a:eth0", "what": "down", "changed": 1,
                           "changes": r.changes, "seconds": 1.23, "log": "/log"}
