"""Properties of the front end beyond single snapshots."""

import os

import pytest
import yaml

from topo.errors import InputError
from topo.inventory import dump, project
from topo.pipeline import compile_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


def test_csv_and_yaml_clusters_expand_identically():
    a = compile_file(os.path.join(EXAMPLES, "clusters.csv")).expanded
    b = compile_file(os.path.join(EXAMPLES, "clusters.yml")).expanded
    assert dump(a) == dump(b)


def test_clusters_addresses_and_groups():
    e = compile_file(os.path.join(EXAMPLES, "clusters.csv")).expanded
    addr = {n: v["interfaces"][0]["address"] for n, v in e["nodes"].items()}
    assert addr["a-master"] == "192.18.0.2/24" and addr["b-master"] == "192.18.0.10/24"
    assert sorted(addr[f"a-m{i}"] for i in range(1, 8)) == sorted(f"192.18.0.{i}/24" for i in range(3, 10))
    assert sorted(addr[f"b-m{i}"] for i in range(1, 8)) == sorted(f"192.18.0.{i}/24" for i in range(11, 18))
    inv = project(e)["hosts.yml"]["all"]["children"]
    assert sorted(inv["cluster_a"]["hosts"]) == sorted(["a-master"] + [f"a-m{i}" for i in range(1, 8)])
    assert len(inv["cluster_b"]["hosts"]) == 8


def test_inventory_is_deterministic(tmp_path):
    """The same file gives byte-identical inventory files (DESIGN.md 3)."""
    from topo import inventory
    for run in ("one", "two"):
        inventory.write(str(tmp_path / run), project(compile_file(os.path.join(EXAMPLES, "routed.yml")).expanded,
                                                     python="/usr/bin/python3"))
    for dirpath, _, files in os.walk(tmp_path / "one"):
        for f in files:
            a = os.path.join(dirpath, f)
            b = a.replace(str(tmp_path / "one"), str(tmp_path / "two"))
            assert open(a).read() == open(b).read()


def test_routed_every_host_has_a_route_to_every_lan():
    e = compile_file(os.path.join(EXAMPLES, "routed.yml")).expanded
    for host in ("h1", "h2", "h3", "h4"):
        assert [r["dst"] for r in e["nodes"][host]["routes"]] == ["0.0.0.0/0"]
    # every host pings the 3 other hosts and both routers' addresses on its path
    targets = {c["from"]: {t["node"] for t in c["targets"]} for c in e["checks"]}
    assert targets["h1"] == {"h2", "h3", "h4", "r1", "r2"}


def test_all_problems_of_a_phase_are_reported_together(tmp_path):
    f = tmp_path / "many.yml"
    f.write_text("name: many\nnodes: {a: {}, b: {}}\nlinks:\n  - [a, x]\n  - [y, b]\n  - [a, z]\n")
    with pytest.raises(InputError) as exc:
        compile_file(str(f))
    assert [p.line for p in exc.value.problems] == [4, 5, 6]
    assert all("unknown node" in p.message for p in exc.value.problems)


def test_pool_allocation_skips_explicit_subnets(tmp_path):
    f = tmp_path / "p.yml"
    f.write_text(yaml.safe_dump({"name": "p", "nodes": {"a": {}, "b": {}, "c": {}},
                                 "bridges": {"l1": {"subnet": "172.16.0.0/24"}, "l2": {}},
                                 "links": [["a", "l1"], ["b", "l2"], ["c", "l2"]]}))
    e = compile_file(str(f)).expanded
    assert e["bridges"]["l2"]["subnet"] == "172.16.1.0/24"
    assert e["nodes"]["b"]["interfaces"][0]["address"] == "172.16.1.1/24"
