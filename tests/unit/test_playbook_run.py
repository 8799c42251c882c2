"""topo.runner.PlaybookRun and topo.ansible_playbook: ansible-playbook started before its
inventory exists, waiting at its gate, run, cancelled, or ended with the topo that started
it; exit codes and logs through its fast exit. Real ansible-playbook runs of small
playbooks on a yaml inventory of one local host; no root (but the use-case test)."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from topo import labdir, runner, usecases
from topo.errors import InputError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


@pytest.fixture
def playbooks(tmp_path, monkeypatch):
    """TOPO_HOME in tmp_path; playbook NAME is tmp_path/NAME.yml; returns a writer of one
    play of the given tasks (YAML text) on every host, and the inventory directory."""
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(labdir, "playbook", lambda name: str(tmp_path / f"{name}.yml"))
    inventory = tmp_path / "inventory"

    def write(name: str, tasks: str) -> str:
        (tmp_path / f"{name}.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                                              + textwrap.indent(textwrap.dedent(tasks), "    "))
        return str(inventory)
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    pr-node: {ansible_connection: local}\n")
    return write


def processes_with(text: str) -> list[int]:
    """PIDs of the processes whose command line holds ``text``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(entry))
            except OSError:
                continue
    return out


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_run_started_early_waits_at_its_gate_then_runs(playbooks):
    """Started, ansible-playbook imports and waits: after 1.5 s it still lives and has run
    no task (no event came); given the inventory, it runs the play, with the stdout of the
    whole run in the log (written before its fast exit). A second run() is refused."""
    inventory = playbooks("noop", "- ansible.builtin.debug: {msg: early}\n")
    seen = []

    class Seen(runner.Progress):
        def task_started(self, name):
            seen.append(name)

    run = runner.PlaybookRun("pr-early", "noop")
    wait_for(lambda: processes_with(run._gate))
    time.sleep(1.5)
    assert processes_with(run._gate), "ansible-playbook should wait at its gate"
    assert not seen and not run.ran
    result = run.run(inventory, progress=Seen())
    assert result.ok and result.rc == 0, result.log
    assert seen == ["ansible.builtin.debug"]
    with open(result.log) as f:
        log = f.read()
    assert "msg: early" in log and "PLAY RECAP" in log and "pr-node" in log
    assert not processes_with(run._gate)
    with pytest.raises(RuntimeError):
        run.run(inventory)


def test_a_failing_play_keeps_ansible_playbooks_exit_code(playbooks):
    """The fast exit keeps ansible-playbook's exit code (2: a host failed) and the failure."""
    inventory = playbooks("fails", "- ansible.builtin.fail: {msg: on purpose}\n")
    result = runner.run_playbook("pr-fail", "fails", inventory=inventory)
    assert result.rc == 2 and not result.ok
    assert [(f.host, f.message) for f in result.failures] == [("pr-node", "on purpose")]


def test_a_cancelled_run_leaves_no_process_and_no_artifacts(playbooks):
    """cancel() while ansible-playbook still imports: it ends without running, its
    artifacts are removed; run() afterwards is refused."""
    inventory = playbooks("noop", "- ansible.builtin.debug: {msg: never}\n")
    run = runner.PlaybookRun("pr-cancel", "noop")
    wait_for(lambda: processes_with(run._gate))
    artifacts = os.path.dirname(run._gate)
    started = time.monotonic()
    run.cancel()
    assert time.monotonic() - started < 10
    assert not processes_with(run._gate) and not os.path.exists(artifacts)
    with pytest.raises(RuntimeError):
        run.run(inventory)
    run.cancel()  # again: nothing


def test_the_waiting_playbook_ends_when_topo_dies(playbooks, tmp_path):
    """topo killed (no cancel, no exit handler) before it opened the gate: ansible-playbook
    notices its parent is gone and ends (exit 1), running nothing."""
    script = textwrap.dedent(f"""
        import os, sys, time
        from topo import labdir, runner
        labdir.playbook = lambda name: {str(tmp_path)!r} + "/" + name + ".yml"
        run = runner.PlaybookRun("pr-orphan", "noop")
        print(run._gate, flush=True)
        time.sleep(0.3)
        os.kill(os.getpid(), 9)
    """)
    playbooks("noop", "- ansible.builtin.debug: {msg: never}\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == -9, proc.stderr
    gate = proc.stdout.strip()
    assert gate.endswith("gate.json")
    wait_for(lambda: not processes_with(gate), timeout=15)


def test_a_refused_file_leaves_no_lab_directory_and_no_process(tmp_path, monkeypatch):
    """topo apply of a file the model refuses, for a lab never applied: the run started
    early (as root) is cancelled and the lab directory made for it removed; a lab that was
    applied keeps its directory."""
    if os.geteuid() != 0:
        pytest.skip("the early start needs root (topo's lab directories are root's)")
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    bad = tmp_path / "prbad.yml"
    bad.write_text("name: prbad\nnodes: [a, b]\nlinks:\n  - [a, c]\n")
    before = set(processes_with("ansible_playbook.py"))
    with pytest.raises(InputError):
        usecases.apply(str(bad))
    assert not os.path.exists(labdir.lab_dir("prbad"))
    assert set(processes_with("ansible_playbook.py")) <= before
    labdir.prepare("prbad")
    labdir.write_state("prbad", source=str(bad))
    with pytest.raises(InputError):
        usecases.apply(str(bad))
    assert labdir.read_state("prbad")["source"] == str(bad)
