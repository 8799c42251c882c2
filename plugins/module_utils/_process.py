# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: programs inside lab nodes, run from the build host - the one home for them
(the underscore: not public API; the front end reaches it through ``api``).

Every module that runs something in a node goes through here: topo.lab.cast (its agents),
topo.lab.iperf (iperf3 servers and clients), topo.lab.capture (tcpdump, traffic commands)
and the CLI's ``topo exec`` / ``topo capture`` (``api.node_argv``, ``api.capture``).

A *place* is a dict that says where a node lives, the participant shape of the checks::

    {"node": "h1",                 # name, for messages (optional)
     "netns": "topo-demo-h1",      # its named network namespace (under /run/netns), or None
     "container": "topo-demo-h1"}  # its container (docker nodes), or None

Two ways in, argv lists only (never a shell string built from names):

- :func:`exec_argv` - the node's own program: ``ip netns exec NETNS argv`` for a
  namespace node (the build host's programs), ``docker exec [-i] [-t] CONTAINER argv``
  for a docker node (the image's programs and files).
- :func:`netns_argv` - a build-host program in the node's network namespace: ``ip netns
  exec NETNS argv``, or ``nsenter -t PID -n argv`` for a container without a named
  namespace (PID from ``docker inspect``). tcpdump runs this way, so it is always a
  build-host process that can be stopped by its PID.

A node on a remote build host - the place carries ``ssh``, its build host's SSH settings
as in the build-host inventory (``name``, ``ansible_host``, ``ansible_user``,
``ansible_port``, ``ansible_ssh_private_key_file``, ``ansible_ssh_common_args``,
``ansible_become``, ``ansible_become_user``) - is reached from the controller through that
host: the same argv, run there by :func:`ssh_argv` (``ssh -T ... HOST -- 'ip netns exec
NETNS argv'``, or ``'docker exec -i CONTAINER argv'`` for a docker node there, quoted for
the remote shell; behind ``sudo -n`` when the host is reached as an ordinary user with
``ansible_become``, :func:`become_argv`). Why the controller drives
the nodes of every host (topo.lab.cast, iperf and capture run on the controller for a lab
with a remote build host): a check's participants may sit on several build hosts, and its
rounds need one program that reads all of them together (select() over their pipes); an SSH session per participant carries its agent's stdin and
stdout unchanged, so the checks' code is the same for a local and a remote node, a pcap
streams back into the controller's lab directory (tcpdump ``-w -``), and scapy, which
reads it, is needed on the controller only. The sessions share one master connection per
host (ControlMaster, the directory Ansible uses: ``ANSIBLE_SSH_CONTROL_PATH_DIR`` or
``~/.ansible/cp``), so a check opens no new TCP connection - up to
:data:`SESSIONS_PER_MASTER` programs at once per host; more go over further master
connections to that host (:func:`_master`), since sshd refuses more sessions than its
MaxSessions on one connection. A remote program is stopped by its PID on that host
(``kill`` over SSH: the wrapper prints it first), never by a name.

Background programs are :class:`NodeProcess` (start, wait for a line such as READY, stop
by PID, exit code and output tails); tcpdump is :class:`Tcpdump` (start, wait until it
listens, stop with SIGINT so the pcap is flushed). Errors: :class:`ProcessError` (a
program that cannot be started), :class:`CaptureError` (tcpdump that does not listen).
"""

from __future__ import absolute_import, division, print_function

import os
import re
import select
import shutil
import signal
import subprocess
import time

__metaclass__ = type

#: Lines :func:`tail` keeps by default.
TAIL_LINES = 20
#: Seconds between SIGTERM and SIGKILL when :meth:`NodeProcess.stop` stops a program.
TERM_TIMEOUT = 3.0
#: Seconds tcpdump has to flush and exit after SIGINT before SIGKILL.
FLUSH_TIMEOUT = 5.0
#: Seconds tcpdump has to say "listening on" unless the caller says.
LISTEN_TIMEOUT = 10.0
#: Where ``ip netns`` names namespaces.
NETNS_RUN_DIR = "/run/netns"
#: Where a program is looked for beyond PATH (Ansible runs modules with a short PATH).
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin")
#: The shell that prints a container program's PID before it execs it.
_PID_WRAPPER = ["sh", "-c", 'echo "$$"; exec "$@"', "sh"]
_PID_LINE = re.compile(rb"^\s*(\d+)\n")
#: Seconds an SSH connection to a build host may take to open (ssh's ConnectTimeout).
SSH_CONNECT_TIMEOUT = 5
#: Background programs (sessions) this process runs at once over one SSH master connection
#: to a build host. sshd refuses a session beyond its MaxSessions (default 10,
#: sshd_config(5)) on one connection; ssh then opens a connection of its own for it, and
#: sshd's MaxStartups (default 10:30:100) drops such connections beyond 10 at once: a cast
#: check with 40 receivers on one build host failed so ("Session open refused by peer",
#: then "kex_exchange_identification: Connection reset by peer"; measured on the simulated
#: hosts of tests/multihost). 8 leaves room on the first master for one-shot sessions
#: (``kill``) and Ansible's; more programs go over further masters (:func:`_master`).
SESSIONS_PER_MASTER = 8
#: The program names used on a remote build host (its PATH as root, or sudo's secure_path, has /usr/sbin).
REMOTE_BINS = {"ip": "ip", "tcpdump": "tcpdump", "docker": "docker"}


class ProcessError(Exception):
    """A program could not be started in a node; the message says which and why."""


class CaptureError(ProcessError):
    """tcpdump could not capture (it exited, or did not listen in time)."""


# --------------------------------------------------------------------------- text

def tail(text, lines=TAIL_LINES, sep="\n"):
    """The last ``lines`` non-blank lines of ``text`` (str, bytes or None) joined with
    ``sep``; with ``sep="\\n"`` lines keep their indentation, else they are stripped
    (one line: ``"a | b"``)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = [ln.rstrip() if sep == "\n" else ln.strip() for ln in (text or "").splitlines()]
    return sep.join([ln for ln in kept if ln.strip()][-lines:])


def where(place):
    """``'node b (container topo-x-b)'`` / ``'node a (netns topo-x-a)'`` for messages."""
    if place.get("container"):
        return "node %s (container %s)" % (place.get("node"), place["container"])
    return "node %s (netns %s)" % (place.get("node"), place.get("netns"))


def which(name):
    """The path of build-host program ``name`` (PATH, then :data:`SBIN_DIRS`), or None."""
    found = shutil.which(name)
    if found:
        return found
    return next((os.path.join(d, name) for d in SBIN_DIRS
                 if os.access(os.path.join(d, name), os.X_OK)), None)


def place_of(netns, kind="netns"):
    """The place of a node the front end knows by namespace and kind (``netns`` |
    ``docker``: its container is named like its namespace)."""
    return {"netns": netns, "container": netns if kind == "docker" else None}


def netns_exists(netns, place=None):
    """Whether ``/run/netns/NETNS`` exists (the name is a named namespace); for a remote
    ``place`` (:func:`remote`), on its build host (one ``test -e`` over SSH)."""
    if not netns:
        return False
    if place is not None and remote(place):
        try:
            return subprocess.run(_via(place, ["test", "-e", os.path.join(NETNS_RUN_DIR, netns)]),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False
    return os.path.exists(os.path.join(NETNS_RUN_DIR, netns))


# --------------------------------------------------------------------------- ssh

def control_dir():
    """Where SSH master connections live: Ansible's control_path_dir
    (``ANSIBLE_SSH_CONTROL_PATH_DIR``, default ``~/.ansible/cp``), shared with it."""
    return os.path.expanduser(os.environ.get("ANSIBLE_SSH_CONTROL_PATH_DIR") or "~/.ansible/cp")


def become_argv(host):
    """The prefix that runs a command as root on a build host (``host``: its inventory
    variables) reached as another user with ``ansible_become``: ``sudo -n -u USER --``,
    USER ``ansible_become_user`` (default root). ``-n``: sudo fails at once ("a password
    is required") rather than wait for a password nobody types, so topo's own commands need
    passwordless sudo there (``topo doctor --hosts`` checks it). ``[]`` when the host does
    not become, or logs in as USER already. Only sudo: Ansible's other become methods are
    not used for topo's own commands."""
    if not _boolean(host.get("ansible_become")):
        return []
    user = str(host.get("ansible_become_user") or "root")
    if str(host.get("ansible_user") or "") == user:
        return []
    return ["sudo", "-n", "-u", user, "--"]


def _boolean(value):
    """An inventory boolean (``true``, ``"yes"``, ``1``...) as Ansible reads it."""
    from ansible.module_utils.parsing.convert_bool import boolean
    return boolean(value if value is not None else False, strict=False)


def ssh_argv(name, host, argv, tty=False, become=True, master=0):
    """The ``ssh`` argv that runs ``argv`` on build host ``name`` (``host``: its inventory
    variables ``ansible_host``, ``ansible_user``, ``ansible_port``,
    ``ansible_ssh_private_key_file`` or ``ansible_private_key_file``,
    ``ansible_ssh_common_args``, ``ansible_become``, ``ansible_become_user``), batch mode
    (never a password prompt), sharing a master connection per host (:func:`control_dir`).
    ``argv`` is quoted for the remote shell. Run as root there: with ``become`` (default),
    behind :func:`become_argv` when the host logs in as another user (``ip netns exec``,
    tcpdump, ``kill`` of a program it started all need root). ``master``: which master
    connection to that host (0: the one shared with Ansible, ``%C``; n: a further one,
    ``%C-n``, see :func:`_master`)."""
    import shlex
    path = "%s/%%C" % control_dir() + ("-%d" % master if master else "")
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % SSH_CONNECT_TIMEOUT,
           "-o", "ControlMaster=auto", "-o", "ControlPersist=600s",
           "-o", "ControlPath=%s" % path,
           # the master this may start is Ansible's too: the same keep-alives as the lab
           # inventory's ansible_ssh_args (topo/inventory.py REMOTE_SSH)
           "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
    ssh += ["-t"] if tty else ["-T"]
    if host.get("ansible_port"):
        ssh += ["-p", str(host["ansible_port"])]
    key = host.get("ansible_ssh_private_key_file") or host.get("ansible_private_key_file")
    if key:
        ssh += ["-i", os.path.expanduser(str(key))]
    if host.get("ansible_user"):
        ssh += ["-l", str(host["ansible_user"])]
    ssh += shlex.split(str(host.get("ansible_ssh_common_args") or ""))
    argv = (become_argv(host) if become else []) + list(argv)
    return ssh + [str(host.get("ansible_host", name)), "--", " ".join(shlex.quote(str(a)) for a in argv)]


def remote(place):
    """The SSH settings of ``place``'s build host when it is remote (its ``ssh`` key), else None."""
    ssh = place.get("ssh")
    return ssh if isinstance(ssh, dict) and ssh else None


def _via(place, argv, master=0):
    """``argv`` as is for a node on this machine, else run on its build host over SSH
    (over master connection ``master``, :func:`ssh_argv`)."""
    ssh = remote(place)
    if ssh is None:
        return list(argv)
    return ssh_argv(ssh.get("name") or ssh.get("ansible_host"), ssh, argv, master=master)


#: This process's background programs on remote build hosts: ``{host key: [(master, Popen)]}``.
_SESSIONS = {}
#: The further master connections this process opened: ``{(host key, master)}``.
_OPENED = set()


def _host_key(ssh):
    """What tells build hosts apart for their master connections (as ssh's ``%C`` does)."""
    return (str(ssh.get("ansible_host") or ssh.get("name")), str(ssh.get("ansible_port") or ""),
            str(ssh.get("ansible_user") or ""))


def _master(place):
    """The master connection for one more background program on ``place``'s remote build
    host (:func:`ssh_argv`'s ``master``): the first that carries fewer than
    :data:`SESSIONS_PER_MASTER` of this process's programs still running. A further master
    is opened first, once per process (``ssh ... true`` starts it, ControlPersist keeps it),
    so that its sessions do not race to open it; if that fails, the session itself says why.
    Record the program with :func:`_started`."""
    ssh = remote(place)
    key = _host_key(ssh)
    live = [(m, p) for m, p in _SESSIONS.get(key, []) if p.poll() is None]
    _SESSIONS[key] = live
    used = [m for m, _ in live]
    master = 0
    while used.count(master) >= SESSIONS_PER_MASTER:
        master += 1
    if master and (key, master) not in _OPENED:
        _OPENED.add((key, master))
        try:
            subprocess.run(ssh_argv(ssh.get("name") or ssh.get("ansible_host"), ssh, ["true"], become=False,
                                    master=master),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=SSH_CONNECT_TIMEOUT + 30,
                           check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return master


def _started(place, master, proc):
    """Record ``proc``, a background program started on ``place``'s remote build host over
    master connection ``master`` (:func:`_master` counts it while it runs)."""
    _SESSIONS.setdefault(_host_key(remote(place)), []).append((master, proc))


# --------------------------------------------------------------------------- argv

def exec_argv(place, argv, interactive=False, tty=False, ip="ip", docker="docker", master=0):
    """The argv that runs the node's own program ``argv`` in ``place``: ``docker exec
    [-i] [-t] CONTAINER argv`` when it has a container, else ``ip netns exec NETNS argv``
    (``interactive``: keep stdin open; ``tty``: allocate a terminal - docker only); through
    its build host when the place is remote (:func:`remote`; over master connection
    ``master``, :func:`ssh_argv`)."""
    if place.get("container"):
        return docker_argv(place, (["-i"] if interactive else []) + (["-t"] if tty else [])
                           + [place["container"]] + list(argv), docker, master)
    if remote(place):
        return _via(place, [REMOTE_BINS["ip"], "netns", "exec", place["netns"]] + list(argv), master)
    return [ip, "netns", "exec", place["netns"]] + list(argv)


def docker_argv(place, args, docker="docker", master=0):
    """``docker exec ARGS`` for ``place``'s container: this machine's ``docker`` (a path), or
    on its build host over SSH when the place is remote (:func:`remote`; over master
    connection ``master``, :func:`ssh_argv`)."""
    if remote(place):
        return _via(place, [REMOTE_BINS["docker"], "exec"] + list(args), master)
    return [docker, "exec"] + list(args)


def container_pid(container, docker="docker"):
    """The host PID of running ``container``'s first process; ProcessError when it is
    not running or docker cannot say."""
    try:
        out = subprocess.run([docker, "inspect", "--format", "{{.State.Pid}}", container],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProcessError("docker inspect %s: %s" % (container, exc))
    if not out.isdigit() or out == "0":
        raise ProcessError("container %s is not running" % container)
    return int(out)


def netns_argv(place, argv, ip="ip", docker="docker", master=0):
    """The argv that runs build-host program ``argv`` in ``place``'s network namespace:
    ``ip netns exec NETNS argv`` when it has a named one, else ``nsenter -t PID -n argv``
    with its container's PID; through its build host when the place is remote (over master
    connection ``master``). ProcessError when the container is not running."""
    if place.get("netns") and remote(place):
        return _via(place, [REMOTE_BINS["ip"], "netns", "exec", place["netns"]] + list(argv), master)
    if place.get("netns"):
        return [ip, "netns", "exec", place["netns"]] + list(argv)
    return ["nsenter", "-t", str(container_pid(place["container"], docker)), "-n"] + list(argv)


# --------------------------------------------------------------------------- one-shot

def run(place, argv, timeout, ip="ip", docker="docker"):
    """Run the node's program ``argv`` to its end (stdin closed), killed after ``timeout``
    seconds. Returns ``{"rc": int or None, "timed_out": bool, "stdout": tail,
    "stderr": tail}`` (the last :data:`TAIL_LINES` lines of each)."""
    res = {"rc": None, "timed_out": False}
    try:
        proc = subprocess.run(exec_argv(place, argv, ip=ip, docker=docker), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=timeout)
        res.update(rc=proc.returncode, stdout=tail(proc.stdout), stderr=tail(proc.stderr))
    except subprocess.TimeoutExpired as exc:
        res.update(timed_out=True, stdout=tail(exc.stdout), stderr=tail(exc.stderr))
    return res


# --------------------------------------------------------------------------- background

class NodeProcess:
    """A program started in the background inside a node (:func:`exec_argv`).

    ``stdin``: True gives a pipe to write commands to (:meth:`send`), else stdin is
    closed. ``track_pid``: for a container or a node on a remote build host, the program
    runs under ``sh -c 'echo $$; exec "$@"'`` so its PID *in the container* or *on that
    host* is known and :meth:`stop` can signal it there (stopping the ``docker exec`` or
    ``ssh`` client alone would leave it running); for a namespace node on this machine the
    PID is always the host's (``ip netns exec`` execs the program). An untracked remote
    program (a cast agent) ends when its SSH session closes its stdin.

    Attributes: ``proc`` (the Popen), ``pid`` (see above; None when unknown), ``out`` and
    ``err`` (bytes read so far), ``killed`` (it had to be stopped), ``where`` (for
    messages). ProcessError when the program cannot be started."""

    def __init__(self, place, argv, stdin=False, track_pid=False, ip="ip", docker="docker"):
        self.place, self.argv = place, list(argv)
        self.docker = docker
        self.in_container = bool(place.get("container"))
        self.remote = remote(place) is not None and not self.in_container
        self.track_pid = track_pid and (self.in_container or self.remote)
        over_ssh = remote(place) is not None  # a netns node or a container on a remote build host
        master = _master(place) if over_ssh else 0
        full = exec_argv(place, (_PID_WRAPPER if self.track_pid else []) + self.argv,
                         interactive=self.in_container, ip=ip, docker=docker, master=master)
        self.out, self.err = b"", b""
        self.killed = self.done = False
        self.where = where(place)
        try:
            self.proc = subprocess.Popen(full, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         bufsize=0, close_fds=True)
        except OSError as exc:
            raise ProcessError("%s: cannot start %s: %s" % (self.where, full[0], exc))
        if over_ssh:
            _started(place, master, self.proc)
        self.pid = None if self.in_container or self.remote else self.proc.pid
        if self.track_pid:
            self._read_pid()

    def _read_pid(self, timeout=30.0):
        """Read the wrapper's first line (the PID) without consuming more than it."""
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        while True:
            m = _PID_LINE.match(self.out)
            if m:
                self.pid = int(m.group(1))
                self.out = self.out[m.end():]
                return
            left = deadline - time.monotonic()
            if left <= 0 or b"\n" in self.out:
                return  # docker exec failed before the shell ran; its stderr says why
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                self.out += chunk

    # ------------------------------------------------------------------ state
    def alive(self):
        """True while the program (the local ``ip``/``docker exec`` process) runs."""
        return self.proc.poll() is None

    def rc(self):
        """Its exit status (None while it runs; negative: killed by that signal)."""
        return self.proc.returncode

    def out_tail(self, lines=TAIL_LINES, sep="\n"):
        """The last lines of what it printed on stdout (:func:`tail`)."""
        return tail(self.out, lines, sep)

    def err_tail(self, lines=TAIL_LINES, sep="\n"):
        """The last lines of what it printed on stderr (:func:`tail`)."""
        return tail(self.err, lines, sep)

    # ------------------------------------------------------------------ io
    def send(self, line):
        """Write ``line`` and a newline to its stdin; a program that is gone is ignored."""
        try:
            self.proc.stdin.write((line + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError, AttributeError):
            pass

    def close_stdin(self):
        """Close its stdin (end of commands)."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass

    def wait_line(self, marker, timeout, stream="out"):
        """Read ``stream`` (``out`` or ``err``) until a line contains ``marker`` (bytes or
        str); True when it did, False when ``timeout`` seconds passed or the stream ended
        first. What was read stays in ``out``/``err``."""
        marker = marker.encode("utf-8") if isinstance(marker, str) else marker
        pipe = self.proc.stdout if stream == "out" else self.proc.stderr
        fd, deadline = pipe.fileno(), time.monotonic() + timeout
        while marker not in getattr(self, stream):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return False
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            setattr(self, stream, getattr(self, stream) + chunk)
        return True

    def finish(self, timeout):
        """Wait up to ``timeout`` seconds (None: no limit) for it to end and collect its
        output; True when it ended."""
        if self.done:
            return True
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        except ValueError:  # its pipes were already closed by the caller
            self.proc.wait(timeout=timeout)
            out, err = b"", b""
        self.out += out or b""
        self.err += err or b""
        self.done = True
        return True

    # ------------------------------------------------------------------ stop
    def signal(self, sig):
        """Send ``sig`` to the program by its PID: the host's for a namespace node, the
        container's (the shell's ``kill`` builtin, for slim images; through ``ssh`` for a
        container on a remote build host) for a tracked container program, the remote build
        host's (``kill`` over SSH) for a tracked remote program, else the local ``docker
        exec`` or ``ssh`` client."""
        if self.in_container and self.pid is not None:
            try:
                subprocess.run(docker_argv(self.place, [self.place["container"], "sh", "-c",
                                                        "kill -%d %d" % (sig, self.pid)], self.docker),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass
            return
        if self.remote and self.pid is not None:
            try:
                subprocess.run(_via(self.place, ["kill", "-%d" % sig, str(self.pid)]),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass
            return
        try:
            self.proc.send_signal(sig)
        except OSError:
            pass

    def kill(self):
        """SIGKILL the local process (``ip netns exec``'s program, or the ``docker exec``
        client) when it still runs."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass

    def stop(self):
        """Stop it by its PID (SIGTERM, SIGKILL after :data:`TERM_TIMEOUT` seconds) and
        collect its output; also ends the ``docker exec`` client. A no-op (but for the
        output) when it ended by itself."""
        if not self.alive():
            self.finish(None)
            return
        self.killed = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.signal(sig)
            if self.finish(TERM_TIMEOUT):
                return
        self.kill()  # the docker exec client, when the container is gone
        self.finish(None)


# --------------------------------------------------------------------------- tcpdump

def tcpdump_argv(tcpdump, interface, path, bpf=None, snaplen=262144, count=None):
    """tcpdump's argv (no namespace prefix): capture on ``interface``, write ``path``
    ("-" for stdout) packet by packet, stop after ``count`` packets (None: never), keep
    ``snaplen`` bytes of each, ``bpf`` filter expression (None: everything)."""
    argv = [tcpdump, "-i", interface, "-w", path, "-U", "--immediate-mode", "-s", str(snaplen)]
    if count is not None:
        argv += ["-c", str(count)]
    if bpf:
        argv += ["--", bpf]
    return argv


class Tcpdump:
    """The build host's tcpdump on ``interface`` in ``place``'s network namespace
    (:func:`netns_argv`), writing the pcap ``path`` (its directory is created).

    :meth:`start` returns once tcpdump listens; :meth:`stop` ends it with SIGINT, so the
    pcap is complete when it returns. ``err`` holds its stderr; :meth:`info` is
    ``{"pid", "rc", "stderr" (tail)}``. On a remote build host (:func:`remote`) tcpdump
    writes the pcap to its stdout, which SSH carries into ``path`` here, and prints its PID
    on stderr first, so that SIGINT reaches it there (``kill -INT PID`` over SSH)."""

    def __init__(self, place, interface, path, bpf=None, snaplen=262144, count=None,
                 tcpdump="tcpdump", ip="ip", docker="docker"):
        self.place, self.interface, self.path = place, interface, path
        # a docker node's namespace is named on its build host too: tcpdump runs there alike
        self.remote = remote(place) is not None and bool(place.get("netns"))
        if self.remote:
            self.argv_tail = (["sh", "-c", 'echo "$$" >&2; exec "$@"', "sh"]
                              + tcpdump_argv(REMOTE_BINS["tcpdump"], interface, "-", bpf, snaplen, count))
        else:
            self.argv_tail = tcpdump_argv(tcpdump, interface, path, bpf, snaplen, count)
        self.ip, self.docker = ip, docker
        self.proc, self.err, self.pid, self.sink = None, b"", None, None

    def start(self, listen_timeout=LISTEN_TIMEOUT):
        """Start tcpdump and wait until it says "listening on". CaptureError when it
        cannot be started, exits, or is silent for ``listen_timeout`` seconds (it is
        stopped then); ProcessError when the container is not running."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        master = _master(self.place) if self.remote else 0
        argv = netns_argv(self.place, self.argv_tail, self.ip, self.docker, master)
        try:
            if self.remote:
                self.sink = open(self.path, "wb")
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=self.sink or subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            if self.sink is not None:
                self.sink.close()
            raise CaptureError("cannot start %s: %s" % (argv[0], exc))
        if self.remote:
            _started(self.place, master, self.proc)
        try:
            self._wait_listening(listen_timeout)
        except BaseException:
            self.stop()
            if self.sink is not None and not os.path.getsize(self.path):
                os.unlink(self.path)  # no pcap, as when a local tcpdump cannot start
            raise
        return self

    def _wait_listening(self, timeout):
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        while b"listening on" not in self.err:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaptureError("tcpdump did not start listening within %.1f s: %s"
                                   % (timeout, tail(self.err) or "(no output)"))
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:  # EOF: tcpdump exited
                    self.proc.wait()
                    raise CaptureError("tcpdump exited with %s before listening: %s"
                                       % (self.proc.returncode, tail(self.err) or "(no output)"))
                self.err += chunk
                m = _PID_LINE.match(self.err) if self.remote and self.pid is None else None
                if m:
                    self.pid = int(m.group(1))
                    self.err = self.err[m.end():]

    def wait(self, timeout):
        """Wait up to ``timeout`` seconds for tcpdump to end by itself (its ``count``);
        True when it did."""
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        """Stop it by its PID: SIGINT (tcpdump flushes the pcap and exits), SIGKILL after
        :data:`FLUSH_TIMEOUT` seconds; collects the rest of its stderr. Idempotent."""
        proc = self.proc
        if proc is None or proc.stderr is None or proc.stderr.closed:
            return
        if proc.poll() is None:
            if self.remote and self.pid is not None:
                try:
                    subprocess.run(_via(self.place, ["kill", "-INT", str(self.pid)]), stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=30, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            else:
                proc.send_signal(signal.SIGINT)
        try:
            rest = proc.communicate(timeout=FLUSH_TIMEOUT)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            rest = proc.communicate()[1]
        self.err += rest or b""
        if self.sink is not None:
            self.sink.close()

    def info(self):
        """``{"pid": int, "rc": int or None, "stderr": the last lines of its stderr}``."""
        return {"pid": self.proc.pid if self.proc else None,
                "rc": self.proc.returncode if self.proc else None, "stderr": tail(self.err)}
