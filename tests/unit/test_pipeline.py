"""topo.pipeline's record of the last expansion (compiled.json): a sticky compile of an
unchanged file takes it, anything the expansion is made from that changed makes it expand
again, and the inventory is written again only when it would differ or was touched."""

import glob
import json
import os
import shutil

import pytest

from topo import pipeline
from topo.expand import previous_allocation

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def _examples():
    out = []
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "*.*"))):
        if path.endswith("clusters-checks.yml"):  # the checks of clusters.csv, not a topology
            continue
        out.append(path)
    return out


@pytest.mark.parametrize("path", _examples(), ids=os.path.basename)
def test_an_unchanged_file_expands_to_the_same_lab_with_its_own_allocation(path):
    """What the record relies on (it is keyed by the allocation written with it): expanding
    again with the allocation of an expansion gives that expansion."""
    first = pipeline.compile_file(path).expanded
    allocation = json.loads(json.dumps(previous_allocation(first), sort_keys=True))
    from topo.expand import expand
    from topo.load import load
    from topo.model import resolve
    again = expand(resolve(load(path)), allocation)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    return tmp_path


def _copy(home, *names):
    for name in names:
        shutil.copy(os.path.join(EXAMPLES, name), home / name)
    return str(home / names[0])


def test_the_record_is_taken_for_an_unchanged_file_and_dropped_when_it_changes(home):
    path = _copy(home, "routed.yml")
    first = pipeline.compile_file(path, sticky=True)
    assert first.model is not None and first.lab == "routed"
    pipeline.write_inventory(first)
    again = pipeline.compile_file(path, sticky=True)
    assert again.model is None, "an unchanged file must not be expanded again"
    assert again.expanded == first.expanded and again.lab == "routed"
    assert pipeline.compile_file(path).model is not None, "only a sticky compile takes the record"

    with open(path, "a") as f:
        f.write("\n# an edit\n")
    edited = pipeline.compile_file(path, sticky=True)
    assert edited.model is not None and edited.expanded == first.expanded
    assert pipeline.compile_file(str(home / "." / "routed.yml"), sticky=True).model is not None, \
        "another spelling of the path: its problems and warnings would name the other one"


def test_other_inputs_drop_the_record(home, monkeypatch):
    path = _copy(home, "routed.yml")
    pipeline.write_inventory(pipeline.compile_file(path, sticky=True))
    assert pipeline.compile_file(path, sticky=True).model is None

    other = {"localhost": {"ansible_connection": "local", "topo_underlay_mtu": 9000}}
    assert pipeline.compile_file(path, sticky=True, hosts=other).model is not None, "other build hosts"

    alloc = os.path.join(os.environ["TOPO_HOME"], "labs", "routed", pipeline.ALLOCATION)
    kept = open(alloc).read()
    with open(alloc, "w") as f:
        f.write("{}")
    assert pipeline.compile_file(path, sticky=True).model is not None, "another allocation"
    with open(alloc, "w") as f:
        f.write(kept)
    assert pipeline.compile_file(path, sticky=True).model is None

    monkeypatch.setattr(pipeline, "_code", lambda: "other code")
    assert pipeline.compile_file(path, sticky=True).model is not None, "another topo"


def test_a_csv_s_checks_file_is_an_input(home):
    path = _copy(home, "clusters.csv", "clusters-checks.yml")
    first = pipeline.compile_file(path, sticky=True)
    pipeline.write_inventory(first)
    assert pipeline.compile_file(path, sticky=True).model is None
    checks = home / "clusters-checks.yml"
    checks.write_text(checks.read_text().replace("port: 5000", "port: 5001", 1))
    edited = pipeline.compile_file(path, sticky=True)
    assert edited.model is not None and edited.expanded != first.expanded


def test_the_inventory_is_written_again_only_when_it_would_differ_or_was_touched(home):
    path = _copy(home, "routed.yml")
    inv = pipeline.write_inventory(pipeline.compile_file(path, sticky=True))
    group_vars = os.path.join(inv, "group_vars", "topo_hosts.json")
    before = os.stat(group_vars).st_mtime_ns
    assert pipeline.write_inventory(pipeline.compile_file(path, sticky=True)) == inv
    assert os.stat(group_vars).st_mtime_ns == before, "same expansion, same build hosts: not written again"

    with open(group_vars, "w") as f:
        f.write("{}")  # edited by hand
    pipeline.write_inventory(pipeline.compile_file(path, sticky=True))
    assert json.load(open(group_vars))["topo_lab"] == "routed"

    os.unlink(os.path.join(os.path.dirname(inv), "expanded.yml"))
    pipeline.write_inventory(pipeline.compile_file(path, sticky=True))
    assert os.path.exists(os.path.join(os.path.dirname(inv), "expanded.yml"))


def _lab_files(directory: str) -> dict[str, bytes]:
    """``{relative path: bytes}`` of a lab directory's inventory, expanded.yml and
    allocation.json; the record's JSON without its file times."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, directory)
            if rel == pipeline.RECORD:
                record = json.load(open(full))
                record.pop("stats")
                out[rel] = json.dumps(record, sort_keys=True).encode()
            elif rel.startswith("inventory") or rel in ("expanded.yml", pipeline.ALLOCATION):
                out[rel] = open(full, "rb").read()
    return out


def test_inventory_written_writes_what_write_inventory_writes_the_rest_after_start(home, monkeypatch):
    """The context writes the inventory and allocation.json before it yields; expanded.yml
    and the record only once started (or when the context ends), and then the same bytes as
    write_inventory, and a record the next compile takes."""
    path = _copy(home, "routed.yml")
    monkeypatch.setenv("TOPO_HOME", str(home / "one"))
    pipeline.write_inventory(pipeline.compile_file(path, sticky=True))
    expected = _lab_files(str(home / "one" / "labs" / "routed"))
    monkeypatch.setenv("TOPO_HOME", str(home / "two"))
    lab = home / "two" / "labs" / "routed"
    with pipeline.inventory_written(pipeline.compile_file(path, sticky=True)) as (inv, start):
        assert inv == str(lab / "inventory") and os.path.exists(lab / "inventory" / "hosts.yml")
        assert os.path.exists(lab / pipeline.ALLOCATION)
        assert not os.path.exists(lab / "expanded.yml") and not os.path.exists(lab / pipeline.RECORD)
        start()
        start()  # a second call does nothing
    assert set(expected) >= {"expanded.yml", pipeline.RECORD}
    assert _lab_files(str(lab)) == expected
    assert pipeline.compile_file(path, sticky=True).model is None, "the record written is taken"
    with pipeline.inventory_written(pipeline.compile_file(path, sticky=True)) as (again, start):
        start()  # nothing to write: the inventory is unchanged
    assert again == inv and _lab_files(str(lab)) == expected


def test_inventory_written_finishes_its_files_when_the_body_raises(home):
    """A run that fails (or Ctrl-C) inside the context: expanded.yml and the record are still
    written before the error goes on, and they are written again for an edited file."""
    path = _copy(home, "routed.yml")
    lab = home / "home" / "labs" / "routed"
    with pytest.raises(KeyboardInterrupt):
        with pipeline.inventory_written(pipeline.compile_file(path, sticky=True)):
            raise KeyboardInterrupt
    assert os.path.exists(lab / "expanded.yml") and os.path.exists(lab / pipeline.RECORD)
    before = (lab / "expanded.yml").read_text()
    text = open(path).read()
    with open(path, "w") as f:
        f.write(text.replace("name: routed", "name: routed\n# edited", 1))
    with pipeline.inventory_written(pipeline.compile_file(path, sticky=True)):
        pass
    assert json.load(open(lab / pipeline.RECORD))["sources"][path] == pipeline._file_digest(path)
    assert (lab / "expanded.yml").read_text() == before, "a comment changes nothing of the lab"
