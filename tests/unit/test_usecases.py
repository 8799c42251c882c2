"""topo.usecases without root: result objects' JSON (the keys ``--json`` users parse), the
requirement checks, and validate."""

import os

import pytest

from ansible_collections.topo.lab.plugins.module_utils.api import STEP_TYPES
from topo import usecases
from topo.errors import EnvironmentProblem, InputError, UsageError

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def test_apply_json_keys_with_and_without_checks():
    r = usecases.ApplyResult("demo", "demo.yml", [{"resource": "netns", "action": "create", "name": "demo-h1"}],
                             1.23456, "/l/log", "/l", "/l/inventory")
    assert r.to_json() == {"lab": "demo", "file": "demo.yml", "changed": 1, "changes": r.changes, "seconds": 1.23,
                           "log": "/l/log", "lab_dir": "/l", "inventory": "/l/inventory", "warnings": []}
    assert not r.failed
    r.checks, r.check_results, r.reports = usecases.CheckSummary(2, 1, 1), [{"ok": True}, {"ok": False}], {"json": "x"}
    doc = r.to_json()
    assert list(doc) == ["lab", "file", "changed", "changes", "seconds", "log", "lab_dir", "inventory", "warnings",
                         "checks", "check_results", "reports"]
    assert doc["checks"] == {"total": 2, "passed": 1, "failed": 1} and r.failed


def test_other_results_json_keys():
    assert list(usecases.PlanResult("l", "f", []).to_json()) == ["lab", "file", "changes", "count", "warnings"]
    v = usecases.VerifyResult("l", "f", usecases.CheckSummary(0, 0, 0), [], "log", {})
    assert list(v.to_json()) == ["lab", "checks", "check_results", "log", "reports"] and not v.failed
    assert list(usecases.ShowResult("l", []).to_json()) == ["lab", "nodes"]
    assert usecases.ExecResult("h1", ["true"], 0, "", "").to_json() == {
        "node": "h1", "argv": ["true"], "rc": 0, "stdout": "", "stderr": ""}
    assert usecases.CaptureResult("l", "r1:eth0", "/p", [{}, {}]).to_json() == {
        "lab": "l", "on": "r1:eth0", "path": "/p", "packets": 2, "rows": [{}, {}]}
    d = usecases.DestroyResult("l", {"netns": ["l-h1"], "container": ["l-d1"], "bridge": ["br0"]}, 2.345, ["w"])
    assert d.to_json() == {"lab": "l", "removed": ["l-h1"], "containers": ["l-d1"], "seconds": 2.35,
                           "warnings": ["w"]}
    assert usecases.DestroyResult("l").to_json() == {"lab": "l", "removed": [], "containers": [], "seconds": 0.0,
                                                     "warnings": []}


def test_every_check_type_has_its_program():
    programs = usecases.check_programs()
    assert set(programs) == {"ping", "capture", *STEP_TYPES}
    assert programs["iperf3"] == [("iperf3", "iperf3")] and programs["unicast"] == [("python3", "python3")]
    assert programs["ping"] == []  # topo.lab.ping is its own prober
    assert programs["capture"] == [("tcpdump", "tcpdump"), ("ping", "iputils-ping")]  # a ping is its traffic


def test_missing_program_is_an_environment_problem(monkeypatch):
    expanded = {"checks": [{"type": "ping"}, {"type": "iperf3", "capture": {"node": "r1"}}]}
    monkeypatch.setattr(usecases.shutil, "which", lambda p: None if p == "tcpdump" else f"/usr/bin/{p}")
    with pytest.raises(EnvironmentProblem, match="the lab's capture checks need tcpdump, which is missing; "
                                                 r"apt-get install tcpdump \(or apply with --no-verify\)"):
        usecases.require_programs(expanded)
    monkeypatch.setattr(usecases.shutil, "which", lambda p: f"/usr/bin/{p}")
    usecases.require_programs(expanded)
    monkeypatch.setattr(usecases.shutil, "which", lambda p: None if p == "ping" else f"/usr/bin/{p}")
    usecases.require_programs(expanded)  # ping checks and an iperf3 capture need no ping program
    with pytest.raises(EnvironmentProblem, match="the lab's capture checks need ping"):
        usecases.require_programs({"checks": [{"type": "capture"}]})


def test_a_lab_without_docker_nodes_needs_no_docker():
    usecases.require_docker({"nodes": {"h1": {"kind": "netns"}}})


def test_docker_nodes_on_a_remote_host_need_no_local_dockerd(monkeypatch):
    # a lab over this machine and a remote host: only the docker nodes placed here ask the
    # local dockerd (the remote host's is asked over SSH, _require_remote_docker)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    table = {"here": {"ansible_connection": "local"}, "far": {"ansible_host": "192.0.2.7"}}
    node = {"kind": "docker", "container": {"image": "topo-node:latest"}}
    usecases.require_docker({"nodes": {"d1": dict(node, host="far"), "h1": {"kind": "netns", "host": "here"}}},
                            table)
    with pytest.raises(EnvironmentProblem, match="the lab has 1 docker nodes \\(d2\\)"):
        usecases.require_docker({"nodes": {"d1": dict(node, host="far"), "d2": dict(node, host="here")}}, table)


def test_validate():
    r = usecases.validate(os.path.join(EXAMPLES, "routed.yml"))
    assert r.lab == "routed" and set(r.expanded["nodes"]) and r.to_json()["expanded"] is r.expanded
    with pytest.raises(InputError):
        usecases.validate(os.path.join(os.path.dirname(EXAMPLES), "tests", "unit", "errors", "overlap.yml"))


def test_destroy_targets():
    with pytest.raises(UsageError, match="name what to destroy"):
        usecases.labs_to_destroy()
    with pytest.raises(UsageError, match="name what to destroy"):
        usecases.labs_to_destroy(lab="a", all_labs=True)
    with pytest.raises(UsageError, match="'a b' is not a lab name"):
        usecases.labs_to_destroy(lab="a b")
    assert usecases.labs_to_destroy(lab="demo") == ["demo"]
    assert usecases.labs_to_destroy(file=os.path.join(EXAMPLES, "routed.yml")) == ["routed"]
    assert usecases.labs_to_destroy(file=os.path.join(EXAMPLES, "clusters.csv")) == ["clusters"]


@pytest.mark.parametrize("name", ["a", "lab-1_x", "A" * 24, "A" * 25, "1lab", "a b", "-a", "a.b", "ab\n", "",
                                  "ä", 5, None, ["a"]])
def test_destroy_lab_name_agrees_with_the_model(tmp_path, name):
    """lab_name checks a name without the model (destroy's start-up); it accepts exactly the
    names the model's LabName accepts."""
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from topo.model import LabName
    try:
        TypeAdapter(LabName).validate_python(name)
        valid = True
    except ValidationError:
        valid = False
    f = tmp_path / "lab.yml"
    f.write_text(yaml.safe_dump({"name": name, "nodes": ["h1"]}, default_flow_style=True))  # one line
    if valid:
        assert usecases.lab_name(str(f)) == name
    else:
        with pytest.raises(InputError) as exc:
            usecases.lab_name(str(f))
        assert [str(p) for p in exc.value.problems] == [f"{f}:1: name: {name!r} is not a lab name (letters, digits, "
                                                        "- and _, starting with a letter, at most 24 characters)"]


def test_destroy_reads_only_the_labs_name(tmp_path):
    """A topology that no longer validates (or would take long to expand) still names its lab
    for destroy; a bad name is refused with its line."""
    broken = tmp_path / "broken.yml"
    broken.write_text("name: gone\nnodes: [h1]\nlinks:\n  - endpoints: [h1, h9]\n")
    with pytest.raises(InputError):
        usecases.validate(str(broken))
    assert usecases.labs_to_destroy(file=str(broken)) == ["gone"]
    (tmp_path / "unnamed.yml").write_text("nodes: [h1]\n")
    assert usecases.labs_to_destroy(file=str(tmp_path / "unnamed.yml")) == ["unnamed"]
    bad = tmp_path / "bad.yml"
    bad.write_text("nodes: [h1]\nname: 'a b'\n")
    with pytest.raises(InputError) as exc:
        usecases.labs_to_destroy(file=str(bad))
    assert [str(p) for p in exc.value.problems] == [
        f"{bad}:2: name: 'a b' is not a lab name (letters, digits, - and _, starting with a letter, at most 24 "
        "characters)"]


def test_expanded_yml_is_dumped_again_only_when_the_lab_changed(tmp_path, monkeypatch):
    """write_inventory writes expanded.yml (a digest line, then the YAML dump); a second
    write of the same lab leaves the file as it is, a changed lab rewrites it."""
    import yaml

    from tests.conftest import ROOT
    from topo import inventory
    from topo.pipeline import compile_file, write_inventory

    monkeypatch.setenv("TOPO_HOME", str(tmp_path))
    compiled = compile_file(f"{ROOT}/examples/routed.yml")
    path = os.path.join(write_inventory(compiled), "..", "expanded.yml")
    with open(path) as f:
        first = f.read()
    assert first.startswith("# written by topo; digest of what follows: sha256 ")
    assert yaml.safe_load(first) == yaml.safe_load(inventory.dump(compiled.expanded))
    assert first.split("\n", 1)[1] == inventory.dump(compiled.expanded)
    dumped = []
    real = inventory.dump
    monkeypatch.setattr(inventory, "dump", lambda data: (dumped.append(1) if data is compiled.expanded else None)
                        or real(data))
    write_inventory(compiled)
    assert dumped == []
    compiled.expanded["nodes"]["h1"]["interfaces"][0]["mtu"] = 1400
    write_inventory(compiled)
    assert dumped == [1]
    with open(path) as f:
        assert yaml.safe_load(f)["nodes"]["h1"]["interfaces"][0]["mtu"] == 1400


def test_the_checks_play_is_named_as_topo_apply_splits_site_yml():
    """topo apply runs site.yml once and decodes the play named usecases.CHECKS_PLAY (verify.yml's
    only play) as the checks; site.yml imports apply.yml, then verify.yml."""
    import yaml

    from topo import labdir
    root = labdir.collection_root()
    with open(os.path.join(root, "playbooks", "verify.yml")) as f:
        assert [play["name"] for play in yaml.safe_load(f)] == [usecases.CHECKS_PLAY]
    with open(os.path.join(root, "playbooks", "apply.yml")) as f:
        assert usecases.CHECKS_PLAY not in [play["name"] for play in yaml.safe_load(f)]
    with open(os.path.join(root, "playbooks", "site.yml")) as f:
        assert [play["import_playbook"] for play in yaml.safe_load(f)] == ["apply.yml", "verify.yml"]


def test_the_picture_is_drawn_once_started_or_when_the_reports_want_it(tmp_path, monkeypatch):
    """usecases._draw: nothing is drawn before start() (run_playbook's started), start() twice
    draws once, and the reports' drawing() starts it when the run never did; _both calls the
    two callbacks in order."""
    from topo import report

    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    c = usecases._compile(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "routed.yml"))
    calls = []
    monkeypatch.setattr(report, "draw", lambda expanded, directory: calls.append(directory) or (lambda: "lab.png"))
    start, drawing = usecases._draw(c)
    assert calls == []
    order = []
    usecases._both(lambda: order.append("files"), lambda: (order.append("draw"), start()))()
    start()
    assert order == ["files", "draw"] and len(calls) == 1 and drawing() == "lab.png" and len(calls) == 1
    _, later = usecases._draw(c)
    assert later() == "lab.png" and len(calls) == 2
