"""topo list: every lab on this machine and its state, read from the kernel markers, the
containers' labels and the lab directories (issue 15, item 2)."""

import os
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAB = """name: listlab
nodes: [a, b]
links: [[a, b]]
verify: []
"""


def _entry(topo_cli, lab="listlab"):
    labs = {e["lab"]: e for e in topo_cli.json("list")["labs"]}
    return labs.get(lab)


def test_list_follows_a_lab_through_up_partial_orphan_and_destroy(topo_cli, tmp_path):
    path = tmp_path / "listlab.yml"
    path.write_text(LAB)
    assert _entry(topo_cli) is None
    try:
        topo_cli("apply", str(path), "--no-verify")
        entry = _entry(topo_cli)
        assert entry["state"] == "up" and entry["namespaces"] == 2 and entry["missing"] == []
        assert entry["file"] == str(path) and entry["applied"]
        # a node deleted by hand: the lab is partial, and says what is missing
        subprocess.run(["ip", "netns", "del", "topo-listlab-b"], check=True)
        entry = _entry(topo_cli)
        assert entry["state"] == "partial" and entry["namespaces"] == 1 and entry["missing"] == ["topo-listlab-b"]
        # the lab directory gone (a crash, a wiped TOPO_HOME): what remains is an orphan
        shutil.rmtree(os.path.join(topo_cli.home, "labs", "listlab"))
        entry = _entry(topo_cli)
        assert entry["state"] == "orphan" and entry["namespaces"] == 1 and entry["file"] is None
        table = topo_cli("list").stdout
        assert "listlab" in table and "orphan" in table
    finally:
        topo_cli("destroy", "--lab", "listlab")
    assert _entry(topo_cli) is None
