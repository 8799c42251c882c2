"""The CLI on bad input: exit 2, every problem named, no traceback, JSON when asked."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def topo(*args, cwd=HERE):
    return subprocess.run([sys.executable, "-m", "topo", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, TOPO_HOME=os.path.join(HERE, ".no-home")))


def test_bad_input_exit_2_without_traceback():
    r = topo("validate", "errors/unknown-node.yml")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "errors/unknown-node.yml:5: links[1].endpoints[1].node: unknown node 'h9'" in r.stderr


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
