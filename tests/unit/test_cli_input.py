"""The CLI on bad input: exit 2, every problem named, no traceback, JSON when asked."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
#: the checkout's topo (and collection) first, not an installed copy
ENV = dict(os.environ, TOPO_HOME=os.path.join(HERE, ".no-home"),
           PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def topo(*args, cwd=HERE):
    return subprocess.run([sys.executable, "-m", "topo", *args], capture_output=True, text=True, cwd=cwd, env=ENV)


def test_bad_input_exit_2_without_traceback():
    r = topo("validate", "errors/unknown-node.yml")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "errors/unknown-node.yml:5: links[1].endpoints[1].node: unknown node 'h9'" in r.stderr


def test_problems_are_one_line_each_when_stderr_is_not_a_terminal():
    """Piped stderr is never wrapped, however narrow COLUMNS is: one problem, one line."""
    r = subprocess.run([sys.executable, "-m", "topo", "validate", "errors/unknown-node.yml"], capture_output=True,
                       text=True, cwd=HERE, env=ENV | {"COLUMNS": "30"})
    assert r.returncode == 2
    assert ("  errors/unknown-node.yml:5: links[1].endpoints[1].node: unknown node 'h9' (nodes: h1, h2)"
            in r.stderr.splitlines())


def test_apply_rejects_bad_input_before_anything_else():
    """Bad input is exit 2 even for apply, and nothing is built (no lab directory)."""
    r = topo("apply", "errors/overlap.yml")
    assert r.returncode == 2, r.stderr
    assert "overlaps" in r.stderr
    assert not os.path.exists(os.path.join(HERE, ".no-home"))


def test_json_error_document():
    r = topo("validate", "errors/ifname-too-long.yml", "--json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == 2 and doc["phase"] == "validate"
    assert doc["problems"] == [{"file": "errors/ifname-too-long.yml", "line": 4,
                                "field": "links[0].endpoints[0].ifname",
                                "message": "'this-is-too-long0' is longer than 15 characters"}]


def test_missing_file_and_unknown_format():
    assert "cannot read" in topo("validate", "nope.yml").stderr
    r = topo("validate", "snapshot.py")
    assert r.returncode == 2 and "unknown topology format" in r.stderr


def test_help_teaches():
    r = topo("apply", "--help")
    assert r.returncode == 0
    assert "examples:" in r.stdout and "ansible-playbook" in r.stdout
    assert topo("--help").stdout.count("topo apply") >= 1


def test_help_and_validate_do_not_load_netlink_docker_or_ansible_runner():
    """``topo --help`` and ``topo validate`` stay quick: pyroute2, the Docker SDK and
    ansible-runner load only for the commands that use them (api names load lazily)."""
    for args in (["--help"], ["validate", "../../examples/routed.yml"]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "topo", *args], capture_output=True,
                           text=True, cwd=HERE, env=ENV)
        assert r.returncode == 0, r.stderr
        loaded = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
        assert "topo.cli" in loaded and "topo.usecases" in loaded  # the checkout's
        assert not {"pyroute2", "docker", "ansible_runner"} & loaded, args


def test_destroy_names_one_target():
    r = topo("destroy", "--json")
    if os.geteuid() != 0:
        assert r.returncode == 3 and json.loads(r.stdout)["exit_code"] == 3
        return
    assert r.returncode == 2
    assert "name what to destroy: a topology FILE, --lab NAME, or --all" in json.loads(r.stdout)["message"]
    r = topo("destroy", "--lab", "../etc")
    assert r.returncode == 2 and "'../etc' is not a lab name" in r.stderr


def test_graph_draws_a_lab_and_refuses_an_unknown_format(tmp_path):
    """topo graph: DOT on stdout without -o; each format by -o's suffix; exit 2 naming the
    supported ones for another; nothing needs root."""
    import shutil
    r = topo("graph", os.path.join(ROOT, "examples", "vxlan.yml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("// topo lab vxlan\ngraph vxlan {") and "VNI 100" in r.stdout
    formats = [".dot", ".mmd"] + ([".svg", ".png", ".html"] if shutil.which("dot") else [])
    for suffix in formats:
        out = tmp_path / f"lab{suffix}"
        r = topo("graph", os.path.join(ROOT, "examples", "vxlan.yml"), "-o", str(out), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"lab": "vxlan", "file": os.path.join(ROOT, "examples", "vxlan.yml"),
                                        "path": str(out)}
        assert out.stat().st_size > 200, suffix
    r = topo("graph", os.path.join(ROOT, "examples", "vxlan.yml"), "-o", str(tmp_path / "lab.pdf"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ".pdf" in r.stderr and ".mmd" in r.stderr and not (tmp_path / "lab.pdf").exists()
