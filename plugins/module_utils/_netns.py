# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private netlink helpers shared by topo's modules (the underscore: not public API).

Everything that touches the kernel goes through here:

* named network namespaces (``/run/netns/NAME``), created and entered with the
  ``unshare``/``setns`` system calls, the same way ``ip netns add`` does;
* one pyroute2 ``IPRoute`` socket per namespace, opened by entering the namespace
  just long enough to create the socket (a netlink socket stays bound to the
  namespace it was created in), for the rarer changes (fixes, removals, tunnels, qdiscs);
  and one plain netlink socket per namespace for the reads and what a build makes
  (:func:`request`: link, address and route dumps, filtered by the kernel where it can,
  one link, nsids, an alias; veths, bridges, addresses, routes), which skip pyroute2 0.9's
  event loop per call, whose requests are packed here (:func:`rtattr`) and whose link
  messages are read for the compared attributes only (:func:`quick_link_summary`). A
  no-op re-apply, and a fresh build of namespaces, bridges, veths, addresses and routes,
  opens no ``IPRoute`` at all (nor imports it);
* ownership markers: the alias (``IFLA_IFALIAS``) ``topo:<lab>:<node>`` on a
  namespace's ``lo`` marks the namespace, ``topo:<lab>`` marks an interface,
  and routes carry the protocol number :data:`ROUTE_PROTO`;
* a change log (:class:`Changes`) that every module returns, so ``topo plan`` and
  ``topo apply`` report the same thing.

Why not ``pyroute2.NetNS``: in pyroute2 0.9 each ``NetNS(name)`` forks a helper,
about 10 ms per namespace on this project's 2-core reference machine, while
``setns`` + ``IPRoute()`` costs about 0.7 ms (measured with 200 namespaces).
At 1000 nodes and five modules that is the difference between 50 s and 3.5 s.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import importlib.util
import ipaddress
import os
import resource
import socket
import struct
import sys
from contextlib import contextmanager

from ansible_collections.topo.lab.plugins.module_utils._lock import flock_wait


def _pyroute2_package():
    """Name the ``pyroute2`` package without running its ``__init__`` yet, so that importing
    the few submodules topo uses (the rtnetlink message classes, and ``IPRoute`` when a change
    needs one) does not import all of pyroute2 first.

    ``pyroute2/__init__.py`` imports every socket class of the library (conntrack, nftables,
    IPDB, NDB, wireless, ...): about 0.25 s of each module run on the project's 2-core
    reference machine, of which topo uses none. The package is made from its own spec
    (``importlib.util.module_from_spec``: its ``__path__``, so every submodule imports as
    usual) and gets a module ``__getattr__`` (PEP 562) that runs the real ``__init__`` the
    first time anyone asks the package itself for a name that is not a submodule (``from
    pyroute2 import NDB``), so other code in the same process sees the whole library as
    before. Nothing is done when pyroute2 is already imported; when its loader cannot run a
    module later (Python before 3.10 importing from a zip) it is imported whole.
    ImportError when pyroute2 is missing."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None:
        raise ImportError("No module named 'pyroute2'", name="pyroute2")
    if not hasattr(spec.loader, "exec_module") or not spec.submodule_search_locations:
        import pyroute2  # noqa: F401
        return
    package = importlib.util.module_from_spec(spec)

    def whole(name):
        # a submodule not imported yet (``from pyroute2 import config`` in pyroute2's own
        # modules): import it, as the import system would
        if not name.startswith("__") and importlib.util.find_spec("pyroute2." + name) is not None:
            return importlib.import_module("pyroute2." + name)
        # any other name: run the package's __init__, then answer
        if package.__dict__.pop("__getattr__", None) is not None:
            spec.loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError("module 'pyroute2' has no attribute %r" % name) from None

    package.__getattr__ = whole
    sys.modules["pyroute2"] = package


try:
    _pyroute2_package()
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by require_pyroute2()
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

    class NetlinkError(Exception):
        code = 0


def ifinfmsg(data=None):
    """A pyroute2 ``ifinfmsg`` (RTM_NEWLINK) message of ``data``; its module (with a plugin per
    link kind, about 17 ms) is imported on the first call, which a run whose links are all
    read by :func:`quick_link_summary` never makes."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg as message
    return message(data)


def IPRoute():
    """A new pyroute2 ``IPRoute`` socket in this thread's namespace; its module (asyncio and
    pyroute2's socket machinery, about 0.1 s) is imported on the first call, which a no-op
    re-apply never makes."""
    from pyroute2.iproute.linux import IPRoute as iproute
    return iproute()


#: ipaddress's parsers, memoised (ipaddress objects are immutable): a lab names the same
#: prefixes, next hops and addresses in many places - a route in its check, its declaration,
#: the kernel's answer and the request; a chain of 50 routed nodes declares 306 routes over
#: 49 prefixes - and each parse costs about 10 us (the module spent about 30 ms of a
#: chain-50 build parsing them again).
ip_address = functools.lru_cache(maxsize=16384)(ipaddress.ip_address)
ip_network = functools.lru_cache(maxsize=16384)(ipaddress.ip_network)
ip_interface = functools.lru_cache(maxsize=16384)(ipaddress.ip_interface)


NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
IFF_UP = 0x1

#: Routes topo installs carry this rtnetlink protocol number, so topo prunes only
#: its own routes. 116 is unassigned in iproute2's /etc/iproute2/rt_protos.
ROUTE_PROTO = 116
#: Prefix of every ownership alias topo writes.
MARKER = "topo:"
#: Interface group (IFLA_GROUP) of every device topo creates, set in the creating message
#: (unlike the alias), so a device whose run died before its alias was written is still
#: known as topo's: 0x7470, "tp". ``ip link show group 29808`` lists them.
GROUP = 0x7470
#: Where a missing link kind is loaded from (module name, kernel option), for errors.
KERNEL_FEATURES = {
    "veth": ("veth", "CONFIG_VETH"),
    "bridge": ("bridge", "CONFIG_BRIDGE"),
    "vxlan": ("vxlan", "CONFIG_VXLAN"),
    "gre": ("ip_gre", "CONFIG_NET_IPGRE"),
    "gretap": ("ip_gre", "CONFIG_NET_IPGRE"),
    "ip6gre": ("ip6_gre", "CONFIG_IPV6_GRE"),
    "ip6gretap": ("ip6_gre", "CONFIG_IPV6_GRE"),
    "netem": ("sch_netem", "CONFIG_NET_SCH_NETEM"),
    "tbf": ("sch_tbf", "CONFIG_NET_SCH_TBF"),
}
#: What to suggest when a feature is missing.
ALTERNATIVES = {
    "gre": "use vxlan", "gretap": "use vxlan", "vxlan": "use gre or gretap",
    "ip6gre": "use vxlan (over IPv6 too)", "ip6gretap": "use vxlan (over IPv6 too)",
    "netem": "drop delay, jitter and loss", "tbf": "drop rate",
}
#: GRE_KEY in the GRE flags (include/uapi/linux/if_tunnel.h), as pyroute2 encodes them.
GRE_KEY = 0x2000
#: Address flags (include/uapi/linux/if_addr.h): IFA_F_SECONDARY (an IPv4 address that is
#: not its subnet's first), IFA_F_NODAD (no duplicate address detection: usable at once),
#: IFA_F_DADFAILED, IFA_F_TENTATIVE (DAD still running) and IFA_F_PERMANENT (added by hand
#: or by topo, not by autoconfiguration).
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80


class NetnsError(Exception):
    """A kernel operation failed; the message names the object and the cause."""


class NotOwned(NetnsError):
    """An object with a name topo wants exists but carries no marker of this lab."""


class KernelFeatureMissing(NetnsError):
    """The running kernel cannot create a link kind (EOPNOTSUPP from rtnetlink)."""

    def __init__(self, kind):
        module, option = KERNEL_FEATURES.get(kind, (kind, "?"))
        what = "run %s qdiscs" % kind if kind in ("netem", "tbf") else "create %s links" % kind
        super().__init__("this kernel (%s) cannot %s (%s); load %s (modprobe %s) or %s"
                         % (os.uname().release, what, option, module, module,
                            ALTERNATIVES.get(kind, "choose another link type")))
        self.kind = kind


#: How :func:`missing_features` makes a throw-away object of each feature.
_PROBES = {
    "vxlan": dict(kind="vxlan", vxlan_id=1, vxlan_local="198.18.0.1", vxlan_group="198.18.0.2", vxlan_port=4789),
    "gre": dict(kind="gre", gre_local="198.18.0.1", gre_remote="198.18.0.2"),
    "gretap": dict(kind="gretap", gre_local="198.18.0.1", gre_remote="198.18.0.2"),
    "ip6gre": dict(kind="ip6gre", ip6gre_local="2001:db8::1", ip6gre_remote="2001:db8::2"),
    "ip6gretap": dict(kind="ip6gretap", ip6gre_local="2001:db8::1", ip6gre_remote="2001:db8::2"),
}


def missing_features(features):
    """The features (link kinds of _PROBES, ``netem``, ``tbf``) this kernel cannot provide.

    Each is tried for real in a fresh anonymous network namespace, which the kernel frees
    as soon as the probe returns: a link of that kind is created (the kernel loads its
    module on demand, as for any ``ip link add``), or the qdisc is put on that
    namespace's ``lo``. EOPNOTSUPP (or ENOENT for a qdisc) means the kernel lacks it.
    """
    missing = []
    wanted = [f for f in features if f in _PROBES or f in ("netem", "tbf")]
    if not wanted:
        return missing
    home = _home_fd()
    _syscall(_LIBC.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    try:
        with IPRoute() as ipr:
            for n, feature in enumerate(wanted):
                try:
                    if feature in ("netem", "tbf"):
                        kw = dict(delay=1000) if feature == "netem" else dict(rate=125000, burst=4096, latency=50000)
                        ipr.tc("add", feature, index=1, handle=0x10000, **kw)
                        ipr.tc("del", index=1, handle=0x10000, parent=0xFFFFFFFF)
                    else:
                        ipr.link("add", ifname="probe%d" % n, **_PROBES[feature])
                except NetlinkError as exc:
                    if exc.code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EINVAL):
                        missing.append(feature)
                    else:
                        raise
    finally:
        _syscall(_LIBC.setns(home, CLONE_NEWNET), "setns(home)")
    return missing


def require_features(features):
    """Raise :class:`KernelFeatureMissing` for the first of ``features`` this kernel lacks."""
    missing = missing_features(features)
    if missing:
        raise KernelFeatureMissing(missing[0])


def require_pyroute2(module):
    """Fail the Ansible ``module`` cleanly when pyroute2 is not importable."""
    if not HAS_PYROUTE2:
        module.fail_json(
            msg="pyroute2 is required on the build host (pip install pyroute2): %s"
            % PYROUTE2_IMPORT_ERROR)


def run(module, converge):
    """Run ``converge(socks)`` with one socket pool and exit the module with its result.

    ``converge`` returns a :class:`Changes` or a list of them (one per resource type, in
    order). Kernel and ownership errors (NetnsError, OSError) and bad values (ValueError)
    fail the task with their message; anything else is a bug and keeps its traceback. The
    ``warnings`` a pass puts in its ``extra`` are given to ``module.warn``.
    """
    require_pyroute2(module)
    # The arguments are the lab's whole desired state (megabytes at 1000 nodes, and already
    # in the inventory); echoing them back as the result's invocation would bloat every
    # result and event, so the invocation carries the lab and each list's length only.
    invocation = {"module_args": dict(
        (k, len(v) if isinstance(v, list) else v) for k, v in module.params.items())}
    try:
        with lab_lock(module.params.get("lab")), Sockets() as socks:
            parts = converge(socks)
    except (NetnsError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc), invocation=invocation)
    result = Changes.merge(parts if isinstance(parts, list) else [parts])
    # A pass's warnings (Changes.extra["warnings"], e.g. no dockerd answered) go through
    # AnsibleModule.warn: ansible-core 2.19 deprecates passing them to exit_json; they reach
    # the task result's ``warnings`` the same way.
    for warning in result.pop("warnings", None) or ():
        module.warn(warning)
    module.exit_json(invocation=invocation, **result)


#: Where the per-lab kernel-work locks live (tmpfs: gone at reboot, like the namespaces).
LOCK_DIR = "/run/lock/topo"


@contextmanager
def lab_lock(lab, timeout=600.0):
    """Hold ``/run/lock/topo/<lab>.lock`` while changing the kernel for ``lab``.

    The CLI's lock ends with the CLI; a killed ``topo apply`` can leave its ansible-playbook
    and module running. This lock, taken by every module run, makes the next apply or
    destroy of the same lab wait for such an orphan instead of racing it. Labs do not wait
    for each other. Raises NetnsError after ``timeout`` seconds.
    """
    if not lab:
        yield
        return
    import re
    from ansible_collections.topo.lab.plugins.module_utils._vocabulary import NAME_PATTERN
    if not re.match(NAME_PATTERN, lab):
        raise NetnsError("invalid lab name %r: letters, digits, - and _, starting with a letter" % lab)
    os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
    fd = os.open(os.path.join(LOCK_DIR, "%s.lock" % lab), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if not flock_wait(fd, timeout):
            raise NetnsError("lab %s is still being changed by another process after %.0f s "
                             "(see %s)" % (lab, timeout, LOCK_DIR))
        yield
    finally:
        os.close(fd)


def ns_marker(lab, node):
    """The alias put on ``lo`` of the namespace of ``node`` in ``lab``."""
    return "%s%s:%s" % (MARKER, lab, node)


def if_marker(lab):
    """The alias put on every interface topo creates for ``lab``."""
    return "%s%s" % (MARKER, lab)


def owns_interface(alias, lab):
    """True when an interface alias marks it as made by ``lab``."""
    return alias == if_marker(lab)


def ours(link, lab):
    """True when interface ``link`` (a :func:`link_summary`) is ``lab``'s: it carries the
    lab's alias, or it is half made - created with :data:`GROUP` by a run that was killed
    before it could write the alias (the alias cannot be set in the creating message;
    the group can). A half-made device is finished or replaced by the next run."""
    return owns_interface(link["alias"], lab) or (not link["alias"] and link.get("group") == GROUP)


# --------------------------------------------------------------------------
# System calls (libc through ctypes; Python 3.11 has no os.setns/os.unshare)
# --------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_void_p]
_LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_LIBC.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_LIBC.unshare.argtypes = [ctypes.c_int]


def _syscall(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


_HOME_FD = None


def _home_fd():
    """An fd of the network namespace this process started in (opened once)."""
    global _HOME_FD
    if _HOME_FD is None:
        _HOME_FD = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    return _HOME_FD


def _path(name):
    return os.path.join(NETNS_RUN_DIR, name)


def list_namespaces():
    """Names under /run/netns, sorted. An absent directory means none."""
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def namespace_exists(name):
    """True when /run/netns/NAME is a mounted network namespace. (The passes of one module
    run ask their :class:`~._resources.Context`, which also knows the namespaces a check
    run's container pass would make anew.)"""
    return os.path.ismount(_path(name))


_RUN_DIR_READY = False


def _prepare_run_dir():
    """Make /run/netns a shared mount point, as ``ip netns add`` does, so that
    namespaces created here are visible from other mount namespaces too."""
    global _RUN_DIR_READY
    if _RUN_DIR_READY:
        return
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
    d = NETNS_RUN_DIR.encode()
    if _LIBC.mount(b"none", d, b"none", MS_SHARED | MS_REC, None) != 0:
        if ctypes.get_errno() != errno.EINVAL:
            _syscall(-1, "mount --make-shared %s" % NETNS_RUN_DIR)
        _syscall(_LIBC.mount(d, d, b"none", MS_BIND | MS_REC, None),
                 "mount --bind %s" % NETNS_RUN_DIR)
        _syscall(_LIBC.mount(b"none", d, b"none", MS_SHARED | MS_REC, None),
                 "mount --make-shared %s" % NETNS_RUN_DIR)
    _RUN_DIR_READY = True


def create_namespace(name, marker, sockets=None):
    """Create the named network namespace ``name`` with ``lo`` up and aliased ``marker``.

    The marker is written inside the new namespace *before* it is bound to
    /run/netns, so a namespace of that name is never visible without it: a crash
    half-way leaves either nothing or an unmounted placeholder file, which
    :func:`create_namespace` removes and retries. The plain netlink socket that writes it
    is handed to ``sockets`` (a :class:`Sockets`) as the namespace's, when given, instead
    of being closed.

    Raises NetnsError (EEXIST when it already exists).
    """
    _prepare_run_dir()
    path = _path(name)
    if os.path.lexists(path) and not os.path.ismount(path):
        os.unlink(path)  # placeholder left by an interrupted create
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise NetnsError("namespace %s already exists" % name)
    os.close(fd)
    home = _home_fd()
    try:
        _syscall(_LIBC.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        sock = None
        try:
            sock = raw_socket(None)
            link_set(sock, "lo", alias=marker, up=True)
            _syscall(_LIBC.mount(b"/proc/thread-self/ns/net", path.encode(), b"none",
                                 MS_BIND, None), "mount --bind %s" % path)
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            _syscall(_LIBC.setns(home, CLONE_NEWNET), "setns(home)")
        if sockets is not None:
            sockets.adopt(name, sock)
        else:
            sock.close()
    except BaseException:
        if not os.path.ismount(path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        raise


def attach_namespace(name, source, marker):
    """Name an existing network namespace: bind ``source`` (a container's
    ``/proc/PID/ns/net``) at /run/netns/NAME, as ``ip netns attach`` does, after writing
    ``marker`` on its ``lo`` (and setting lo up), so the name is never visible unmarked.

    A stale name (a placeholder, or a mount of another namespace) is replaced. The mount
    holds a reference: the namespace outlives the container's processes until
    :func:`delete_namespace` (or the next attach) releases it.
    """
    _prepare_run_dir()
    path = _path(name)
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    home = _home_fd()
    try:
        _syscall(_LIBC.setns(fd, CLONE_NEWNET), "setns(%s)" % source)
        try:
            with IPRoute() as ipr:
                ipr.link("set", index=1, state="up", ifalias=marker)
        finally:
            _syscall(_LIBC.setns(home, CLONE_NEWNET), "setns(home)")
    finally:
        os.close(fd)
    if namespace_exists(name):
        _empty_namespace(name)
    delete_namespace(name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    try:
        _syscall(_LIBC.mount(source.encode(), path.encode(), b"none", MS_BIND, None),
                 "mount --bind %s %s" % (source, path))
    except BaseException:
        os.unlink(path)
        raise


def _empty_namespace(name):
    """Delete every interface but lo in namespace ``name`` now. The kernel frees a released
    namespace later, from a work queue; until then its veths' peers in other namespaces
    still exist, and the next pass would find, then lose, them (ENODEV). Deleting a veth
    end deletes its peer at once."""
    with entered(name):
        with IPRoute() as ipr:
            for link in ipr.get_links():
                if link["index"] != 1:
                    try:
                        ipr.link("del", index=link["index"])
                    except NetlinkError as exc:
                        if exc.code != errno.ENODEV:
                            raise


def same_namespace(name, source):
    """True when /run/netns/NAME is the namespace at ``source`` (same nsfs inode)."""
    try:
        a, b = os.stat(_path(name)), os.stat(source)
    except OSError:
        return False
    return namespace_exists(name) and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def delete_namespace(name):
    """Unmount and remove /run/netns/NAME; its interfaces go with it. Missing is fine."""
    path = _path(name)
    if _LIBC.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            _syscall(-1, "umount %s" % path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def entered(name):
    """Run the body with this thread inside namespace ``name`` (None: stay home)."""
    if name is None:
        yield
        return
    try:
        fd = os.open(_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError("namespace %s does not exist" % name)
    home = _home_fd()
    try:
        _syscall(_LIBC.setns(fd, CLONE_NEWNET), "setns(%s)" % name)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        _syscall(_LIBC.setns(home, CLONE_NEWNET), "setns(home)")


#: Netlink message types, flags and attributes of :func:`lo_alias` (linux/netlink.h,
#: linux/rtnetlink.h, linux/if_link.h): the request is an ``nlmsghdr`` (``=IHHII``) and an
#: ``ifinfomsg`` (``=BxHiII``) for ifindex 1 with ``IFLA_EXT_MASK`` RTEXT_FILTER_SKIP_STATS
#: (the kernel leaves out the counters, a third of the answer; older kernels ignore the bit).
RTM_GETLINK = 18
RTM_NEWLINK = 16
NLM_F_REQUEST = 1
IFLA_IFALIAS = 20
IFLA_EXT_MASK = 29
RTEXT_FILTER_SKIP_STATS = 1 << 3
NLA_TYPE_MASK = 0x3FFF
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_RTATTR = struct.Struct("=HH")
_LO_REQUEST = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 1, 0, 0) + struct.pack("=HHI", 8, IFLA_EXT_MASK,
                                                                          RTEXT_FILTER_SKIP_STATS)
_LO_REQUEST = _NLMSGHDR.pack(_NLMSGHDR.size + len(_LO_REQUEST), RTM_GETLINK, NLM_F_REQUEST, 1, 0) + _LO_REQUEST


def lo_alias(name):
    """The alias (``IFLA_IFALIAS``) of ``lo`` in namespace ``name``, None when it has none
    (or the kernel answers the request with an error).

    One ``RTM_GETLINK`` for ifindex 1 on a plain netlink socket opened inside the namespace,
    and a walk over the answer's attributes to the alias alone (:func:`link_attribute`):
    about 0.08 ms a namespace, against 0.8 ms when pyroute2's ``ifinfmsg`` decodes the whole
    answer and about 2.5 ms for an ``IPRoute`` socket and a request through it (measured
    with 258 namespaces on the project's 2-core reference machine), which is what a scan of
    every namespace's marker pays (destroy, prune, ``topo list``). NetnsError when the
    namespace does not exist, OSError when the kernel refuses.
    """
    with entered(name):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.send(_LO_REQUEST)
        data = sock.recv(65536)
    finally:
        sock.close()
    value = link_attribute(data, IFLA_IFALIAS)
    return None if value is None else value.split(b"\0", 1)[0].decode("utf-8", "replace")


def link_attribute(data, kind):
    """The payload (bytes) of the first top-level attribute of type ``kind`` in ``data``, the
    first netlink message of a ``RTM_GETLINK`` answer; None when the message is not an
    ``RTM_NEWLINK`` (an error), has no such attribute or is malformed."""
    if len(data) < _NLMSGHDR.size + _IFINFOMSG.size:
        return None
    length, mtype = _NLMSGHDR.unpack_from(data)[:2]
    if mtype != RTM_NEWLINK:
        return None
    try:
        return next((body for atype, body in rtattrs(data, _NLMSGHDR.size + _IFINFOMSG.size, length)
                     if atype == kind), None)
    except ValueError:
        return None


def rtattrs(data, offset, end, wanted=None):
    """The netlink attributes (``rtattr``: u16 length, u16 type, payload padded to 4 bytes)
    in ``data[offset:end]`` (``end`` cut to the data's length), as ``(type, payload)``
    pairs, the type without its NLA_F_NESTED / NLA_F_NET_BYTEORDER bits; with ``wanted`` (a
    set of types), only those (the others are stepped over without copying their payload:
    a link message has about 50 attributes, of which topo reads 10). ValueError at a
    malformed attribute (shorter than its header, or longer than what is left)."""
    end = min(end, len(data))
    unpack = _RTATTR.unpack_from
    while offset + 4 <= end:
        size, atype = unpack(data, offset)
        if size < 4 or offset + size > end:
            raise ValueError("malformed netlink attribute at offset %d" % offset)
        atype &= NLA_TYPE_MASK
        if wanted is None or atype in wanted:
            yield atype, data[offset + 4:offset + size]
        offset += (size + 3) & ~3


#: More of linux/netlink.h and linux/rtnetlink.h for :func:`request` and its callers.
RTM_GETROUTE = 26
RTM_GETADDR = 22
RTM_GETNSID = 90
NLM_F_DUMP = 0x300
NLM_F_ACK = 4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_SETLINK = 19
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12


def raw_socket(name):
    """A plain rtnetlink socket opened inside namespace ``name`` (None: this one), with strict
    checking on (``NETLINK_GET_STRICT_CHK``, Linux 4.20 and later: the kernel filters dumps
    by the request's header and rejects what it cannot filter). The caller closes it.
    NetnsError when the namespace does not exist."""
    with entered(name):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    except OSError as exc:
        if exc.errno != errno.ENOPROTOOPT:  # before 4.20: dumps unfiltered, callers filter too
            sock.close()
            raise
    except BaseException:
        sock.close()
        raise
    return sock


def request(sock, msg, msg_type, answer, dump=True, ack=False, flags=0):
    """Send pyroute2 message ``msg`` as ``msg_type`` on the plain netlink socket ``sock`` and
    return the answers, decoded as pyroute2 ``answer`` messages (``bytes``: left as they
    came): every part of a dump
    (``dump``) up to NLMSG_DONE, else the one answer, or None for a request that asks only
    for the kernel's acknowledgement (``ack``: a change). One send, one or a few receives,
    no event loop: about 0.1 ms for a request where an ``IPRoute`` call costs about 1 ms in
    pyroute2 0.9 (its asyncio loop per call; measured on the project's 2-core reference
    machine). ``flags``: more NLM_F_ flags (e.g. NLM_F_CREATE). ``msg`` may also be the
    message's body as bytes (what follows the ``nlmsghdr``: :func:`link_get`,
    :func:`link_set`, :func:`veth_add`, :func:`bridge_add`, :func:`address_change` and
    :func:`route_replace` pack theirs with :func:`rtattr`, which skips pyroute2's encoder,
    about 1 ms a message). NetlinkError with the kernel's errno when it
    refuses."""
    flags |= NLM_F_REQUEST | (NLM_F_DUMP if dump else 0) | (NLM_F_ACK if ack else 0)
    if isinstance(msg, bytes):
        sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(msg), msg_type, flags, 1, 0) + msg)
    else:
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = 1
        msg.encode()
        sock.send(msg.data)
    out = []
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, offset + 16)[0]
                if code == 0 and not dump:
                    return None
                raise NetlinkError(code, os.strerror(code))
            one = answer(data[offset:offset + length])
            if answer is not bytes:
                one.decode()
            if not dump:
                return one
            out.append(one)
            if length == 0:
                break
            offset += (length + 3) & ~3


def route_dump(sock, table, protocol=0):
    """The routes of ``table`` with rtnetlink protocol ``protocol`` (0: any) seen by ``sock``
    (a :func:`raw_socket`), IPv4 then IPv6, each in kernel order, as :func:`route_record`
    dicts. The kernel filters the dump by table and protocol, so a namespace whose routes
    are all the kernel's own answers with nothing to read: what a prune of topo's routes
    needs (protocol :data:`ROUTE_PROTO`)."""
    body = _RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, table if table < 256 else 0, protocol, 0, 0, 0)
    if table >= 256:
        body += rtattr(RTA_TABLE, table)
    # a dump of AF_UNSPEC holds every family's routes (multicast, MPLS): keep IPv4 and IPv6
    answers = [route_record(data) for data in request(sock, body, RTM_GETROUTE, bytes)]
    # the same filter here, for a kernel without strict checking (before 4.20)
    return [r for family in (socket.AF_INET, socket.AF_INET6) for r in answers
            if r is not None and r["family"] == family and protocol in (0, r["proto"]) and r["table"] == table]


def address_dump(sock):
    """The IPv4 then IPv6 addresses seen by ``sock`` (a :func:`raw_socket`), each family in
    kernel order, as :func:`address_record` dicts (one request for both)."""
    answers = [address_record(data) for data in request(sock, _ADDRESS_DUMP, RTM_GETADDR, bytes)]
    return [a for family in (socket.AF_INET, socket.AF_INET6) for a in answers if a is not None and a["family"] == family]


def link_dump(sock, raw=False):
    """Every link seen by ``sock`` (a :func:`raw_socket`), as decoded pyroute2 ``ifinfmsg``
    messages, or with ``raw`` as each message's bytes (:func:`quick_link_summary`); the
    kernel leaves out the counters (RTEXT_FILTER_SKIP_STATS), which nothing here reads."""
    return request(sock, _LINK_DUMP, RTM_GETLINK, bytes if raw else ifinfmsg)


def _address(family, body):
    """An address attribute's payload as text (``inet_ntop``: dotted IPv4, compressed IPv6),
    as pyroute2 decodes it; None for None (no such attribute)."""
    return None if body is None else socket.inet_ntop(family, body)


def _u32(body):
    """A u32 attribute's payload as an int; None for None or a payload shorter than 4 bytes."""
    return struct.unpack_from("=I", body)[0] if body is not None and len(body) >= 4 else None


def _message_attrs(data, header, wanted):
    """{type: payload} of the first attribute of each type in ``wanted`` of one netlink
    message given as bytes, after its ``nlmsghdr`` and a family header of ``header``
    bytes. ValueError for a malformed message."""
    return _first(rtattrs(data, _NLMSGHDR.size + header, _NLMSGHDR.unpack_from(data)[0], wanted))


def address_record(data):
    """One RTM_NEWADDR message given as bytes, read straight from its header and the
    attributes topo compares, without pyroute2's decoder (about ten times the time): a dict
    {family, prefixlen, index, flags (:data:`IFA_FLAGS`' 32 bits when the kernel sends them,
    as it does since 3.14, else the header's 8), scope, address (IFA_ADDRESS, text; None when
    absent), broadcast (IFA_BROADCAST, text, or None)}; None for any other message. The
    same values as pyroute2's decode of that message (tests/modules/test_netns.py compares
    both on real addresses). ValueError for a malformed message."""
    if _NLMSGHDR.unpack_from(data)[1] != RTM_NEWADDR:
        return None
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(data, _NLMSGHDR.size)
    attrs = _message_attrs(data, _IFADDRMSG.size, _ADDRESS_READ)
    wide = _u32(attrs.get(IFA_FLAGS))
    return {"family": family, "prefixlen": prefixlen, "index": index, "flags": flags if wide is None else wide,
            "scope": scope, "address": _address(family, attrs.get(IFA_ADDRESS)),
            "broadcast": _address(family, attrs.get(IFA_BROADCAST))}


def route_record(data):
    """One RTM_NEWROUTE message given as bytes, read straight from its header and the
    attributes topo compares, without pyroute2's decoder: a dict {family, dst_len, table
    (RTA_TABLE when the kernel sends it, else the header's), proto, scope, type, dst
    (RTA_DST, text; None for a default route), gateway (RTA_GATEWAY, text, or None), oif
    (RTA_OIF, an ifindex, or None)}; None for any other message. The same values as
    pyroute2's decode of that message (tests/modules/test_netns.py compares both on real
    routes). ValueError for a malformed message."""
    if _NLMSGHDR.unpack_from(data)[1] != RTM_NEWROUTE:
        return None
    family, dst_len, _src_len, _tos, table, proto, scope, rtype, _flags = _RTMSG.unpack_from(data, _NLMSGHDR.size)
    attrs = _message_attrs(data, _RTMSG.size, _ROUTE_READ)
    return {"family": family, "dst_len": dst_len, "table": _u32(attrs.get(RTA_TABLE)) or table, "proto": proto,
            "scope": scope, "type": rtype, "dst": _address(family, attrs.get(RTA_DST)),
            "gateway": _address(family, attrs.get(RTA_GATEWAY)), "oif": _u32(attrs.get(RTA_OIF))}


def rtattr(kind, value):
    """One netlink attribute (``rtattr``) of type ``kind``, padded to 4 bytes: ``value`` a str
    (sent NUL-terminated, as pyroute2's ``asciiz``), an int (u32) or bytes (as they are, e.g.
    nested attributes)."""
    if isinstance(value, str):
        value = value.encode("utf-8") + b"\0"
    elif isinstance(value, int):
        value = struct.pack("=I", value)
    return _RTATTR.pack(_RTATTR.size + len(value), kind) + value + b"\0" * (-len(value) % 4)


#: The ``ifaddrmsg`` header (family, prefix length, flags, scope, ifindex) and the IFA_
#: attributes of :func:`address_change` (linux/if_addr.h).
_IFADDRMSG = struct.Struct("=BBBBi")
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_FLAGS = 8
#: The bodies of the dump requests of :func:`address_dump` (every family) and :func:`link_dump`
#: (every link, without counters).
_ADDRESS_DUMP = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
_LINK_DUMP = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + rtattr(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
#: IFLA_ attributes of the link requests packed here (linux/if_link.h).
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_GROUP = 27
IFLA_NET_NS_FD = 28
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1


def link_get(sock, ifname, raw=False):
    """The link ``ifname`` seen by ``sock`` (a :func:`raw_socket`), a decoded pyroute2
    ``ifinfmsg``, or with ``raw`` the message's bytes (:func:`link_reading`); the kernel
    leaves out the counters (RTEXT_FILTER_SKIP_STATS). NetlinkError (ENODEV) when there is
    none."""
    body = (_IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + rtattr(IFLA_IFNAME, ifname)
            + rtattr(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
    return request(sock, body, RTM_GETLINK, bytes if raw else ifinfmsg, dump=False)


def link_set(sock, ifname, alias=None, up=False):
    """Set the alias (``IFLA_IFALIAS``) of link ``ifname`` seen by ``sock`` (a
    :func:`raw_socket`) and, with ``up``, set it administratively up, in one request;
    NetlinkError when the kernel refuses."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0)
    body += rtattr(IFLA_IFNAME, ifname)
    if alias is not None:
        body += rtattr(IFLA_IFALIAS, alias)
    request(sock, body, RTM_SETLINK, bytes, dump=False, ack=True)


def address_change(sock, action, index, cidr, broadcast=None, nodad=False):
    """Add (``action`` ``add``) or delete (``del``) address ``cidr`` ("a.b.c.d/len" or an IPv6
    one) on the interface of ifindex ``index`` seen by ``sock`` (a :func:`raw_socket`), as
    ``ip address add|del`` asks: IFA_LOCAL and IFA_ADDRESS the address, IFA_BROADCAST
    ``broadcast`` when given, IFA_F_NODAD with ``nodad``; an add fails with EEXIST when the
    address is there. NetlinkError when the kernel refuses."""
    iface = ip_interface(cidr)
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    ip = iface.ip.packed
    add = action == "add"
    body = _IFADDRMSG.pack(family, iface.network.prefixlen, IFA_F_NODAD if nodad else 0, 0, index)
    body += rtattr(IFA_LOCAL, ip) + rtattr(IFA_ADDRESS, ip)
    if broadcast:
        body += rtattr(IFA_BROADCAST, socket.inet_pton(family, broadcast))
    if nodad:
        body += rtattr(IFA_FLAGS, IFA_F_NODAD)
    request(sock, body, RTM_NEWADDR if add else RTM_DELADDR, bytes, dump=False, ack=True,
            flags=NLM_F_CREATE | NLM_F_EXCL if add else 0)


#: The ``rtmsg`` header (family, destination and source prefix lengths, tos, table, protocol,
#: scope, type, flags) and what :func:`route_replace` sends (linux/rtnetlink.h).
_RTMSG = struct.Struct("=BBBBBBBBI")
RTM_NEWROUTE = 24
NLM_F_REPLACE = 0x100
RTN_UNICAST = 1
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15
#: The attribute types :func:`address_record` and :func:`route_record` read.
_ADDRESS_READ = frozenset((IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS))
_ROUTE_READ = frozenset((RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_TABLE))


def route_replace(sock, dst, table, protocol, gateway=None, oif=None, scope=0):
    """Create or replace the unicast route ``dst`` (a prefix, IPv4 or IPv6) of ``table`` with
    rtnetlink ``protocol``, via ``gateway`` (an address of the same family) and/or out of the
    interface of ifindex ``oif``, with ``scope``, in one RTM_NEWROUTE (NLM_F_CREATE |
    NLM_F_REPLACE) on ``sock`` (a :func:`raw_socket`), as ``ip route replace`` asks.
    NetlinkError when the kernel refuses (ENETUNREACH: no route to the gateway)."""
    net = ip_interface(dst)
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    body = _RTMSG.pack(family, net.network.prefixlen, 0, 0, table, protocol, scope, RTN_UNICAST, 0)
    if net.network.prefixlen:
        body += rtattr(RTA_DST, net.ip.packed)
    if gateway:
        body += rtattr(RTA_GATEWAY, ip_address(gateway).packed)
    if oif is not None:
        body += rtattr(RTA_OIF, oif)
    request(sock, body, RTM_NEWROUTE, bytes, dump=False, ack=True, flags=NLM_F_CREATE | NLM_F_REPLACE)


def _link_attrs(spec):
    """The IFLA_ attributes of a link to create, packed (:func:`rtattr`), from ``spec``:
    {ifname, optional mtu, group, address (MAC), master (an ifindex), net_ns_fd (the
    namespace it goes to)}, None values left out."""
    out = b""
    for key, kind in (("ifname", IFLA_IFNAME), ("mtu", IFLA_MTU), ("group", IFLA_GROUP),
                      ("address", IFLA_ADDRESS), ("master", IFLA_MASTER), ("net_ns_fd", IFLA_NET_NS_FD)):
        value = spec.get(key)
        if value is not None:
            out += rtattr(kind, bytes.fromhex(value.replace(":", "")) if key == "address" else value)
    return out


def _link_add(sock, spec, kind, data, up):
    """Create link ``spec`` (:func:`_link_attrs`) of ``kind`` with IFLA_INFO_DATA ``data``
    (packed attributes) in one RTM_NEWLINK on ``sock``, administratively up with ``up``."""
    flags = IFF_UP if up else 0
    info = rtattr(IFLA_INFO_KIND, kind) + (rtattr(IFLA_INFO_DATA, data) if data else b"")
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flags, flags) + _link_attrs(spec) + rtattr(IFLA_LINKINFO, info)
    request(sock, body, RTM_NEWLINK, bytes, dump=False, ack=True, flags=NLM_F_CREATE | NLM_F_EXCL)


def veth_add(sock, end, peer, up=True):
    """Create a veth pair in one RTM_NEWLINK on ``sock`` (a :func:`raw_socket`), as
    ``ip link add ... type veth peer ...`` asks. ``end`` and ``peer``: {ifname, mtu, group,
    optional address (MAC), master (an ifindex, ``end`` only), net_ns_fd (``peer`` only: the
    namespace it goes to)}; ``end`` is set up in the same message with ``up``. NetlinkError
    when the kernel refuses (EEXIST, EOPNOTSUPP without veth)."""
    peer_info = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _link_attrs(peer)
    _link_add(sock, end, "veth", rtattr(VETH_INFO_PEER, peer_info), up)


#: IFLA_BR_ attributes of :func:`bridge_add` (linux/if_link.h), each a u8.
IFLA_BR_MCAST_SNOOPING = 23
IFLA_BR_MCAST_QUERIER = 25


def bridge_add(sock, spec, mcast_snooping, mcast_querier):
    """Create bridge ``spec`` ({ifname, optional mtu, group}) up, with multicast snooping and
    querier on or off (bool), in one RTM_NEWLINK on ``sock`` (a :func:`raw_socket`), as
    ``ip link add NAME up type bridge mcast_snooping S mcast_querier Q`` asks. NetlinkError
    when the kernel refuses (EEXIST)."""
    data = b"".join(_RTATTR.pack(_RTATTR.size + 1, kind) + struct.pack("=B3x", int(bool(on)))
                    for kind, on in ((IFLA_BR_MCAST_SNOOPING, mcast_snooping),
                                     (IFLA_BR_MCAST_QUERIER, mcast_querier)))
    _link_add(sock, spec, "bridge", data, True)


#: RTM_GETNSID's answer and the NETNSA_ attributes of :func:`netnsid` (linux/net_namespace.h).
RTM_NEWNSID = 88
NETNSA_NSID = 1
NETNSA_FD = 3


def netnsid(sock, fd):
    """The id under which the namespace of ``sock`` (a :func:`raw_socket`) sees the network
    namespace open as ``fd`` (IFLA_LINK_NETNSID's numbering), None when it has none. One
    RTM_GETNSID (an ``rtgenmsg`` and NETNSA_FD), its answer's NETNSA_NSID read directly."""
    body = struct.pack("=Bxxx", socket.AF_UNSPEC) + rtattr(NETNSA_FD, fd)
    answer = request(sock, body, RTM_GETNSID, bytes, dump=False)
    nsid = None
    if answer is not None and _NLMSGHDR.unpack_from(answer)[1] == RTM_NEWNSID:
        nsid = _u32(_message_attrs(answer, 4, (NETNSA_NSID,)).get(NETNSA_NSID))
    return None if nsid in (None, 4294967295) else nsid  # -1 (u32): NETNSA_NSID_NOT_ASSIGNED


def namespace_fd(name):
    """An open fd of /run/netns/NAME (caller closes), for IFLA_NET_NS_FD."""
    return os.open(_path(name), os.O_RDONLY | os.O_CLOEXEC)


def sysctl_path(key):
    """/proc/sys path of a dotted sysctl key, e.g. net.ipv4.ip_forward."""
    if not key or "/" in key or ".." in key:
        raise NetnsError("invalid sysctl key %r" % key)
    return "/proc/sys/" + key.replace(".", "/")


def sysctl_read(name, key):
    """The value of sysctl ``key`` inside namespace ``name`` (str), None if absent."""
    with entered(name):
        try:
            with open(sysctl_path(key)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None


def sysctl_write(name, key, value):
    """Write sysctl ``key`` = ``value`` inside namespace ``name``."""
    with entered(name):
        try:
            with open(sysctl_path(key), "w") as f:
                f.write(str(value))
        except FileNotFoundError:
            raise NetnsError("sysctl %s does not exist in namespace %s" % (key, name))


def _conf_path(ifname, key, family):
    if "/" in ifname or ifname in (".", "..") or "/" in key or family not in ("ipv4", "ipv6"):
        raise NetnsError("invalid interface %r, key %r or family %r" % (ifname, key, family))
    return "/proc/sys/net/%s/conf/%s/%s" % (family, ifname, key)


def conf_write(name, ifname, key, value, family="ipv4"):
    """Write ``net/<family>/conf/<ifname>/<key>`` inside namespace ``name`` (ifname may hold
    dots; ``family`` is ``ipv4`` or ``ipv6``)."""
    path = _conf_path(ifname, key, family)
    with entered(name):
        with open(path, "w") as f:
            f.write(str(value))


def conf_read(name, ifname, key, family="ipv4"):
    """The value (str) of ``net/<family>/conf/<ifname>/<key>`` inside namespace ``name``;
    None when the interface (or its IPv6 configuration) does not exist."""
    path = _conf_path(ifname, key, family)
    with entered(name):
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None


def raise_open_files(wanted):
    """Raise this process's soft limit of open files towards ``wanted`` (up to the hard
    limit); return the limit in force. A login over SSH often starts with a soft limit of
    1024 while the hard one is far higher, and a lab of 1000 namespaces needs about 4000
    descriptors (see :class:`Sockets`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    return soft


#: open descriptors one pyroute2 0.9 IPRoute holds: its netlink socket, and its own asyncio
#: event loop's epoll descriptor and self-pipe (measured: 4.0 per instance)
FDS_PER_SOCKET = 4


class Sockets(object):
    """One IPRoute socket per namespace, opened on first use and closed together.
    Each holds :data:`FDS_PER_SOCKET` descriptors; the soft limit of open files is raised as
    they grow (:func:`raise_open_files`), so a build host's login limit of 1024 does not
    stop a lab of a few hundred namespaces.

    Use as a context manager::

        with Sockets() as socks:
            ipr = socks.get("topo-lab-h1")
    """

    def __init__(self):
        self._open = {}
        self._raw = {}

    def _room(self):
        n = len(self._open) + len(self._raw)
        if n % 64 == 0:  # room for the next 64, and 256 to spare
            raise_open_files(FDS_PER_SOCKET * (n + 64) + 256)

    def get(self, name):
        """The socket for namespace ``name``; NetnsError if it does not exist."""
        ipr = self._open.get(name)
        if ipr is None:
            self._room()
            with entered(name):
                ipr = IPRoute()
            self._open[name] = ipr
        return ipr

    def raw(self, name):
        """A plain netlink socket in namespace ``name`` (:func:`raw_socket`), for the reads
        (:func:`link_dump`, :func:`address_dump`, :func:`route_dump`, :func:`netnsid`): a
        no-op re-apply reads every namespace and changes none, so it opens no ``IPRoute``
        there. NetnsError if the namespace does not exist."""
        sock = self._raw.get(name)
        if sock is None:
            self._room()
            sock = self._raw[name] = raw_socket(name)
        return sock

    def adopt(self, name, sock):
        """Keep ``sock``, a plain netlink socket opened in namespace ``name``, as its
        :meth:`raw` socket (:func:`create_namespace` hands over the one it made)."""
        self._room()
        old = self._raw.pop(name, None)
        if old is not None:
            old.close()
        self._raw[name] = sock

    def forget(self, name):
        """Close the sockets of a namespace that is about to be deleted."""
        ipr = self._open.pop(name, None)
        if ipr is not None:
            ipr.close()
        sock = self._raw.pop(name, None)
        if sock is not None:
            sock.close()

    def close(self):
        for ipr in self._open.values():
            ipr.close()
        for sock in self._raw.values():
            sock.close()
        self._open = {}
        self._raw = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def link_summary(msg):
    """Flatten an RTM_NEWLINK message into a plain dict of what topo compares.

    Keys: index, ifname, kind (None for plain devices), alias, mtu, master (ifindex
    or None), up (administratively), peer (IFLA_LINK: the peer's ifindex for a
    veth), peer_netnsid (IFLA_LINK_NETNSID: the peer's namespace as this namespace
    numbers it, None when the peer is in the same namespace), mac, group, qdisc (the
    kind of its root qdisc, e.g. noqueue, netem, tbf), and for bridges
    mcast_snooping/mcast_querier (0/1).
    """
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    data = info.get_attr("IFLA_INFO_DATA") if info else None
    out = {
        "index": msg["index"],
        "ifname": msg.get_attr("IFLA_IFNAME"),
        "kind": kind,
        "alias": msg.get_attr("IFLA_IFALIAS"),
        "mtu": msg.get_attr("IFLA_MTU"),
        "master": msg.get_attr("IFLA_MASTER"),
        "up": bool(msg["flags"] & IFF_UP),
        "peer": msg.get_attr("IFLA_LINK"),
        "peer_netnsid": msg.get_attr("IFLA_LINK_NETNSID"),
        "mac": msg.get_attr("IFLA_ADDRESS"),
        "group": msg.get_attr("IFLA_GROUP"),
        "qdisc": msg.get_attr("IFLA_QDISC"),
    }
    if kind == "bridge" and data is not None:
        out["mcast_snooping"] = data.get_attr("IFLA_BR_MCAST_SNOOPING")
        out["mcast_querier"] = data.get_attr("IFLA_BR_MCAST_QUERIER")
    elif kind == "vxlan" and data is not None:
        ports = data.get_attr("IFLA_VXLAN_PORT_RANGE") or {}
        out.update(local=data.get_attr("IFLA_VXLAN_LOCAL") or data.get_attr("IFLA_VXLAN_LOCAL6"),
                   remote=data.get_attr("IFLA_VXLAN_GROUP") or data.get_attr("IFLA_VXLAN_GROUP6"),
                   vni=data.get_attr("IFLA_VXLAN_ID"), dstport=data.get_attr("IFLA_VXLAN_PORT"),
                   learning=bool(data.get_attr("IFLA_VXLAN_LEARNING")), ttl=data.get_attr("IFLA_VXLAN_TTL") or 0,
                   srcport=[ports.get("low", 0), ports.get("high", 0)])
    elif kind in ("gre", "gretap") and data is not None:
        flags = data.get_attr("IFLA_GRE_IFLAGS") or 0
        out.update(local=data.get_attr("IFLA_GRE_LOCAL"), remote=data.get_attr("IFLA_GRE_REMOTE"),
                   ttl=data.get_attr("IFLA_GRE_TTL") or 0,
                   key=data.get_attr("IFLA_GRE_IKEY") if flags & GRE_KEY else None)
    elif kind in ("ip6gre", "ip6gretap") and data is not None:
        flags = socket.ntohs(data.get_attr("IFLA_IP6GRE_IFLAGS") or 0)  # pyroute2 decodes it in host order
        out.update(local=data.get_attr("IFLA_IP6GRE_LOCAL"), remote=data.get_attr("IFLA_IP6GRE_REMOTE"),
                   ttl=data.get_attr("IFLA_IP6GRE_TTL") or 0,
                   key=data.get_attr("IFLA_IP6GRE_IKEY") if flags & GRE_KEY else None)
    return out


#: The IFLA_ attributes :func:`quick_link_summary` reads (linux/if_link.h): number -> (key,
#: how it is decoded: ``s`` a NUL-terminated string, ``I`` u32, ``i`` s32, ``mac`` 6 bytes).
_QUICK = {1: ("mac", "mac"), 3: ("ifname", "s"), 4: ("mtu", "I"), 5: ("peer", "I"), 6: ("qdisc", "s"),
          10: ("master", "I"), 20: ("alias", "s"), 27: ("group", "I"), 37: ("peer_netnsid", "i")}
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
#: Link kinds :func:`quick_link_summary` reads itself: those :func:`link_summary` reads no
#: kind-specific data of (a plain device has no kind), and bridges, whose two multicast
#: switches it reads from IFLA_INFO_DATA (IFLA_BR_MCAST_SNOOPING, IFLA_BR_MCAST_QUERIER: u8).
QUICK_KINDS = (None, "veth", "bridge")
#: The attribute types :func:`quick_link_summary` reads: at the top, in IFLA_LINKINFO, and
#: in a bridge's IFLA_INFO_DATA.
_QUICK_READ = frozenset(_QUICK) | {IFLA_LINKINFO}
_LINKINFO_READ = frozenset((IFLA_INFO_KIND, IFLA_INFO_DATA))
_BRIDGE_READ = frozenset((IFLA_BR_MCAST_SNOOPING, IFLA_BR_MCAST_QUERIER))


def _string(raw):
    """An NLA string as pyroute2's ``asciiz`` gives it: NULs stripped, UTF-8 decoded (bytes
    kept when it is not UTF-8)."""
    raw = raw.strip(b"\0")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _first(pairs):
    """{type: payload} of :func:`rtattrs` pairs, the first of each type (as pyroute2's
    ``get_attr``)."""
    out = {}
    for atype, body in pairs:
        out.setdefault(atype, body)
    return out


def quick_link_summary(data):
    """:func:`link_summary` of one RTM_NEWLINK message given as bytes, read straight from
    the attributes it needs, without decoding the rest (the statistics and per-family
    configuration that make up most of a link message); None when the link is not of
    :data:`QUICK_KINDS` or an attribute is not as expected, where the caller decodes it
    fully. The same dict, key for key and value for value (tests/modules/test_netns.py
    compares both on real links)."""
    length = _NLMSGHDR.unpack_from(data)[0]
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, _NLMSGHDR.size)
    out = {"index": index, "kind": None, "up": bool(flags & IFF_UP)}
    for key, _ in _QUICK.values():
        out.setdefault(key, None)
    seen = set()
    try:
        for nla_type, body in rtattrs(data, _NLMSGHDR.size + _IFINFOMSG.size, length, _QUICK_READ):
            if nla_type in seen:
                continue
            seen.add(nla_type)
            if nla_type in _QUICK:
                key, how = _QUICK[nla_type]
                if how == "s":
                    out[key] = _string(body)
                elif how == "mac":
                    if len(body) != 6:
                        return None
                    out[key] = ":".join("%02x" % b for b in body)
                else:
                    if len(body) < 4:
                        return None
                    out[key] = struct.unpack_from("=" + how, body, 0)[0]
            elif nla_type == IFLA_LINKINFO:
                info = _first(rtattrs(body, 0, len(body), _LINKINFO_READ))
                out["kind"] = _string(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None
                if out["kind"] == "bridge":
                    if IFLA_INFO_DATA not in info:
                        return None
                    switches = _first(rtattrs(info[IFLA_INFO_DATA], 0, len(info[IFLA_INFO_DATA]), _BRIDGE_READ))
                    if any(len(switches.get(t, b"")) < 1 for t in _BRIDGE_READ):
                        return None
                    out["mcast_snooping"] = switches[IFLA_BR_MCAST_SNOOPING][0]
                    out["mcast_querier"] = switches[IFLA_BR_MCAST_QUERIER][0]
    except ValueError:
        return None
    if out["kind"] not in QUICK_KINDS:
        return None
    return out


def links_by_name(ipr):
    """{ifname: link_summary} of every link visible to socket ``ipr`` (an ``IPRoute``, or a
    plain netlink socket: :func:`raw_socket`, whose messages are read by
    :func:`quick_link_summary` where it can)."""
    if not isinstance(ipr, socket.socket):
        return {s["ifname"]: s for s in (link_summary(m) for m in ipr.get_links())}
    out = {}
    for data in link_dump(ipr, raw=True):
        summary = link_reading(data)
        out[summary["ifname"]] = summary
    return out


def link_reading(data):
    """:func:`link_summary` of one RTM_NEWLINK message given as bytes: read by
    :func:`quick_link_summary` where it can, else decoded whole by pyroute2."""
    summary = quick_link_summary(data)
    if summary is None:
        msg = ifinfmsg(data)
        msg.decode()
        summary = link_summary(msg)
    return summary


def ipv4_addresses(ipr, index=None):
    """[(index, 'a.b.c.d/len')] of IPv4 addresses, optionally of one interface."""
    return [(i, cidr) for i, cidr, _ in address_records(ipr, index, families=(socket.AF_INET,))]


def ip_addresses(ipr, index=None):
    """[(index, cidr)] of the IPv4 and IPv6 addresses topo compares (IPv4 first, each in
    kernel order), optionally of one interface: every IPv4 address, and every IPv6 address
    but the kernel's own (:func:`kernel_made`: link-local, autoconfigured). ``lo``'s
    127.0.0.1/8 and ::1/128 are included."""
    return [(i, cidr) for i, cidr, _ in address_records(ipr, index)]


def address_flags(msg):
    """The flags of a pyroute2 RTM_NEWADDR message: the 32-bit IFA_FLAGS attribute when the
    kernel sends it (it does since 3.14), else the 8-bit ifa_flags."""
    flags = msg.get_attr("IFA_FLAGS")
    return msg["flags"] if flags is None else flags


def kernel_made(family, cidr, flags):
    """True for an IPv6 address the kernel makes by itself, which topo neither declares nor
    removes: a link-local address (fe80::/10, one per interface, from its MAC) or one
    without IFA_F_PERMANENT (stateless autoconfiguration from a router advertisement,
    privacy addresses). Always False for IPv4."""
    if family != socket.AF_INET6:
        return False
    return ip_interface(cidr).ip.is_link_local or not flags & IFA_F_PERMANENT


def address_records(ipr, index=None, families=(socket.AF_INET, socket.AF_INET6)):
    """[(index, cidr, record)] of the addresses of ``families`` seen by socket ``ipr`` (an
    ``IPRoute``, or a plain netlink socket: :func:`raw_socket`; all
    interfaces, or the one of ifindex ``index``), one family after the other in kernel
    order, without the kernel's own IPv6 addresses (:func:`kernel_made`). ``record`` is an
    :func:`address_record` dict (family, flags, broadcast, ...), from either socket."""
    if isinstance(ipr, socket.socket):
        records = [a for a in address_dump(ipr) if a["family"] in families and index in (None, a["index"])]
    else:
        records = [{"family": m["family"], "prefixlen": m["prefixlen"], "index": m["index"],
                    "flags": address_flags(m), "scope": m["scope"], "address": m.get_attr("IFA_ADDRESS"),
                    "broadcast": m.get_attr("IFA_BROADCAST")}
                   for family in families for m in ipr.get_addr(
                       **dict(family=family, **({} if index is None else {"index": index})))]
    out = []
    for a in records:
        cidr = "%s/%d" % (a["address"], a["prefixlen"])
        if not kernel_made(a["family"], cidr, a["flags"]):
            out.append((a["index"], cidr, a))
    return out


def translate(exc, what, kind=None):
    """Turn a NetlinkError into a NetnsError whose message says what failed."""
    code = getattr(exc, "code", 0)
    if code == errno.EOPNOTSUPP and kind:
        return KernelFeatureMissing(kind)
    name = errno.errorcode.get(code, str(code))
    return NetnsError("%s: %s (%s)" % (what, os.strerror(code) if code else exc, name))


class Changes(object):
    """What a module did (or would do, in check mode), for result, diff and plan.

    Each item is ``{"action": "create"|"fix"|"remove", "resource": str,
    "name": str, "detail": str}``. ``before``/``after`` lines build Ansible's diff.
    """

    def __init__(self, resource):
        self.resource = resource
        self.items = []
        self.extra = {}
        self._before = []
        self._after = []

    def add(self, action, name, detail="", before=None, after=None):
        self.items.append({"action": action, "resource": self.resource,
                           "name": name, "detail": detail})
        if before is not None:
            self._before.append("%s %s: %s" % (self.resource, name, before))
        if after is not None:
            self._after.append("%s %s: %s" % (self.resource, name, after))

    @staticmethod
    def merge(parts):
        """The module result of one or more Changes: changed, changes, diff, counts per
        resource (``summary``), plus each part's ``extra`` keys."""
        items = [i for p in parts for i in p.items]
        res = {
            "changed": bool(items),
            "changes": items,
            "summary": dict((p.resource, len(p.items)) for p in parts),
            "diff": {
                "before": "".join(line + "\n" for p in parts for line in p._before),
                "after": "".join(line + "\n" for p in parts for line in p._after),
                "before_header": ", ".join(p.resource for p in parts),
                "after_header": ", ".join(p.resource for p in parts),
            },
        }
        for p in parts:
            res.update(p.extra)
        return res
