"""Every module, plugin and role of topo.lab documents itself in a form ansible-doc reads."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COLLECTION = ROOT  # the repository root is the collection topo.lab
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(COLLECTION, "plugins", "modules")) if f.endswith(".py"))


@pytest.mark.parametrize("plugin_type,names", [
    ("module", MODULES),
    ("connection", ["netns"]),
    ("inventory", ["topo"]),
    ("lookup", ["pyroute2_zip", "python_zip"]),
])
def test_ansible_doc_reads_every_plugin(plugin_type, names):
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    proc = subprocess.run([exe, "-j", "-t", plugin_type, *[f"topo.lab.{n}" for n in names]],
                          capture_output=True, text=True, env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=ROOT))
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, proc.stderr
    docs = json.loads(proc.stdout)
    for name in names:
        doc = docs[f"topo.lab.{name}"]["doc"]
        assert doc.get("short_description") and doc.get("description"), name
        if plugin_type == "module":
            assert docs[f"topo.lab.{name}"].get("examples") and docs[f"topo.lab.{name}"].get("return"), name
