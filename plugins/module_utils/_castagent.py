# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""The cast agent: a small program that runs INSIDE a lab node for topo.lab.cast.

Standard library only (Python 3.7 or newer; the node image has 3.11); it imports nothing of
Ansible or topo, because it runs with the node's own ``python3``. The build host ships its
source text and starts it as::

    ip netns exec NETNS python3 -c SOURCE ARGS        # a namespace node
    docker exec -i CONTAINER python3 -c SOURCE ARGS   # a docker node

ARGS is one JSON object (or ``-``: the object is the first line of stdin, for arguments
too long for argv). Keys, all roles::

    role     "recv" | "send" | "serve" | "relay"
    family   4 (default) | 6: the address family of every socket (AF_INET / AF_INET6);
             over IPv6 every address below is an IPv6 address and ``ttl`` is the hop limit
    node     the node's name (acks and anycast answers carry it; reports name it)
    timeout  seconds (float): a TCP connect/read, or an answer, waits at most this long
    life     seconds (float): the agent reports and exits after this long, whatever
             happens (default 60), so it never outlives its orchestrator for long

recv (a listener: unicast/broadcast receiver, multicast member or silent node)::

    proto "udp" | "tcp"; port; bind (address, "" = any);
    groups [{"group": "224.1.1.1", "interface": "a.b.c.d" | null}]  joined with
           IP_ADD_MEMBERSHIP on that interface address (null: the kernel picks); over
           IPv6 (groups ff00::/8) IPV6_JOIN_GROUP on the interface that has that address
           (its index, read from /proc/net/if_inet6 in the node; an interface name works
           too), which sends the MLD report;
    ack (bool): answer each datagram with a unicast ack to its source address/port,
           the JSON ``{"ack": node, "round": n, "sha256": hex}``;
    segments [lengths]: (tcp) how the sender's stream is cut into payloads, for
           the per-payload hashes of each connection.
    Every UDP socket has IP_MULTICAST_ALL 0 (IPv6: IPV6_MULTICAST_ALL 0, and
    IPV6_V6ONLY): it gets only the groups it joined itself.

send (a sender, an anycast client)::

    proto; mode "unicast" | "broadcast" | "multicast"; address; port; bind (source
    address, "" = the kernel's choice); payloads [base64]; ttl and interface
    (multicast: IP_MULTICAST_TTL and IP_MULTICAST_IF; over IPv6 IPV6_MULTICAST_HOPS and
    IPV6_MULTICAST_IF with the index of the interface that has that address, which a
    link-scope group such as ff02::/16 needs); gap (seconds between datagrams). Broadcast
    is IPv4-only: mode "broadcast" with family 6 is refused.
    UDP: the socket stays open after sending and records every datagram that comes back
    (acks, anycast answers). TCP: one connection per round, the payloads written in
    order, then the write side shut and the peer's answer read until it closes.

serve (an anycast server)::

    address; port; protos ["tcp", "udp"]: answers each TCP connection (after the
    client's end of stream) and each UDP datagram with ``node`` (UTF-8).

relay::

    address; port (the UDP socket it receives on, bound to address:port);
    out_address; out_port: each datagram is resent, the same bytes, with SO_BROADCAST
    (IPv4; over IPv6 to a unicast address, or to a group - e.g. ff02::1, all nodes -
    out of the interface that has ``address``, like the limited broadcast).
    A limited broadcast (255.255.255.255) is sent from a socket bound to ``address``, so
    it leaves by the interface that has the relay's address (unbound, it would follow the
    default route, or fail without one); a directed broadcast follows the routes.

Protocol, one line each, UTF-8:

* stdout, while running: ``READY`` once bound (and joined); then events
  ``GOT {..}`` (a datagram, or a TCP stream at its end), ``REPLY {..}`` (a datagram or
  TCP answer back at a sender), ``SENT {..}`` (a sender finished a round),
  ``RELAYED {..}``, ``ROUND n`` and ``LEFT {..}`` (echoes of the commands);
* stdin, commands: ``ROUND n`` (datagrams received from now on count for round n),
  ``LEAVE`` (IP_DROP_MEMBERSHIP / IPV6_LEAVE_GROUP of every group), ``SEND n`` (send round n), ``STOP``;
  end of stdin is STOP too;
* stdout, at the end: ONE JSON document (a line starting with ``{``), the report::

    {"role", "node", "errors": [str], "received": [{"round", "src", "sport", "dst",
     "length", "sha256", "preview"}], "count": int, ...role-specific keys...}

  ``received`` keeps the first 1000 records; ``count`` counts them all. ``preview`` is
  the payload as text when it is short valid UTF-8, else null. A sender has no
  ``received``/``count``: it reports ``sent``, ``replies``, ``acks`` and ``acks_from``.

Exit status 0, or 2 when the agent could not set up (bad arguments, a bind that failed):
then it prints the report (with the error) and no READY.
"""

import base64
import errno
import hashlib
import json
import os
import select
import socket
import struct
import sys
import time

IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
# Linux values (include/uapi/linux/in6.h), for Pythons that lack the names
IPV6_MULTICAST_ALL = getattr(socket, "IPV6_MULTICAST_ALL", 29)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IF_INET6 = "/proc/net/if_inet6"
MAX_RECORDS = 1000
MAX_STREAM = 1 << 20
PREVIEW = 64
BUF = 65535


class Fatal(Exception):
    """The agent cannot do its job (reported before READY, exit 2)."""


def sha(data):
    return hashlib.sha256(data).hexdigest()


def preview(data):
    if len(data) > PREVIEW:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def emit(kind, obj=None):
    line = kind if obj is None else kind + " " + json.dumps(obj, separators=(",", ":"))
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):  # the orchestrator is gone: nobody to report to
        os._exit(3)


def err(exc):
    return str(exc) if isinstance(exc, (OSError, Fatal)) else "%s: %s" % (type(exc).__name__, exc)


def ifindex6(interface):
    """The index of the interface that has IPv6 address ``interface`` in this node (read
    from /proc/net/if_inet6: address in 32 hex digits, then the index in hex), or of the
    interface NAMED ``interface``; 0 for None. Fatal when there is none."""
    if not interface:
        return 0
    try:
        want = socket.inet_pton(socket.AF_INET6, interface)
    except (OSError, ValueError):
        try:
            return socket.if_nametoindex(interface)
        except OSError:
            raise Fatal("no interface %r in this node" % interface)
    try:
        with open(IF_INET6) as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and bytes.fromhex(words[0]) == want:
                    return int(words[1], 16)
    except OSError as exc:
        raise Fatal("cannot read %s: %s" % (IF_INET6, err(exc)))
    raise Fatal("no interface has %s in this node" % interface)


class Agent(object):
    def __init__(self, args):
        self.a = args
        self.role = args["role"]
        self.family = int(args.get("family") or 4)
        if self.family not in (4, 6):
            raise Fatal("family must be 4 or 6, got %r" % args.get("family"))
        self.af = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        self.node = args.get("node") or ""
        self.timeout = float(args.get("timeout", 2))
        self.deadline = time.monotonic() + float(args.get("life", 60))
        self.round = 1
        self.stop = False
        self.inbuf = b""
        self.handlers = {}  # fd -> (socket, handler(socket))
        self.report = {"role": self.role, "node": self.node, "errors": [],
                       "received": [], "count": 0}
        self.errors = self.report["errors"]
        self.streams = {}  # fd -> tcp stream state

    # -------------------------------------------------------------- plumbing
    def watch(self, sock, handler):
        sock.setblocking(False)
        self.handlers[sock.fileno()] = (sock, handler)

    def unwatch(self, sock):
        self.handlers.pop(sock.fileno(), None)

    def sendto(self, sock, data, target):
        """sendto on a non-blocking socket: waits (at most ``timeout``) while its buffer
        is full instead of failing with EAGAIN."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return sock.sendto(data, target)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                select.select([], [sock], [], left)

    def record(self, rec):
        self.report["count"] += 1
        if len(self.report["received"]) < MAX_RECORDS:
            self.report["received"].append(rec)

    def run(self):
        setup = getattr(self, "setup_" + self.role, None)
        if setup is None:
            raise Fatal("unknown role %r" % self.role)
        setup()
        emit("READY")
        self.commands()
        stdin = sys.stdin.fileno()
        while not self.stop:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.errors.append("stopped after its life of %s s" % self.a.get("life", 60))
                break
            fds = [stdin] + list(self.handlers)
            try:
                ready = select.select(fds, [], [], min(left, 1.0))[0]
            except InterruptedError:
                continue
            for fd in ready:
                if fd == stdin:
                    self.read_commands(stdin)
                elif fd in self.handlers:
                    sock, handler = self.handlers[fd]
                    try:
                        handler(sock)
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                            self.errors.append("%s: %s" % (handler.__name__, err(exc)))
                            if exc.errno in (errno.EBADF, errno.ENOTSOCK):
                                self.unwatch(sock)
        self.finish()
        return self.report

    def read_commands(self, fd):
        chunk = os.read(fd, 4096)
        if not chunk:
            self.stop = True
            return
        self.inbuf += chunk
        self.commands()

    def commands(self):
        while b"\n" in self.inbuf and not self.stop:
            line, self.inbuf = self.inbuf.split(b"\n", 1)
            words = line.decode("utf-8", "replace").split()
            if words:
                try:
                    self.command(words[0].upper(), words[1:])
                except ValueError:
                    self.errors.append("bad command %r" % " ".join(words))

    def command(self, cmd, rest):
        if cmd == "STOP":
            self.stop = True
        elif cmd == "ROUND" and rest:
            self.round = int(rest[0])
            emit("ROUND", self.round)
        elif cmd == "LEAVE":
            emit("LEFT", {"left": self.leave()})
        elif cmd == "SEND" and rest and self.role == "send":
            self.send_round(int(rest[0]))
        else:
            self.errors.append("unknown command %r" % " ".join([cmd] + rest))

    def finish(self):
        for fd in list(self.streams):
            self.end_stream(fd, cut=True)

    # -------------------------------------------------------------- udp receiving
    def socket(self, kind):
        """A socket of the agent's family; an IPv6 one is IPv6-only (no IPv4-mapped)."""
        s = socket.socket(self.af, kind)
        if self.family == 6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return s

    def udp_socket(self, bind, port, reuse=True):
        s = self.socket(socket.SOCK_DGRAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.family == 6:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        else:
            s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        try:
            s.bind((bind or "", int(port)))
        except OSError as exc:
            s.close()
            raise Fatal("bind %s:%s (udp): %s" % (bind or "*", port, err(exc)))
        return s

    def read_datagram(self, s):
        data, anc, flags, addr = s.recvmsg(BUF, socket.CMSG_SPACE(20))
        dst = None
        for level, kind, cdata in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 12:
                dst = socket.inet_ntoa(cdata[8:12])
            elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(cdata) >= 16:
                dst = socket.inet_ntop(socket.AF_INET6, cdata[:16])
        rec = {"round": self.round, "src": addr[0], "sport": addr[1], "dst": dst,
               "length": len(data), "sha256": sha(data), "preview": preview(data)}
        if flags & socket.MSG_TRUNC:
            rec["truncated"] = True
        return data, addr, rec

    # -------------------------------------------------------------- recv
    def setup_recv(self):
        a = self.a
        self.report.update(proto=a.get("proto", "udp"), port=a["port"], joined=[], left=[],
                           acks_sent=0)
        if a.get("proto") == "tcp":
            self.listen_tcp(a.get("bind") or "", a["port"])
            return
        self.sock = self.udp_socket(a.get("bind"), a["port"])
        self.memberships = []  # (group, level, option to leave, request)
        for g in a.get("groups") or []:
            iface = g.get("interface") or ("" if self.family == 6 else "0.0.0.0")
            try:
                if self.family == 6:
                    level, opts = socket.IPPROTO_IPV6, (socket.IPV6_JOIN_GROUP,
                                                        socket.IPV6_LEAVE_GROUP)
                    mreq = socket.inet_pton(socket.AF_INET6, g["group"]) + \
                        struct.pack("@I", ifindex6(iface))
                else:
                    level, opts = socket.IPPROTO_IP, (socket.IP_ADD_MEMBERSHIP,
                                                      socket.IP_DROP_MEMBERSHIP)
                    mreq = socket.inet_aton(g["group"]) + socket.inet_aton(iface)
                self.sock.setsockopt(level, opts[0], mreq)
            except (OSError, Fatal) as exc:
                self.errors.append("join %s on %s: %s" % (g["group"], iface or "-", err(exc)))
                continue
            self.memberships.append((g["group"], level, opts[1], mreq))
            self.report["joined"].append({"group": g["group"], "interface": g.get("interface")})
        self.watch(self.sock, self.on_datagram)

    def on_datagram(self, s):
        data, addr, rec = self.read_datagram(s)
        self.record(rec)
        emit("GOT", {"round": rec["round"], "src": rec["src"], "length": rec["length"],
                     "sha256": rec["sha256"]})
        if self.a.get("ack"):
            ack = json.dumps({"ack": self.node, "round": rec["round"], "sha256": rec["sha256"]},
                             sort_keys=True).encode("utf-8")
            try:
                self.sendto(s, ack, addr)
                self.report["acks_sent"] += 1
            except OSError as exc:
                self.errors.append("ack to %s:%s: %s" % (addr[0], addr[1], err(exc)))

    def leave(self):
        left = []
        for group, level, opt, mreq in getattr(self, "memberships", []):
            try:
                self.sock.setsockopt(level, opt, mreq)
                left.append(group)
            except OSError as exc:
                self.errors.append("leave %s: %s" % (group, err(exc)))
        self.memberships = []
        self.report.setdefault("left", []).extend(left)
        self.report["left_in_round"] = self.round
        return left

    # -------------------------------------------------------------- tcp receiving
    def listen_tcp(self, bind, port):
        s = self.socket(socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, int(port)))
            s.listen(64)
        except OSError as exc:
            s.close()
            raise Fatal("listen %s:%s (tcp): %s" % (bind or "*", port, err(exc)))
        self.watch(s, self.on_accept)
        return s

    def on_accept(self, s):
        conn, addr = s.accept()
        self.streams[conn.fileno()] = {"sock": conn, "addr": addr, "data": bytearray(),
                                       "hash": hashlib.sha256(), "length": 0,
                                       "round": self.round, "since": time.monotonic()}
        self.watch(conn, self.on_stream)

    def on_stream(self, conn):
        st = self.streams.get(conn.fileno())
        if st is None:
            return
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError as exc:
            st["error"] = err(exc)
            chunk = b""
        if not chunk:
            self.end_stream(conn.fileno())
            return
        st["hash"].update(chunk)
        st["length"] += len(chunk)
        if len(st["data"]) < MAX_STREAM:
            st["data"] += chunk[:MAX_STREAM - len(st["data"])]

    def end_stream(self, fd, cut=False):
        st = self.streams.pop(fd)
        conn = st["sock"]
        self.unwatch(conn)
        rec = {"round": st["round"], "src": st["addr"][0], "sport": st["addr"][1],
               "proto": "tcp", "length": st["length"], "sha256": st["hash"].hexdigest(),
               "preview": preview(bytes(st["data"])) if st["length"] <= PREVIEW else None}
        if cut:
            rec["error"] = "still open when the agent stopped"
        elif "error" in st:
            rec["error"] = st["error"]
        if "segments" in self.a:
            segments, data, at = [], bytes(st["data"]), 0
            for n in self.a["segments"] or []:
                if at >= len(data):
                    break
                segments.append({"length": len(data[at:at + n]), "sha256": sha(data[at:at + n])})
                at += n
            if at < len(data):
                segments.append({"length": len(data) - at, "sha256": sha(data[at:]), "extra": True})
            rec["segments"] = segments
        if self.role == "serve" and not cut:
            rec["answered"] = self.answer_tcp(conn)
            self.report["answered"]["tcp"] += int(rec["answered"])
        conn.close()
        self.record(rec)
        emit("GOT", {"round": rec["round"], "src": rec["src"], "proto": "tcp",
                     "length": rec["length"], "sha256": rec["sha256"]})

    def answer_tcp(self, conn):
        try:
            conn.setblocking(True)
            conn.settimeout(self.timeout)
            conn.sendall(self.node.encode("utf-8"))
            conn.shutdown(socket.SHUT_WR)
            return True
        except OSError as exc:
            self.errors.append("answer over tcp: %s" % err(exc))
            return False

    # -------------------------------------------------------------- send
    def setup_send(self):
        a = self.a
        self.payloads = [base64.b64decode(p) for p in a.get("payloads") or []]
        self.report.update(proto=a.get("proto", "udp"), mode=a.get("mode", "unicast"),
                           address=a["address"], port=a["port"], source=None, sent=[],
                           replies=[], acks=0, acks_from={})
        del self.report["received"], self.report["count"]  # a sender records replies
        if a.get("proto") == "tcp":
            return
        if a.get("mode") == "broadcast" and self.family == 6:
            raise Fatal("broadcast is IPv4-only; use multicast to ff02::1")
        s = self.socket(socket.SOCK_DGRAM)
        try:
            if a.get("mode") == "broadcast":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if a.get("mode") == "multicast" and self.family == 6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS,
                             int(a.get("ttl", 1)))
                if a.get("interface"):
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                                 ifindex6(a["interface"]))
            elif a.get("mode") == "multicast":
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, int(a.get("ttl", 1)))
                if a.get("interface"):
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton(a["interface"]))
            s.bind((a.get("bind") or "", 0))
        except OSError as exc:
            s.close()
            raise Fatal("udp socket (bind %s, interface %s): %s"
                        % (a.get("bind") or "*", a.get("interface") or "-", err(exc)))
        self.report["source"] = a.get("bind") or None
        self.sock = s
        self.watch(s, self.on_reply)

    def send_round(self, n):
        a = self.a
        entry = {"round": n, "sent": 0, "errors": []}
        self.round = n
        if a.get("proto") == "tcp":
            self.send_tcp(n, entry)
        else:
            for i, data in enumerate(self.payloads):
                if i and a.get("gap"):
                    time.sleep(float(a["gap"]))
                try:
                    self.sendto(self.sock, data, (a["address"], int(a["port"])))
                    entry["sent"] += 1
                except OSError as exc:
                    entry["errors"].append("sendto %s:%s: %s" % (a["address"], a["port"], err(exc)))
        self.report["sent"].append(entry)
        self.errors.extend(entry["errors"])
        emit("SENT", entry)

    def send_tcp(self, n, entry):
        a = self.a
        c = self.socket(socket.SOCK_STREAM)
        c.settimeout(self.timeout)
        step = "connect"
        try:
            if a.get("bind"):
                c.bind((a["bind"], 0))
            c.connect((a["address"], int(a["port"])))
            self.report["source"] = c.getsockname()[0]
            step = "send"
            for data in self.payloads:
                c.sendall(data)
                entry["sent"] += 1
            c.shutdown(socket.SHUT_WR)
            step = "read the answer"
            answer = bytearray()
            while len(answer) < MAX_STREAM:
                chunk = c.recv(65536)
                if not chunk:
                    break
                answer += chunk
            rec = {"round": n, "src": a["address"], "proto": "tcp", "length": len(answer),
                   "sha256": sha(bytes(answer)), "text": preview(bytes(answer))}
            self.report["replies"].append(rec)
            emit("REPLY", rec)
        except (OSError, socket.timeout) as exc:
            entry["errors"].append("%s %s:%s (tcp): %s" % (step, a["address"], a["port"], err(exc)))
        finally:
            c.close()

    def on_reply(self, s):
        data, addr, rec = self.read_datagram(s)
        del rec["preview"], rec["dst"]
        rec["text"] = None
        if len(data) <= 256:
            try:
                rec["text"] = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        rec["ack"] = None
        try:
            doc = json.loads(data.decode("utf-8"))
            if isinstance(doc, dict) and "ack" in doc:
                rec["ack"] = str(doc["ack"])
        except ValueError:
            pass
        if rec["ack"] is not None:
            self.report["acks"] += 1
            self.report["acks_from"][rec["ack"]] = self.report["acks_from"].get(rec["ack"], 0) + 1
        if len(self.report["replies"]) < MAX_RECORDS:
            self.report["replies"].append(rec)
        emit("REPLY", {"round": rec["round"], "src": rec["src"], "ack": rec["ack"],
                       "text": rec["text"] if rec["ack"] is None else None})

    # -------------------------------------------------------------- serve (anycast)
    def setup_serve(self):
        a = self.a
        self.report.update(address=a["address"], port=a["port"], protos=list(a["protos"]),
                           answered={"tcp": 0, "udp": 0})
        for proto in a["protos"]:
            if proto == "tcp":
                self.listen_tcp(a["address"], a["port"])
            else:
                self.watch(self.udp_socket(a["address"], a["port"]), self.on_request)

    def on_request(self, s):
        data, addr, rec = self.read_datagram(s)
        rec["proto"] = "udp"
        try:
            self.sendto(s, self.node.encode("utf-8"), addr)
            rec["answered"] = True
            self.report["answered"]["udp"] += 1
        except OSError as exc:
            rec["answered"] = False
            self.errors.append("answer to %s:%s: %s" % (addr[0], addr[1], err(exc)))
        self.record(rec)
        emit("GOT", {"round": rec["round"], "src": rec["src"], "proto": "udp",
                     "length": rec["length"], "sha256": rec["sha256"]})

    # -------------------------------------------------------------- relay
    def setup_relay(self):
        a = self.a
        self.report.update(address=a["address"], port=a["port"], out_address=a["out_address"],
                           out_port=a["out_port"], relayed=0)
        self.sock = self.udp_socket(a["address"], a["port"])
        out = self.socket(socket.SOCK_DGRAM)
        if self.family == 4:
            out.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        elif a["out_address"].lower().startswith("ff"):  # a group, e.g. ff02::1
            try:
                out.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex6(a["address"]))
            except Fatal:
                out.close()
                raise
        if a["out_address"] in ("255.255.255.255", "ff02::1"):
            try:
                out.bind((a["address"], 0))
            except OSError as exc:
                out.close()
                raise Fatal("bind %s (the relay's out socket): %s" % (a["address"], err(exc)))
        self.out = out
        self.watch(self.sock, self.on_relay)

    def on_relay(self, s):
        data, addr, rec = self.read_datagram(s)
        self.record(rec)
        emit("GOT", {"round": rec["round"], "src": rec["src"], "length": rec["length"],
                     "sha256": rec["sha256"]})
        a = self.a
        target = (a["out_address"], int(a["out_port"]))
        try:
            self.out.sendto(data, target)
            self.report["relayed"] += 1
            emit("RELAYED", {"round": rec["round"], "length": len(data), "sha256": rec["sha256"]})
        except OSError as exc:
            self.errors.append("relay to %s:%s: %s" % (target[0], target[1], err(exc)))


def read_line(fd):
    """The first line of ``fd`` (unbuffered, so later commands stay unread) and what
    came after it."""
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line.decode("utf-8"), rest


def main(argv):
    report = {"role": None, "node": None, "errors": [], "received": [], "count": 0}
    code = 0
    try:
        raw, rest = (argv[1], b"") if len(argv) > 1 and argv[1] != "-" \
            else read_line(sys.stdin.fileno())
        args = json.loads(raw)
        report.update(role=args.get("role"), node=args.get("node"))
        agent = Agent(args)
        agent.inbuf = rest
        report = agent.report
        agent.run()
    except Fatal as exc:
        report["errors"].append(str(exc))
        code = 2
    except (ValueError, KeyError, TypeError) as exc:
        report["errors"].append("bad arguments: %s" % err(exc))
        code = 2
    except Exception as exc:  # a bug: still one report, so the orchestrator can say what
        report["errors"].append("internal error: %s" % err(exc))
        code = 1
    sys.stdout.write(json.dumps(report, separators=(",", ":"), sort_keys=True) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
