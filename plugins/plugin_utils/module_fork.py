# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Run a topo.lab module on a local build host in a fork of Ansible's worker.

Every topo.lab module has an action plugin of its name (``plugins/action/<module>.py``, so that
a task's ``resolved_action`` stays the module's name) which is this ``ActionModule``. Where
the module would run on this very machine, in the same Python as Ansible, the module runs in
a child forked from the task's worker process instead of a new Python process fed an
AnsiballZ payload; everywhere else (a remote build host, become, another interpreter, async,
delegation, ``ANSIBLE_KEEP_REMOTE_FILES``) the module runs exactly as Ansible's ``normal``
action runs it.

Why (issue 16, "a smaller fixed cost"): on this project's 2-core build host, for the lab
module of a 50-node lab, AnsiballZ spends 0.41-0.50 s building the payload (parsing 73 files
to find the module_utils a module needs, then zipping them; Ansible caches the payload only
for the run) and the new Python process 0.3 s more compiling those files again from the zip,
which holds no bytecode, before the module's first line: two thirds of a second per module
call, about a fifth of a 50-node build. The fork starts with Ansible already imported and
imports the module through Ansible's own collection loader, so the module runs the code
AnsiballZ would have shipped, with the same arguments (``_update_module_args``), through the
same function AnsiballZ's wrapper calls (``ansible.module_utils._internal._ansiballz._loader.
run_module``), and its output is parsed by Ansible's own ``_execute_module``: check mode,
diff, no_log, warnings, failures and tracebacks behave as with AnsiballZ.

The module's process is a child of the worker named ``topo.<module>`` (``ps``, ``top``;
its command line stays the worker's): its stdin is /dev/null, its stdout and stderr
go to the worker through pipes, the task's ``environment`` is set in its ``os.environ``, the
exit handlers the worker registered are dropped (a module's own, such as AnsibleModule's
temporary directory removal, run) and it leaves by ``os._exit``. In it, Ansible's
module_utils are told they run in a module, not on the controller (``is_controller``, the
traceback setting), as in AnsiballZ's process.

This uses ansible-core's internals from 2.19 on (the loader above, ``_BuiltModule``); where
they are missing the module runs as with the ``normal`` action. A host or group variable
``topo_module_fork: false`` turns the fork off (the module then runs through AnsiballZ; for
debugging, ``ANSIBLE_KEEP_REMOTE_FILES=1`` does too); ``-vvv`` shows which way each module
ran.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import selectors
import signal
import sys

from ansible import constants as C
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

#: The collection whose modules this plugin runs (plugins/action/ names them one by one).
COLLECTION = "topo.lab"

#: What the forked module's result is encoded with: Ansible's default profile for modules
#: without METADATA (ansible-core 2.19 ``module_common._DEFAULT_LEGACY_METADATA``).
PROFILE = "legacy"


@functools.cache
def _internals():
    """Ansible's internals the fork needs, or None where this ansible-core lacks them
    (looked up once per process)."""
    try:
        from ansible.executor.module_common import _BuiltModule
        from ansible.module_utils import _internal
        from ansible.module_utils._internal import _traceback
        from ansible.module_utils._internal._ansiballz import _loader
        from ansible.module_utils.common.json import Direction, get_module_encoder
    except ImportError:
        return None
    if not hasattr(_internal, "is_controller") or not hasattr(_traceback, "_is_module_traceback_enabled"):
        return None
    return {"BuiltModule": _BuiltModule, "internal": _internal, "traceback": _traceback, "loader": _loader,
            "encoder": get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)}


class ActionModule(ActionBase):
    """The ``normal`` action, with the module forked from the worker where it runs locally."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        """Run the task's module (see the module docstring); returns its result dict."""
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        why_not = "async" if wrap_async else self._why_not_fork(task_vars)
        if why_not is None:
            display.vvv("topo.lab: running %s in a fork of the worker" % self._task.action, host=self._host_name())
            # _execute_module stays Ansible's (arguments, environment, parsing the result);
            # only building the payload and starting the process are replaced.
            self._configure_module = self._configure_fork
            self._low_level_execute_command = self._execute_fork
        else:
            display.vvv("topo.lab: running %s through AnsiballZ (%s)" % (self._task.action, why_not),
                        host=self._host_name())
        try:
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        finally:
            self.__dict__.pop("_configure_module", None)
            self.__dict__.pop("_low_level_execute_command", None)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _host_name(self) -> str:
        return getattr(self._play_context, "remote_addr", None) or "localhost"

    def _why_not_fork(self, task_vars: dict) -> str | None:
        """None when the module may run in a fork of this worker, else why not (for -vvv)."""
        if not boolean(task_vars.get("topo_module_fork", True), strict=False):
            return "topo_module_fork is false"
        if getattr(self._connection, "transport", None) != "local":
            return "not a local connection"
        if self._task.delegate_to:
            return "delegated"
        if self._play_context.become:
            return "become"
        if C.DEFAULT_KEEP_REMOTE_FILES:
            return "ANSIBLE_KEEP_REMOTE_FILES"
        if C.config.get_config_value("_MODULE_METADATA"):
            return "module metadata is on"
        if not self._is_pipelining_enabled("new"):
            return "pipelining is off"
        interpreter = task_vars.get("ansible_python_interpreter")
        if interpreter is not None:
            interpreter = self._templar.template(interpreter)
        # the same path, not the same file: a virtualenv's python resolves to its base
        # interpreter, which lacks the virtualenv's packages
        if not interpreter or os.path.abspath(str(interpreter)) != os.path.abspath(sys.executable):
            return "ansible_python_interpreter is not this Python (%s)" % sys.executable
        if _internals() is None:
            return "this ansible-core lacks the internals the fork uses"
        return None

    def _configure_fork(self, module_name, module_args, task_vars):
        """Stands in for ActionBase._configure_module: the module's import name and arguments
        instead of an AnsiballZ payload. Raises AnsibleError as Ansible does for a module that
        is not found."""
        from ansible.errors import AnsibleError

        found = self._shared_loader_obj.module_loader.find_plugin_with_context(
            module_name, ".py", collection_list=self._task.collections)
        if not found.resolved or found.plugin_resolved_collection != COLLECTION:
            raise AnsibleError("The module %s was not found in configured module paths" % module_name)
        leaf = os.path.splitext(os.path.basename(found.plugin_resolved_path))[0]
        self._fork_module = "ansible_collections.%s.plugins.modules.%s" % (COLLECTION, leaf)
        self._fork_comm = process_name(leaf)
        self._fork_params = json.dumps({"ANSIBLE_MODULE_ARGS": module_args},
                                       cls=_internals()["encoder"]).encode()
        bits = _internals()["BuiltModule"](b_module_data=b"", module_style="new",
                                                   shebang="#!" + sys.executable, serialization_profile=PROFILE)
        return bits, found.plugin_resolved_path

    def _execute_fork(self, cmd="", sudoable=True, in_data=None, **kwargs):
        """Stands in for ActionBase._low_level_execute_command: run the module in a child of
        this worker; returns what that method returns (rc, stdout, stderr and their lines)."""
        environment: dict = {}
        self._compute_environment_string(environment)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the module's process: never returns
            os.close(out_r)
            os.close(err_r)
            self._child(out_w, err_w, environment)
        os.close(out_w)
        os.close(err_w)
        stdout, stderr = _read_both(out_r, err_r)
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        out = stdout.decode(errors="surrogateescape")
        err = stderr.decode(errors="surrogateescape")
        return {"rc": rc, "stdout": out, "stdout_lines": out.splitlines(), "stderr": err,
                "stderr_lines": err.splitlines()}

    def _child(self, out_w: int, err_w: int, environment: dict) -> None:
        """Run the module in this (forked) process and leave with its exit code."""
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (devnull, out_w, err_w):
                os.close(fd)
            sys.stdin = open(0, closefd=False)
            sys.stdout = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
            # the signal dispositions a new Python process starts with (the worker set its own)
            for sig, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL),
                                 (signal.SIGCHLD, signal.SIG_DFL), (signal.SIGPIPE, signal.SIG_IGN),
                                 (signal.SIGXFSZ, signal.SIG_IGN)):
                signal.signal(sig, handler)
            # named after its module in ps and top (its command line stays the worker's)
            with open("/proc/self/comm", "w") as f:
                f.write(self._fork_comm)
            # the worker's exit handlers are the worker's: it runs them itself
            atexit._clear()
            os.environ.update({str(k): str(v) for k, v in environment.items()})
            internals = _internals()
            internals["internal"].is_controller = False
            internals["traceback"]._is_traceback_enabled = internals["traceback"]._is_module_traceback_enabled
            try:
                internals["loader"].run_module(json_params=self._fork_params, profile=PROFILE,
                                               module_fqn=self._fork_module, modlib_path="", extensions={})
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            atexit._run_exitfuncs()
        except BaseException:  # the module's process must never return into the worker
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)


def process_name(module: str) -> str:
    """The name (``/proc/PID/comm``, at most 15 bytes) of the process that runs ``module``
    (its short name) in a fork: ``topo.<module>``, e.g. ``topo.ping``."""
    return ("topo." + module)[:15]


def _read_both(out_fd: int, err_fd: int) -> tuple[bytes, bytes]:
    """Everything written to two pipes until both close, read together so that neither
    fills up while the other is waited for."""
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])
