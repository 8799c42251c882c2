"""mtu_check: a tunnel narrower than the frames of the segment it carries is refused, or
(``warn``) built anyway with a warning that reaches the CLI and report.md."""

import os
import subprocess
import sys

import pytest

from topo import report
from topo.errors import InputError
from topo.pipeline import compile_file

HERE = os.path.dirname(os.path.abspath(__file__))
#: the error case's lab without its second (unroutable) tunnel: only the MTU mismatch is left
LAB = open(os.path.join(HERE, "errors", "tunnel-mtu.yml")).read().replace("  - {type: gre, endpoints: [c, d]}\n",
                                                                           "")
WARNING = ("tunnels[0]: the tunnel's MTU is 1450 but segment lan1 carries frames of up to 1500 bytes: "
           "frames of 1451 bytes and more are dropped (built anyway: mtu_check: warn)")


def lab(tmp_path, text):
    path = tmp_path / "mtu.yml"
    path.write_text(text)
    return str(path)


def test_strict_is_the_default_and_names_the_way_out(tmp_path):
    with pytest.raises(InputError) as exc:
        compile_file(lab(tmp_path, LAB))
    assert any("or build it anyway with mtu_check: warn" in str(p) for p in exc.value.problems)


@pytest.mark.parametrize("how", ["lab", "tunnel"])
def test_warn_builds_it_and_says_what_will_not_pass(tmp_path, how):
    """Per lab (``mtu_check: warn``) or per tunnel; the other tunnel of the lab has no mismatch."""
    text = (LAB.replace("routing: auto", "routing: auto\nmtu_check: warn") if how == "lab" else
            LAB.replace("{type: vxlan, vni: 1,", "{type: vxlan, vni: 1, mtu_check: warn,"))
    path = lab(tmp_path, text)
    expanded = compile_file(path).expanded
    line = 19 if how == "lab" else 18
    assert expanded["warnings"] == [f"{path}:{line}: {WARNING}"]
    assert [t["mtu"] for t in expanded["tunnels"][:2]] == [1450, 1450]


def test_the_warning_reaches_the_cli_and_report(tmp_path):
    path = lab(tmp_path, LAB.replace("routing: auto", "routing: auto\nmtu_check: warn"))
    r = subprocess.run([sys.executable, "-m", "topo", "validate", path], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(HERE))))
    assert r.returncode == 0, r.stderr
    assert f"warning: {path}:19: {WARNING}" in r.stderr.splitlines()
    expanded = compile_file(path).expanded
    text = report.markdown("mtu", path, "now", [], {"total": 0, "passed": 0, "failed": 0}, {}, str(tmp_path),
                           expanded=expanded)
    assert f"- {path}:19: {WARNING}" in text.splitlines()


def test_a_csv_lab_takes_it_in_its_header(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("# topo: name=m mtu_check=maybe\nnode,peer\na,b\n")
    with pytest.raises(InputError) as exc:
        compile_file(str(path))
    assert "mtu_check" in str(exc.value.problems)
    path.write_text("# topo: name=m mtu_check=warn\nnode,peer\na,b\n")
    assert "warnings" not in compile_file(str(path)).expanded  # nothing to warn about
