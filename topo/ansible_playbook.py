"""ansible-playbook as topo's own runs start it: ``python -P .../topo/ansible_playbook.py GATE``.

It runs ansible-playbook's own entry point (``ansible.cli.playbook.main``), so the run is
Ansible's, with two differences in how the process starts and ends (measured on this
project's 2-core build host, a new 50-node star):

- **Started before its arguments are known.** It imports ansible-playbook's code first
  (0.6 s: most of ansible-playbook's start-up before it reads an inventory), then waits for
  GATE, a JSON file ``{"argv": [...]}`` that topo writes once the lab's inventory is
  written: ``argv`` is ansible-playbook's command line without the program name, or null
  for "do not run" (exit 0 at once). So topo's front end (loading, validating and expanding
  the file, writing the inventory) runs while this process imports, on the other core (see
  :class:`topo.runner.PlaybookRun`). GATE is written whole (renamed into place); it is
  looked for every 2 ms. Should topo end before writing it (its parent process changes),
  this process ends too (exit 1).
- **Ends without Python's teardown.** After ``main`` it runs the exit handlers (Ansible's,
  logging's, multiprocessing's: :func:`atexit._run_exitfuncs`), flushes stdout and stderr
  and leaves with :func:`os._exit` and ansible-playbook's exit code. Freeing the objects of
  the run and of Ansible's modules took 0.18 s after every run, with nothing left to write;
  Ansible starts no thread that is not a daemon (its results thread is one).

The environment is set when the process starts (Ansible reads its configuration while it
imports), so ANSIBLE_CONFIG and the rest cannot wait for GATE. ``ansible-playbook`` by hand
(the lab directory's site.yml) runs the ``ansible-playbook`` command as always.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

#: How often GATE is looked for, seconds.
POLL = 0.002


def wait_for_gate(gate: str, parent: int) -> list[str] | None:
    """``argv`` of GATE once it exists (a list of str, or None); ends the process with
    exit code 1 when the parent process ``parent`` is gone first."""
    while True:
        try:
            with open(gate) as f:
                return json.load(f)["argv"]
        except FileNotFoundError:
            pass
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(POLL)


def _exit_code(exc: SystemExit) -> int:
    """The process exit code ``sys.exit(code)`` asks for, as Python computes it."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main() -> None:
    """Import ansible-playbook, wait for GATE (``sys.argv[1]``), run it, exit fast."""
    gate, parent = sys.argv[1], os.getppid()
    from ansible.cli.playbook import main as playbook_main

    argv = wait_for_gate(gate, parent)
    if argv is None:
        os._exit(0)
    # the console script's argv[0]: ansible-playbook installed beside this Python
    sys.argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), *argv]
    try:
        playbook_main(list(sys.argv))
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
