import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


class Topo:
    """Runs the real `topo` CLI (python -m topo) with an isolated TOPO_HOME."""

    def __init__(self, home):
        self.home = str(home)

    def __call__(self, *args, check=True, timeout=600):
        r = subprocess.run([sys.executable, "-m", "topo", *args], capture_output=True, text=True, cwd=ROOT,
                           env=dict(os.environ, TOPO_HOME=self.home), timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"topo {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def json(self, *args, **kw):
        r = self(args[0], "--json", *args[1:], **kw)
        return json.loads(r.stdout)


def dual_stack(example: str, directory) -> str:
    """A copy of ``example`` (a YAML topology of the checkout) in ``directory`` with
    ``af: [ipv4, ipv6]`` added: the same lab, dual stack (its path)."""
    path = os.path.join(str(directory), os.path.basename(example))
    with open(os.path.join(ROOT, example)) as f, open(path, "w") as out:
        out.write("af: [ipv4, ipv6]\n" + f.read())
    return path


def changes_of(result):
    """Sorted ``(action, resource, name)`` of a plan's or an apply's changes: a list, so a
    change predicted once but made twice (or the reverse) shows."""
    return sorted((c["action"], c["resource"], c["name"]) for c in result["changes"])


@pytest.fixture
def topo_cli(tmp_path):
    cli = Topo(tmp_path / "home")
    yield cli
    # leave nothing behind, whatever the test did (destroy costs ~2 s a lab: only those left)
    from tests.conftest import netns_list
    left = {n for n in netns_list() if n.startswith("topo-")}
    labs_dir = os.path.join(cli.home, "labs")
    for lab in ("clusters", "routed", "vxlan", "overlay", "impaired", "imprate", "impdelay", "e2elock",
                "clusters-docker", "vxlan-docker", "overlay-docker", "dkimg", "casts", "mcast-ack",
                "mcast-groups", "throughput", "dualstack", "mcast6", "mcast-clean", "mcast6-clean", "outside"):
        if not os.path.isdir(os.path.join(labs_dir, lab)) and not any(n.startswith(f"topo-{lab}-") for n in left):
            continue
        subprocess.run([sys.executable, "-m", "topo", "destroy", "--lab", lab], capture_output=True,
                       cwd=ROOT, env=dict(os.environ, TOPO_HOME=cli.home))
