"""Multi-host expansion and projection (placement, stitching, the per-host split) as
snapshots, over fake build hosts (no SSH needed): multihost/<case> and the examples
expand to expected-multihost/<case>/expanded.yml and project to the other files there.

Regenerate with ``python3 tests/unit/test_multihost.py`` and review the diff.
"""

import copy
import difflib
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from tests.unit.snapshot import PYTHON, _here, _rel  # noqa: E402
from topo.errors import InputError  # noqa: E402
from topo.expand import expand  # noqa: E402
from topo.inventory import dump, project, render  # noqa: E402
from topo.load import load  # noqa: E402
from topo.model import resolve  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")
INPUTS = os.path.join(HERE, "multihost")
EXPECTED = os.path.join(HERE, "expected-multihost")


def three_hosts(mtu=1500, **extra):
    """Three fake build hosts on 198.18.0.1-3 (hostB gives its underlay with topo_underlay)."""
    return {"hostA": {"ansible_host": "198.18.0.1", "topo_underlay_mtu": mtu, **extra},
            "hostB": {"ansible_host": "hostb.example", "topo_underlay": "198.18.0.2", "topo_underlay_mtu": mtu},
            "hostC": {"ansible_host": "198.18.0.3", "topo_underlay_mtu": mtu}}


#: case: (topology, build hosts). vxlan.yml's stretched LAN declares MTU 1450 and its
#: VNI 100 tunnel rides a stitched link: it fits an underlay of 1600 bytes (1600 - 50 - 50).
CASES = {
    "clusters-auto": (os.path.join(EXAMPLES, "clusters.csv"), three_hosts()),
    "clusters-host": (os.path.join(INPUTS, "clusters-host.csv"), three_hosts()),
    "routed-auto": (os.path.join(EXAMPLES, "routed.yml"), three_hosts()),
    "vxlan-auto": (os.path.join(EXAMPLES, "vxlan.yml"), three_hosts(mtu=1600)),
    "vni-base": (os.path.join(INPUTS, "vni-base.yml"), three_hosts()),
}


def compile_(path, hosts, previous=None):
    with _here():
        return expand(resolve(load(_rel(path))), previous, hosts)


def errors(path, hosts):
    with _here():
        try:
            expand(resolve(load(_rel(path))), None, hosts)
        except InputError as exc:
            return ["phase: " + exc.phase] + [str(p) for p in exc.problems]
    return ["(no error)"]


def texts(case):
    """``{file: text}`` of a case: expanded.yml and the inventory's files."""
    path, hosts = CASES[case]
    expanded = compile_(path, hosts)
    out = {"expanded.yml": dump(expanded)}
    out.update(render(project(expanded, python=PYTHON, hosts=hosts)))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_snapshot(case):
    folder = os.path.join(EXPECTED, case)
    got = texts(case)
    on_disk = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)
    assert sorted(got) == on_disk, f"{case}: other files (regenerate if intended)"
    for rel, text in got.items():
        with open(os.path.join(folder, rel)) as f:
            want = f.read()
        if text != want:
            pytest.fail(f"{case}/{rel} differs:\n" + "".join(difflib.unified_diff(
                want.splitlines(True), text.splitlines(True), "expected", "got")))


def test_one_host_expands_as_before():
    """The default (no hosts) and one named host give the expanded lab of today: no host
    keys, no stitches, one group_vars file."""
    path = os.path.join(EXAMPLES, "routed.yml")
    default = compile_(path, None)
    assert compile_(path, {"localhost": {"ansible_connection": "local"}}) == default
    assert "stitches" not in default and "host" not in default["nodes"]["h1"]
    files = project(default, python=PYTHON, hosts={"localhost": {}})
    assert sorted(f for f in files if f.startswith("group_vars") or f.startswith("host_vars/local")) == \
        ["group_vars/topo_hosts.json"]


def test_each_cluster_is_split_and_every_host_gets_only_its_own():
    expanded = compile_(*CASES["clusters-auto"])
    where = {n: node["host"] for n, node in expanded["nodes"].items()}
    for cluster in ("a-", "b-"):
        assert len({h for n, h in where.items() if n.startswith(cluster)}) > 1, where
    assert sorted(expanded["bridges"]["lan"]["hosts"]) == ["hostA", "hostB", "hostC"]
    stitches = expanded["stitches"]
    assert [s["host"] for s in stitches] == ["hostA", "hostB", "hostC"]
    assert {s["vni"] for s in stitches} == {10000}
    assert stitches[0]["fdb"] == ["198.18.0.2", "198.18.0.3"] and stitches[0]["remote"] is None
    files = project(expanded, python=PYTHON, hosts=CASES["clusters-auto"][1])
    for h in ("hostA", "hostB", "hostC"):
        mine = files[f"host_vars/{h}.json"]
        names = {ns["node"] for ns in mine["topo_namespaces"]}
        assert names == {n for n, x in where.items() if x == h} | {"lan"}
        assert all(v["a"]["netns"].split("-", 2)[2] in names for v in mine["topo_veths"])
        assert [t["ifname"] for t in mine["topo_tunnels"]] == ["vxlan10000"]
        assert "host" not in mine["topo_tunnels"][0] and "stitch" not in mine["topo_tunnels"][0]


def test_explicit_wins_and_placement_is_sticky():
    path, hosts = CASES["routed-auto"]
    first = compile_(path, hosts)
    # a new node on lan1 and another host: nobody moves, the VNIs stay
    with open(path) as f:
        text = f.read().replace("  r1: {forwarding: true}", "  h0: {}\n  r1: {forwarding: true}") \
            .replace("  - [h1, lan1]", "  - [h0, lan1]\n  - [h1, lan1]")
    more = dict(hosts, hostD={"ansible_host": "198.18.0.4"})
    edited = os.path.join(INPUTS, "..", "multihost-edited.yml")
    try:
        with open(edited, "w") as f:
            f.write(text)
        fresh = compile_(edited, more)
        again = compile_(edited, more, previous=first)
    finally:
        os.unlink(edited)
    kept = {n: node["host"] for n, node in again["nodes"].items() if n != "h0"}
    assert kept == {n: node["host"] for n, node in first["nodes"].items()}
    assert {s["stitch"]: s["vni"] for s in again["stitches"]}.items() >= \
        {s["stitch"]: s["vni"] for s in first["stitches"]}.items()
    assert fresh != again  # without the prior, the fourth host takes a share
    # explicit wins over the prior
    moved = copy.deepcopy(first)
    moved["nodes"]["h1"]["host"] = "hostC"
    assert compile_(path, hosts, previous=moved)["nodes"]["h1"]["host"] == "hostC"


def test_weights_balance_the_share():
    path = os.path.join(EXAMPLES, "clusters.csv")
    hosts = three_hosts()
    hosts["hostA"]["topo_weight"] = 2
    count = {}
    for node in compile_(path, hosts)["nodes"].values():
        count[node["host"]] = count.get(node["host"], 0) + 1
    assert count == {"hostA": 8, "hostB": 4, "hostC": 4}


@pytest.mark.parametrize("name, hosts, want", [
    ("unknown-host.yml", three_hosts(), [
        "phase: placement",
        "multihost/unknown-host.yml:4: nodes.h2.host: hostZ is not a build host (the build hosts: hostA, hostB, hostC)"]),
    ("mtu-too-big.yml", three_hosts(), [
        "phase: stitching",
        "multihost/mtu-too-big.yml:9: links[0].mtu: MTU 1500 does not fit the VXLAN between build hosts hostA and "
        "hostB: at most 1450 (underlay MTU 1500 - 50 bytes of VXLAN); lower it or raise topo_underlay_mtu",
        "multihost/mtu-too-big.yml:10: links[1].mtu: MTU 1480 does not fit the VXLAN between build hosts hostA and "
        "hostB: at most 1450 (underlay MTU 1500 - 50 bytes of VXLAN); lower it or raise topo_underlay_mtu"]),
    ("vxlan", three_hosts(), [
        "phase: tunnels",
        "../../examples/vxlan.yml:39: tunnels[0]: the tunnel's MTU is 1400 but segment br1 carries frames of up to "
        "1450 bytes, which the bridge would drop; lower the segment's link mtu to 1400 or raise the underlay's MTU "
        "by 50, or build it anyway with mtu_check: warn"]),
    ("routed", {"hostA": {"ansible_host": "a.example"}, "hostB": {"ansible_host": "198.18.0.2",
                                                                  "topo_underlay_mtu": 100}}, [
        "phase: stitching",
        "../../examples/routed.yml: build host hostA: underlay address 'a.example' is not an IPv4 address; set "
        "topo_underlay (or ansible_host) to the address VXLAN leaves from",
        "../../examples/routed.yml: build host hostB: topo_underlay_mtu 100 is not a whole number of bytes from "
        "118 to 65535"]),
])
def test_refused_with_the_numbers(name, hosts, want):
    path = os.path.join(INPUTS, name) if name.endswith(".yml") else os.path.join(EXAMPLES, name + ".yml")
    assert errors(path, hosts) == want


def test_vnis_of_other_labs_on_the_same_hosts_are_skipped_or_refused():
    path, hosts = CASES["routed-auto"]
    first = compile_(path, hosts)
    assert [s["vni"] for s in first["stitches"]] == [10000, 10000, 10001, 10001]
    with _here():
        model = resolve(load(_rel(path)))
        skipped = expand(model, None, hosts, {10000: "other"})
        assert [s["vni"] for s in skipped["stitches"]] == [10001, 10001, 10002, 10002]
        with pytest.raises(InputError) as caught:
            expand(model, first, hosts, {10001: "other"})
    assert caught.value.phase == "stitching"
    assert [str(p) for p in caught.value.problems] == [
        "../../examples/routed.yml:5: multihost: VNI 10001 of bridge lan2 is also lab other's on the same build "
        "hosts; destroy one of them or give one another multihost.vni_base"]


def regenerate():
    import shutil
    for case in sorted(CASES):
        folder = os.path.join(EXPECTED, case)
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in texts(case).items():
            os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
            with open(os.path.join(folder, rel), "w") as f:
                f.write(text)
        print("expected-multihost/%s/" % case)


if __name__ == "__main__":
    regenerate()
