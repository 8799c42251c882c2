#!/usr/bin/env python3
"""Run a command inside a throw-away User-Mode Linux (UML) guest.

The guest kernel is Debian's ``user-mode-linux`` package (``/usr/bin/linux.uml``,
modules in ``/usr/lib/uml/modules/<ver>``), which has GRE, ip6_gre, gretap,
vxlan, 8021q, netem, veth, bridge ... as loadable modules, independent of the
host kernel.

Guest layout (see uml_init.sh):
  * ``/``        host root via hostfs (read-only) + tmpfs overlay => writable,
                 all writes are discarded at power-off
  * ``workdir``  host directory mounted read-write (hostfs) at the SAME path
  * ``/proc /sys /dev(devtmpfs+devpts+shm) /run(+/run/netns) /tmp`` fresh
  * ``/lib/modules/<ver>`` -> ``/usr/lib/uml/modules/<ver>`` so ``modprobe``
    and kernel module auto-loading work
  * only ``lo``; the guest has no NIC, so no traffic can leave it.

Usage::

    from tests.kernel.uml import run_in_uml, uml_available
    if (why := uml_available()) is not None:
        pytest.skip(why)
    rc, out = run_in_uml(["bash", "-c", "modprobe ip_gre && ip -d link"],
                         workdir=str(tmp_path), timeout=120)

CLI::

    python3 tests/kernel/uml.py [--workdir DIR] [--cwd DIR] [--timeout S] [--mem 1G]
                       [-e KEY=VAL ...] -- CMD ARGS...

Host requirements: ``apt-get install user-mode-linux kmod`` (kmod provides
/sbin/modprobe, which the guest uses through the shared hostfs root).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Callable, Optional, TextIO

HERE = os.path.dirname(os.path.abspath(__file__))
INIT_SCRIPT = os.path.join(HERE, "uml_init.sh")
UML_CANDIDATES = ("linux.uml", "linux-uml", "/usr/bin/linux.uml", "/usr/bin/linux")
#: A newer UML unpacked from Debian packages (fetch_uml.sh), with its own C library. Used
#: when present: bookworm's 6.1 UML cannot restore FPU state on hosts whose XSAVE area
#: outgrows its fixed buffer (AVX-512/AMX CPUs: "ptrace set fp regs failed, errno = 14").
#: fetch_uml.sh points the binary's ELF interpreter and run path at the root's own libc.
UML_ROOT = os.environ.get("TOPO_UML_ROOT", "/opt/topo-uml")


def _private_root() -> Optional[str]:
    root = UML_ROOT
    return root if os.access(os.path.join(root, "usr/bin/linux.uml"), os.X_OK) else None


def _modules_dir() -> str:
    root = _private_root()
    return os.path.join(root, "usr/lib/uml/modules") if root else "/usr/lib/uml/modules"


UML_MODULES = _modules_dir()

OUTPUT_NAME = "uml_output.log"     # combined stdout/stderr of the command
CONSOLE_NAME = "uml_console.log"   # UML kernel console (boot messages, init errors)

# characters we allow in paths that travel on the kernel command line / as
# hostfs mount options (no whitespace, no commas, no quotes)
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./+@-]*$")

# host env vars forwarded into the guest by default (then `env` is applied)
_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "PYENV_VERSION", "PYENV_ROOT",
                "VIRTUAL_ENV", "PYTHONPATH")


class UMLError(RuntimeError):
    """The guest could not be booted or did not report a result."""

    def __init__(self, msg: str, output: str = "", console: str = ""):
        super().__init__(msg)
        self.output = output
        self.console = console


class UMLTimeout(UMLError, TimeoutError):
    """The guest did not power off within ``timeout`` and was killed."""


class UMLUnavailable(UMLError):
    pass


# --------------------------------------------------------------------------
def find_uml_binary() -> Optional[str]:
    if _private_root():
        return os.path.join(_private_root(), "usr/bin/linux.uml")
    env = os.environ.get("UML_BINARY")
    if env:
        return env if os.access(env, os.X_OK) else None
    for c in UML_CANDIDATES:
        p = shutil.which(c) if not c.startswith("/") else (c if os.access(c, os.X_OK) else None)
        if p:
            # /usr/bin/linux could be anything; make sure it is UML
            if os.path.basename(p) == "linux" and not os.path.isdir(UML_MODULES):
                continue
            return p
    return None


def _uml_version(binary: str) -> Optional[str]:
    try:
        r = subprocess.run([binary, "--version"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = r.stdout.strip().splitlines()
    return v[0].strip() if v else None


def uml_available(boot_test: bool = False) -> Optional[str]:
    """None if UML is usable, else a human-readable reason.

    ``boot_test=True`` additionally boots a guest running ``true`` (~2-3 s),
    which catches hosts where ptrace/mmap restrictions break UML.
    """
    if sys.platform != "linux":
        return "UML needs a Linux host"
    binary = find_uml_binary()
    if binary is None:
        return "linux.uml not found (apt-get install user-mode-linux)"
    ver = _uml_version(binary)
    if not ver:
        return f"{binary} --version failed"
    if not os.path.isdir(os.path.join(UML_MODULES, ver)):
        return f"no UML modules for {ver} in {UML_MODULES}"
    if not any(os.access(p, os.X_OK) for p in ("/sbin/modprobe", "/usr/sbin/modprobe")):
        return "modprobe missing on host root (apt-get install kmod); the guest uses the host's /"
    if not os.access(INIT_SCRIPT, os.X_OK):
        return f"init script {INIT_SCRIPT} missing or not executable"
    if not os.path.exists("/bin/bash"):
        return "/bin/bash missing"
    if boot_test:
        try:
            with tempfile.TemporaryDirectory(prefix="uml-probe-") as d:
                rc, out = run_in_uml(["true"], workdir=d, timeout=60, mem="256M")
            if rc != 0:
                return f"UML boot test: 'true' returned {rc}: {out[-500:]}"
        except UMLError as e:
            return f"UML boot test failed: {e}; console tail: {e.console[-800:]}"
        except OSError as e:
            return f"UML boot test failed: {e}"
    return None


# --------------------------------------------------------------------------
def session_members(sid: int) -> list[int]:
    """PIDs of all host processes in session ``sid`` (we start UML with
    start_new_session=True, so sid == UML's PID).  UML's helper processes
    (one per guest address space, plus I/O helpers) stay in that session even
    if they get re-parented after the main process dies."""
    pids = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        # fields[0]=state [1]=ppid [2]=pgrp [3]=session
        try:
            if int(fields[3]) == sid and int(name) != me:
                pids.append(int(name))
        except (IndexError, ValueError):
            pass
    return pids


def _kill_tree(proc: subprocess.Popen, grace: float = 0.0) -> None:
    """SIGKILL the UML main process and every process of its session, by PID."""
    sid = proc.pid
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while True:
        members = session_members(sid)
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
        # Killed helpers whose parent (the UML main process) died first are
        # zombies until they are re-parented to PID 1 and reaped; wait for
        # that so callers can rely on "no UML process left" afterwards.
        left = session_members(sid)
        if not left and proc.poll() is not None:
            return
        if time.monotonic() > deadline:
            live = [p for p in left if not _is_zombie(p)]
            if live:
                raise UMLError(f"could not kill UML processes {live}")
            return      # only zombies owned by a non-reaping init remain
        time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        return s[s.rfind(b")") + 2:s.rfind(b")") + 3] in (b"Z", b"X")
    except OSError:
        return True


def _read(path: str) -> str:
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _guest_env(env: Optional[dict], workdir: str) -> dict:
    g = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    g.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    # make sure the sbin dirs are reachable (ip, modprobe, tc, bridge ...)
    parts = g["PATH"].split(":")
    for d in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
        if d not in parts:
            parts.append(d)
    g["PATH"] = ":".join(parts)
    g.setdefault("LANG", "C.UTF-8")
    g.update(HOME="/root", USER="root", LOGNAME="root", TERM="dumb",
             UML_GUEST="1", UML_WORKDIR=workdir)
    for k, v in (env or {}).items():
        if v is None:
            g.pop(k, None)
        else:
            g[k] = str(v)
    for k in g:
        if not k or "=" in k or "\0" in k or "\0" in g[k]:
            raise ValueError(f"bad environment entry {k!r}")
    return g



#: /dev/fd and /dev/std{in,out,err} for the guest, made per job (never tracked in git: links
#: into /proc/self make tools that follow them, like ``git ls-files | xargs wc``, hang).
DEVLINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
            "stderr": "/proc/self/fd/2"}


def _devlinks(directory: str) -> None:
    """Make :data:`DEVLINKS` in ``directory`` (uml_init.sh copies them into the guest's /dev)."""
    os.makedirs(directory)
    for name, target in DEVLINKS.items():
        os.symlink(target, os.path.join(directory, name))

def run_in_uml(argv: list[str], *, workdir: str, timeout: float = 300,
               mem: str = "1G", env: Optional[dict] = None,
               cwd: Optional[str] = None,
               modules: Optional[list[str]] = None,
               stream: Optional[TextIO] = None,
               timing: Optional[dict] = None,
               share: Optional[list[str]] = None,
               cancel: Optional[threading.Event] = None,
               on_start: Optional[Callable[[int], None]] = None) -> tuple[int, str]:
    """Boot a UML guest, run ``argv`` in it, power it off.

    workdir  host dir, created if needed, mounted read-write in the guest at
             the same path.  Receives ``uml_output.log`` (combined
             stdout+stderr of argv) and ``uml_console.log`` (kernel console).
    cwd      guest working directory (default: workdir); any host path works
             because the host root is visible (writable only via the overlay).
    timeout  wall-clock seconds for the whole boot+run+shutdown.  The command
             itself gets a guest-side ``timeout`` a bit shorter than this, so
             normally you get rc 124 plus the output; if the guest still does
             not power off, every UML host process is SIGKILLed by PID and
             UMLTimeout is raised.
    env      extra/override environment for argv (value None removes a key).
             Base env: PATH/LANG/PYENV_*/PYTHONPATH/VIRTUAL_ENV from the host,
             HOME=/root, TERM=dumb, UML_GUEST=1, UML_WORKDIR=workdir.
    modules  kernel modules loaded (modprobe -a) before argv runs; default
             ["ipv6"] (ipv6 is a module in this UML kernel).  Others
             (ip_gre, vxlan, sch_netem, ...) also auto-load on demand.
    stream   file object to which the output is copied live (CLI uses stdout).
    timing   if a dict is given it is filled with measurements.
    share    host directories mounted read-only in the guest at the same path
             (a checkout under /tmp or /run is otherwise hidden by the guest's
             fresh tmpfs there).
    cancel   an Event that, once set, stops the guest like a timeout (for a
             guest run from a background thread).
    on_start called with the UML main process's PID, which is also the session
             ID of every host process of this guest.

    Returns (exit_code, output).  Raises UMLUnavailable / UMLError / UMLTimeout.
    """
    if not argv:
        raise ValueError("argv must not be empty")
    t0 = time.time()
    binary = find_uml_binary()
    if binary is None:
        raise UMLUnavailable("linux.uml not found (apt-get install user-mode-linux)")
    ver = _uml_version_cached(binary)
    workdir = os.path.realpath(workdir)
    os.makedirs(workdir, exist_ok=True)
    cwd = os.path.realpath(cwd) if cwd else workdir
    shared = [os.path.realpath(p) for p in (share or [])]
    for what, p in [("workdir", workdir)] + [("share", p) for p in shared]:
        if not _SAFE_PATH.match(p):
            raise ValueError(f"{what} path {p!r} must match {_SAFE_PATH.pattern} "
                             "(it is passed on the kernel command line / as hostfs option)")
    if not re.fullmatch(r"\d+[kKmMgG]?", mem):
        raise ValueError(f"bad mem {mem!r}")

    jobdir = tempfile.mkdtemp(prefix=".uml-job-", dir=workdir)
    # init runs from the job dir: stage 2 re-executes it after pivot_root, when a checkout
    # under /tmp or /run would be hidden by the guest's fresh tmpfs, but the workdir is not.
    init_script = os.path.join(jobdir, "init.sh")
    shutil.copyfile(INIT_SCRIPT, init_script)
    os.chmod(init_script, 0o755)
    _devlinks(os.path.join(jobdir, "devlinks"))
    umldir = tempfile.mkdtemp(prefix="uml-")          # pid file + mconsole socket
    umid = "r" + uuid.uuid4().hex[:12]
    out_path = os.path.join(workdir, OUTPUT_NAME)
    console_path = os.path.join(workdir, CONSOLE_NAME)
    soft = max(1, int(timeout - min(15.0, timeout / 3)))

    with open(os.path.join(jobdir, "argv"), "wb") as f:
        for a in argv:
            a = os.fsencode(a)
            if b"\0" in a:
                raise ValueError("NUL in argv")
            f.write(a + b"\0")
    with open(os.path.join(jobdir, "env"), "wb") as f:
        for k, v in _guest_env(env, workdir).items():
            f.write(os.fsencode(f"{k}={v}") + b"\0")
    with open(os.path.join(jobdir, "cwd"), "w") as f:
        f.write(cwd + "\n")
    with open(os.path.join(jobdir, "fstab"), "w") as f:
        f.write(_fstab(workdir, shared))
    mods = ["ipv6"] if modules is None else list(modules)
    for m in mods:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", m):
            raise ValueError(f"bad module name {m!r}")
    mods = _loadable(ver, mods)

    cmd = [binary, f"mem={mem}", "root=/dev/root", "rootfstype=hostfs",
           "rootflags=/", "ro", f"init={init_script}",
           "con=null", "ssl=null", "con0=null,fd:1", "quiet",
           f"umid={umid}", f"uml_dir={umldir}",
           f"uml_job={jobdir}", f"uml_ver={ver}", f"uml_moddir={UML_MODULES}", f"uml_soft_timeout={soft}",
           f"uml_modules={','.join(mods)}"]
    if os.environ.get("UML_TRACE"):
        cmd.append("uml_trace=1")
    host_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    # UML backs guest RAM with a (sparse, unlinked) file in $TMPDIR, else
    # /dev/shm.  A small /dev/shm (docker: 64M) breaks mem=1G -> use /tmp then.
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize < _mem_bytes(mem) + (64 << 20):
            host_env["TMPDIR"] = "/tmp"
    except OSError:
        host_env["TMPDIR"] = "/tmp"

    guest_out = os.path.join(jobdir, "output")
    timed_out = False
    proc = None
    streamed = 0
    try:
        with open(console_path, "wb") as con:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=con,
                                    stderr=subprocess.STDOUT, env=host_env,
                                    cwd=umldir, start_new_session=True)
            if on_start is not None:
                on_start(proc.pid)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if stream is not None:
                    streamed = _pump(guest_out, streamed, stream)
                if time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
                    timed_out = True
                    break
    finally:
        if proc is not None:
            _kill_tree(proc)     # also sweeps helpers left after a clean exit
        shutil.rmtree(umldir, ignore_errors=True)

    if stream is not None:
        _pump(guest_out, streamed, stream)
    output = _read(guest_out)
    rc_txt = _read(os.path.join(jobdir, "rc")).strip()
    init_err = _read(os.path.join(jobdir, "init_error"))
    tim = _read(os.path.join(jobdir, "timing"))
    console = _read(console_path)
    # keep the output where the caller asked for it
    if os.path.exists(guest_out):
        os.replace(guest_out, out_path)
    else:
        with open(out_path, "w") as f:
            f.write(output)
    shutil.rmtree(jobdir, ignore_errors=True)

    if timing is not None:
        timing["wall"] = time.time() - t0
        for kv in tim.split():
            k, _, v = kv.partition("=")
            try:
                timing[k] = float(v)
            except ValueError:
                pass
        if "cmd_start_epoch" in timing:
            timing["host_to_cmd_start"] = timing["cmd_start_epoch"] - t0
        if "cmd_end_epoch" in timing:
            timing["cmd_runtime"] = timing["cmd_end_epoch"] - timing["cmd_start_epoch"]
            timing["shutdown"] = (t0 + timing["wall"]) - timing["cmd_end_epoch"]

    if timed_out:
        raise UMLTimeout(f"UML guest did not finish within {timeout}s; killed "
                         f"(rc file: {rc_txt or 'none'})", output, console)
    if not rc_txt.lstrip("-").isdigit():
        raise UMLError("UML guest produced no exit code"
                       + (f": {init_err.strip()}" if init_err else "")
                       + f" (linux.uml exit status {proc.returncode}); console: "
                       + _console_summary(console) + f" [{console_path}]",
                       output, console)
    return int(rc_txt), output


_NEWROOT = "/run/uml/root"   # must match NEW in uml_init.sh


def _fstab(workdir: str, shared: list[str] = ()) -> str:
    """Mounts done by one `mount -a -T` in stage 1 (order matters)."""
    r = _NEWROOT
    rows = [
        ("overlay", r, "overlay",
         "lowerdir=/,upperdir=/run/uml/ovl/upper,workdir=/run/uml/ovl/work"),
        ("proc", f"{r}/proc", "proc", "nosuid,nodev,noexec"),
        ("sysfs", f"{r}/sys", "sysfs", "nosuid,nodev,noexec"),
        ("cgroup2", f"{r}/sys/fs/cgroup", "cgroup2", "nofail"),
        ("devtmpfs", f"{r}/dev", "devtmpfs", "mode=0755,nosuid"),
        ("devpts", f"{r}/dev/pts", "devpts",
         "newinstance,ptmxmode=0666,mode=0620,gid=5,X-mount.mkdir"),
        ("tmpfs", f"{r}/dev/shm", "tmpfs", "nosuid,nodev,mode=1777,X-mount.mkdir"),
        ("mqueue", f"{r}/dev/mqueue", "mqueue", "nofail,X-mount.mkdir"),
        ("tmpfs", f"{r}/run", "tmpfs", "nosuid,nodev,mode=0755"),
        ("tmpfs", f"{r}/run/netns", "tmpfs", "mode=0755,X-mount.mkdir"),
        ("tmpfs", f"{r}/tmp", "tmpfs", "nosuid,nodev,mode=1777"),
        (UML_MODULES, f"{r}/lib/modules", "none", "bind,X-mount.mkdir"),
        # the only host directory the guest can write to, at the same path
        # (X-mount.mkdir: workdir may live under /tmp, /run, /dev/shm, which
        # are fresh tmpfs in the guest)
        ("hostfs", f"{r}{workdir}", "hostfs", f"X-mount.mkdir,{workdir}"),
    ]
    # read-only views of host directories (after the tmpfs mounts that would hide them)
    rows += [("hostfs", f"{r}{p}", "hostfs", f"X-mount.mkdir,ro,{p}") for p in shared if p != workdir]
    return "".join(f"{a} {b} {c} {d} 0 0\n" for a, b, c, d in rows)


_VERSION_CACHE: dict = {}


def _loadable(ver: str, mods: list[str]) -> list[str]:
    """The names in ``mods`` that are modules of this UML kernel (modules.dep); built-in
    ones, and ones this kernel does not have as modules (ipv6 is built in since 6.x
    builds), are left out: the test that needs a feature then fails visibly."""
    try:
        with open(os.path.join(UML_MODULES, ver, "modules.dep")) as f:
            known = {os.path.basename(line.split(":", 1)[0]).split(".ko")[0].replace("-", "_") for line in f}
    except OSError:
        return mods
    return [m for m in mods if m.replace("-", "_") in known]


def _uml_version_cached(binary: str) -> str:
    if binary not in _VERSION_CACHE:
        v = _uml_version(binary)
        if not v:
            raise UMLUnavailable(f"{binary} --version failed")
        _VERSION_CACHE[binary] = v
    return _VERSION_CACHE[binary]


_CONSOLE_NOISE = ("SELinux:", "mmapper_init", "Failed to initialize ubd",
                  "sysrq: Power Off", "reboot: Power down")


def _console_summary(console: str, lines: int = 6) -> str:
    keep = [l for l in console.splitlines()
            if l.strip() and not l.startswith(_CONSOLE_NOISE)]
    return " | ".join(keep[-lines:]) or "(empty)"


def _mem_bytes(mem: str) -> int:
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(mem[:-1]) * mult[mem[-1].lower()] if mem[-1].isalpha() else int(mem)


def _pump(path: str, offset: int, stream: TextIO) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset
    if data:
        stream.write(data.decode(errors="replace"))
        stream.flush()
    return offset + len(data)


# --------------------------------------------------------------------------
def main(args: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Run CMD inside a throw-away UML guest.",
        usage="%(prog)s [options] -- CMD [ARGS...]")
    ap.add_argument("--workdir", help="host dir mounted rw in the guest "
                    "(default: fresh temp dir, kept and printed)")
    ap.add_argument("--cwd", help="guest working dir (default: current dir)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--mem", default="1G")
    ap.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VAL")
    ap.add_argument("--modules", help="comma list of modules to preload "
                    "(default: ipv6; '' for none)")
    ap.add_argument("--check", action="store_true",
                    help="only report uml_available(boot_test=True)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print timing")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    ns = ap.parse_args(args)
    if ns.check:
        why = uml_available(boot_test=True)
        print("UML usable" if why is None else f"UML unavailable: {why}")
        return 0 if why is None else 1
    cmd = ns.cmd[1:] if ns.cmd[:1] == ["--"] else ns.cmd
    if not cmd:
        ap.error("no command given (use: -- CMD ARGS)")
    why = uml_available()
    if why:
        print(f"uml_run: UML unavailable: {why}", file=sys.stderr)
        return 2
    workdir = ns.workdir or tempfile.mkdtemp(prefix="uml-work-")
    env = dict(kv.split("=", 1) for kv in ns.env)
    timing: dict = {}
    try:
        rc, _ = run_in_uml(cmd, workdir=workdir, timeout=ns.timeout, mem=ns.mem,
                           env=env, cwd=ns.cwd or os.getcwd(),
                           modules=ns.modules.split(",") if ns.modules is not None else None,
                           stream=sys.stdout,
                           timing=timing)
    except UMLError as e:
        print(f"uml_run: {e}", file=sys.stderr)
        if e.console:
            print("---- console tail ----\n" + e.console[-2000:], file=sys.stderr)
        return 3
    if ns.verbose or not ns.workdir:
        print(f"uml_run: rc={rc} workdir={workdir}", file=sys.stderr)
    if ns.verbose:
        print("uml_run: timing " + " ".join(f"{k}={v:.3f}" for k, v in sorted(timing.items())
                                            if "epoch" not in k), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
