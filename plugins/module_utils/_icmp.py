# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: ICMP and ICMPv6 echo probing of many targets from many network namespaces at once.

This is topo's own verification engine, not a general-purpose pinger: what a ping check
needs (per source node and target, how many echo requests were answered and the average
round-trip time) done for every pair of a lab in one process, like ``fping``, but across
namespaces. On the 2-core reference machine the 2,450 pairs of a 50-node lab take well
under a second here, where one ``ping`` process per pair (or one Ansible module call per
node) took 16-31 s (issue 16).

How it works:

* per source namespace and address family, one raw socket (``SOCK_RAW``, ``IPPROTO_ICMP``
  or ``IPPROTO_ICMPV6``; needs root or CAP_NET_RAW) is created with the calling thread
  inside that namespace (:func:`._netns.entered`); a socket keeps the namespace it was
  created in, so all the sockets are then served from the home namespace by one
  ``selectors`` event loop. Raw rather than ``SOCK_DGRAM`` ping sockets: new namespaces
  start with ``net.ipv4.ping_group_range = 1 0``, which forbids those even to root.
* a kernel filter (``ICMP_FILTER``, ``ICMP6_FILTER``) lets only echo replies through, so
  the echo requests other sources send to this namespace never wake the loop.
* each request carries an identifier and sequence number unique to its socket; a reply is
  matched by them (as iputils ``ping`` does, not by its source address); duplicates count
  once. Round-trip times use the kernel's receive timestamp (``SO_TIMESTAMPNS``), so a busy
  loop does not inflate them.
* each request of a target is sent ``interval`` seconds after the one before, and none
  once the target has answered (``fping``'s default: requests after the first are retries of
  a lost one, so one answer is enough; with the default 3 requests 0.2 s apart, answering at
  once saves each target 0.4 s); sends are paced at :data:`BURST` per loop turn so that
  thousands of first requests do not overflow the receive backlog
  (``net.core.netdev_max_backlog``, 1000 by default) of the veths they cross. A target is
  done at its first answer, or ``timeout`` seconds after its last request was sent; its
  round-trip time is that first answer's. A request the kernel refuses at once (no route:
  ENETUNREACH, EHOSTUNREACH, EACCES...) counts as sent and unanswered, like a lost one; one
  it refuses for lack of room (a full neighbour table) is retried, and the silent targets
  probed again (:func:`rounds`).
"""

from __future__ import annotations

import array
import errno
import heapq
import os
import selectors
import socket
import struct
import time

from ansible_collections.topo.lab.plugins.module_utils._netns import NetnsError, entered, raise_open_files

#: Echo requests sent per loop turn at most before the loop reads replies again.
BURST = 64
#: Receive buffer of each socket, bytes (SO_RCVBUFFORCE as root; the default 208 KiB holds
#: only about 200 replies).
RCVBUF = 4 << 20
#: Bytes of payload after the 8-byte ICMP header (iputils ping's default is 56).
PAYLOAD = b"topo-ping".ljust(56, b".")

#: What :meth:`_Probe.send` did with a request.
SENT, FULL, REFUSED = "sent", "full", "refused"
#: errnos of a send the kernel refuses for now, retried (after :data:`RETRY` seconds, doubling
#: up to 1 s) for at most :data:`REFUSED_FOR` seconds before the target is reported as not
#: checked. EINVAL is what a send gets when the neighbour table is full: the table is shared
#: by all namespaces, holds ``net.ipv6.neigh.default.gc_thresh3`` entries (1024 by default;
#: IPv4's ``net.ipv4.neigh.default.gc_thresh3`` likewise) and frees an entry only 5 s after its
#: last use, so the 2,450 IPv6 pairs of a 50-node LAN need a few rounds of 5 s.
TRANSIENT = (errno.EINVAL, errno.ENOBUFS, errno.ENOMEM)
RETRY = 0.05
REFUSED_FOR = 30.0

_ICMP_ECHO_REPLY, _ICMP_ECHO = 0, 8
_ICMP6_ECHO, _ICMP6_ECHO_REPLY = 128, 129
_SOL_RAW = 255           # linux/socket.h
_ICMP_FILTER = 1         # linux/icmp.h, level SOL_RAW
_ICMP6_FILTER = 1        # linux/icmpv6.h, level IPPROTO_ICMPV6
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_TIMESPEC = struct.Struct("@qq")
_ECHO = struct.Struct("!BBHHH")


class Target(object):
    """One (source, address) pair being probed; ``sent``, ``received`` (0 or 1: the first
    answer ends it) and ``rtts`` (seconds) are its outcome."""

    __slots__ = ("address", "family", "sent", "received", "rtts", "probe", "done", "refused",
                 "retry", "error", "quota")

    def __init__(self, address, family):
        self.address, self.family = address, family
        self.sent, self.received, self.rtts = 0, 0, []
        self.probe = self.refused = self.error = None
        self.done = False
        self.retry = RETRY
        self.quota = 0   # requests to have sent by the end of this round, at most

    def rtt_ms(self):
        """Average round-trip time of the answers (there is one: the first ends the target)
        in milliseconds (3 decimals, as iputils prints it), or None when nothing answered."""
        return round(sum(self.rtts) / len(self.rtts) * 1000.0, 3) if self.rtts else None


def family_of(address):
    """socket.AF_INET or socket.AF_INET6 for an address without length; ValueError otherwise."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
            return family
        except (OSError, ValueError):
            continue
    raise ValueError("%r is not an IPv4 or IPv6 address" % (address,))


def checksum(data):
    """The Internet checksum (RFC 1071) of ``data`` (bytes), as a 16-bit number in host
    byte order: pack it with ``struct.pack("H", ...)``, since the sum is taken over words
    in host byte order too (RFC 1071 section 2(B))."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array.array("H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(family, ident, seq):
    """An ICMP (IPv4) or ICMPv6 echo request with ``ident`` and ``seq``; the kernel fills
    the ICMPv6 checksum (it covers the IPv6 pseudo-header), IPv4's is computed here."""
    if family == socket.AF_INET6:
        return _ECHO.pack(_ICMP6_ECHO, 0, 0, ident, seq) + PAYLOAD
    body = _ECHO.pack(_ICMP_ECHO, 0, 0, ident, seq) + PAYLOAD
    return body[:2] + struct.pack("H", checksum(body)) + body[4:]


def open_socket(netns, family):
    """A non-blocking raw ICMP/ICMPv6 socket created inside namespace ``netns`` (None: the
    current one), letting only echo replies through, with kernel receive timestamps.
    Raises NetnsError when the namespace does not exist, OSError when the socket cannot be
    made (not root)."""
    with entered(netns):
        if family == socket.AF_INET6:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        if family == socket.AF_INET6:
            blocked = [0xFFFFFFFF] * 8
            blocked[_ICMP6_ECHO_REPLY >> 5] &= ~(1 << (_ICMP6_ECHO_REPLY & 31)) & 0xFFFFFFFF
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *blocked))
        else:
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~(1 << _ICMP_ECHO_REPLY) & 0xFFFFFFFF))
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Probe(object):
    """One socket (a source namespace and family) and the requests in flight on it."""

    def __init__(self, sock, family):
        self.sock, self.family = sock, family
        self.base = (os.getpid() * 31 + sock.fileno() * 7919) & 0xFFFF
        self.next = 0
        self.pending = {}   # (ident, seq) -> (target, send time)

    def send(self, target, now):
        """Send the next request of ``target``: :data:`SENT` (also when the kernel refused it
        for good: no route...), :data:`FULL` when the socket's buffer is full (read, then try
        again), :data:`REFUSED` when the kernel refused it for now (see :data:`TRANSIENT`)."""
        n = self.next
        ident, seq = (self.base + (n >> 16)) & 0xFFFF, n & 0xFFFF
        dest = (target.address, 0) if self.family == socket.AF_INET else (target.address, 0, 0, 0)
        wall = time.time()
        try:
            self.sock.sendto(echo_request(self.family, ident, seq), dest)
        except (BlockingIOError, InterruptedError):
            return FULL
        except OSError as exc:
            if exc.errno in TRANSIENT:
                if target.refused is None:
                    target.refused = (now, exc)
                return REFUSED
            wall = None  # refused at once (no route, ...): sent, never answered
        self.next += 1
        target.sent += 1
        target.refused = None
        if wall is not None:
            self.pending[(ident, seq)] = (target, wall)
        return SENT

    def receive(self):
        """Read every reply waiting on the socket and credit its target (unless the target
        is already done: answered, or timed out); an answered target is done."""
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            arrived = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(value)
                    arrived = sec + nsec / 1e9
            if self.family == socket.AF_INET:
                if not data:
                    continue
                data = data[(data[0] & 0x0F) * 4:]
                reply_type = _ICMP_ECHO_REPLY
            else:
                reply_type = _ICMP6_ECHO_REPLY
            if len(data) < _ECHO.size:
                continue
            kind, _code, _sum, ident, seq = _ECHO.unpack_from(data)
            entry = self.pending.pop((ident, seq), None) if kind == reply_type else None
            if entry is None:
                continue  # another program's reply, or a duplicate
            target, sent_at = entry
            if target.done:
                continue
            target.received += 1
            target.rtts.append(max(0.0, (arrived or time.time()) - sent_at))
            target.done = True


def probe(sources, count=3, interval=0.2, timeout=2.0):
    """Ping every target of every source at once; return, per source, one dict per target
    ``{sent, received, rtt_ms, error}`` in the order given.

    ``sources``: ``[(netns or None, [address, ...]), ...]``; addresses IPv4 or IPv6 without
    length. At most ``count`` requests per target, ``interval`` seconds apart, none after
    its first answer; ``timeout`` seconds to wait for an answer after the last one. ``error`` is None, or why the target was not
    checked: its source could not probe at all (its namespace does not exist, a socket could
    not be made; ``sent == 0``), or the kernel kept refusing its requests (see
    :data:`TRANSIENT`). Sources are probed in groups small enough for the open-file
    limit (two sockets each at most).
    """
    count, interval, timeout = max(1, int(count)), max(0.0, float(interval)), max(0.0, float(timeout))
    limit = raise_open_files(2 * len(sources) + 64)
    group = max(1, (limit - 64) // 2)
    out = []
    for start in range(0, len(sources), group):
        out += _probe_group(sources[start:start + group], count, interval, timeout)
    return out


def _probe_group(sources, count, interval, timeout):
    targets, errors, probes = [], [], []
    selector = selectors.DefaultSelector()
    try:
        for netns, addresses in sources:
            mine, error, sockets = [], None, {}
            for address in addresses:
                target = Target(address, None)
                try:
                    target.family = family_of(address)
                except ValueError as exc:
                    target.error = str(exc)   # this target only
                mine.append(target)
            try:
                for family in sorted({t.family for t in mine if t.family is not None}):
                    sockets[family] = _Probe(open_socket(netns, family), family)
            except (NetnsError, OSError) as exc:
                error = "cannot ping from %s: %s" % (netns or "this namespace", exc)
                for p in sockets.values():
                    p.sock.close()
                sockets = {}
            for p in sockets.values():
                probes.append(p)
                selector.register(p.sock, selectors.EVENT_READ, p)
            for t in mine:
                t.probe = sockets.get(t.family)
            targets.append(mine)
            errors.append(error)
        rounds(selector, [t for mine in targets for t in mine if t.probe is not None], count, interval, timeout)
    finally:
        for p in probes:
            selector.unregister(p.sock)
            p.sock.close()
        selector.close()
    return [[{"sent": t.sent, "received": t.received, "rtt_ms": t.rtt_ms(), "error": error or t.error}
             for t in mine]
            for mine, error in zip(targets, errors)]


def rounds(selector, targets, count, interval, timeout):
    """Probe ``targets`` (``count`` requests each at most); while the kernel refused requests for
    lack of room (:data:`TRANSIENT`) in a round, probe the targets that have not answered yet
    again (``count`` more requests each), for at most :data:`REFUSED_FOR` seconds: a full
    neighbour table also drops the replies of the targets that could not make an entry for
    the source, silently, so a silent target is only known to be silent after a round that
    had room for everyone."""
    start = time.monotonic()
    todo = targets
    while todo:
        for t in todo:
            t.quota, t.done = t.sent + count, False
        pressure = _loop(selector, todo, interval, timeout)
        todo = [t for t in todo if t.received == 0 and t.error is None]
        if not pressure:
            return
        if time.monotonic() - start >= REFUSED_FOR:
            for t in todo:
                t.error = ("not answered while the kernel refused requests for lack of room (a full "
                           "neighbour table: see sysctl net.ipv%s.neigh.default.gc_thresh3)"
                           % ("6" if t.family == socket.AF_INET6 else "4"))
            return


def _loop(selector, targets, interval, timeout):
    """One round of the event loop: send each request when due (paced), read replies, until
    every target was answered, or sent its quota and ``timeout`` seconds passed since its
    last request. True when the kernel refused some request for now."""
    start = time.monotonic()
    pressure = False
    due = [(start, i) for i in range(len(targets))]      # (monotonic time, target index)
    deadlines = []                                        # (monotonic time, target index)
    while True:
        now = time.monotonic()
        sent, full = 0, False
        while due and due[0][0] <= now and sent < BURST:
            i = due[0][1]
            t = targets[i]
            if t.done:    # answered meanwhile: no more requests
                heapq.heappop(due)
                continue
            what = t.probe.send(t, now)
            if what == FULL:
                full = True   # read first, retry on the next turn
                break
            heapq.heappop(due)
            if what == REFUSED:
                pressure = True
                since, exc = t.refused
                if now - since < REFUSED_FOR:
                    heapq.heappush(due, (now + t.retry, i))
                    t.retry = min(1.0, t.retry * 2)
                    continue
                t.error = "the kernel refused the echo requests to %s for %.0f s (%s)%s" % (
                    t.address, now - since, exc.strerror,
                    "; the neighbour table may be full: see sysctl net.ipv%s.neigh.default.gc_thresh3"
                    % ("6" if t.family == socket.AF_INET6 else "4") if exc.errno == errno.EINVAL else "")
                t.done = True
                continue
            t.retry = RETRY
            sent += 1
            if t.sent < t.quota:
                heapq.heappush(due, (now + interval, i))
            else:
                heapq.heappush(deadlines, (now + timeout, i))
        now = time.monotonic()
        while deadlines and (deadlines[0][0] <= now or targets[deadlines[0][1]].done):
            targets[heapq.heappop(deadlines)[1]].done = True
        while due and targets[due[0][1]].done:   # answered: its next request is not sent
            heapq.heappop(due)
        if not due and not deadlines:
            return pressure
        if full or (due and due[0][0] <= now):
            wait = 0.0
        else:
            wait = min(heap[0][0] for heap in (due, deadlines) if heap) - now
        for key, _events in selector.select(max(0.0, wait)):
            key.data.receive()
