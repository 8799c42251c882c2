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
    node     the node's name (acks and anycast answers carry it; reports name it)
    timeout  seconds (float): a TCP connect/read, or an answer, waits at most this long
    life     seconds (float): the agent reports and exits after this long, whatever
             happens (default 60), so it never outlives its orchestrator for long

recv (a listener: unicast/broadcast receiver, multicast member or silent node)::

    proto "udp" | "tcp"; port; bind (address, "" = any);
    groups [{"group": "224.1.1.1", "interface": "a.b.c.d" | null}]  joined with
           IP_ADD_MEMBERSHIP on that interface address (null: the kernel picks);
    ack (bool): answer each datagram with a unicast ack to its source address/port,
           the JSON ``{"ack": node, "round": n, "sha256": hex}``;
    segments [lengths]: (tcp) how the sender's stream is cut into payloads, for
           the per-payload hashes of each connection.
    Every UDP socket has IP_MULTICAST_ALL 0: it gets only the groups it joined itself.

send (a sender, an anycast client)::

    proto; mode "unicast" | "broadcast" | "multicast"; address; port; bind (source
    address, "" = the kernel's choice); payloads [base64]; ttl and interface
    (multicast: IP_MULTICAST_TTL and IP_MULTICAST_IF); gap (seconds between datagrams).
    UDP: the socket stays open after sending and records every datagram that comes back
    (acks, anycast answers). TCP: one connection per round, the payloads written in
    order, then the write side shut and the peer's answer read until it closes.

serve (an anycast server)::

    address; port; protos ["tcp", "udp"]: answers each TCP connection (after the
    client's end of stream) and each UDP datagram with ``node`` (UTF-8).

relay::

    address; port (the UDP socket it receives on, bound to address:port);
    out_address; out_port: each datagram is resent, the same bytes, with SO_BROADCAST.
    A limited broadcast (255.255.255.255) is sent from a socket bound to ``address``, so
    it leaves by the interface that has the relay's address (unbound, it would follow the
    default route, or fail without one); a directed broadcast follows the routes.

Protocol, one line each, UTF-8:

* stdout, while running: ``READY`` once bound (and joined); then events
  ``GOT {..}`` (a datagram, or a TCP stream at its end), ``REPLY {..}`` (a datagram or
  TCP answer back at a sender), ``SENT {..}`` (a sender finished a round),
  ``RELAYED {..}``, ``ROUND n`` and ``LEFT {..}`` (echoes of the commands);
* stdin, commands: ``ROUND n`` (datagrams received from now on count for round n),
  ``LEAVE`` (IP_DROP_MEMBERSHIP of every group), ``SEND n`` (send round n), ``STOP``;
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
import sys
import time

IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
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
    return "%s: %s" % (type(exc).__name__, exc) if not isinstance(exc, OSError) else str(exc)


class Agent(object):
    def __init__(self, args):
        self.a = args
        self.role = args["role"]
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
    def udp_socket(self, bind, port, reuse=True):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        try:
            s.bind((bind or "", int(port)))
        except OSError as exc:
            s.close()
            raise Fatal("bind %s:%s (udp): %s" % (bind or "*", port, err(exc)))
        return s

    def read_datagram(self, s):
        data, anc, flags, addr = s.recvmsg(BUF, socket.CMSG_SPACE(12))
        dst = None
        for level, kind, cdata in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 12:
                dst = socket.inet_ntoa(cdata[8:12])
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
        self.memberships = []
        for g in a.get("groups") or []:
            iface = g.get("interface") or "0.0.0.0"
            mreq = socket.inet_aton(g["group"]) + socket.inet_aton(iface)
            try:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            except OSError as exc:
                self.errors.append("join %s on %s: %s" % (g["group"], iface, err(exc)))
                continue
            self.memberships.append(mreq)
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
        for mreq in getattr(self, "memberships", []):
            group = socket.inet_ntoa(mreq[:4])
            try:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreq)
                left.append(group)
            except OSError as exc:
                self.errors.append("leave %s: %s" % (group, err(exc)))
        self.memberships = []
        self.report.setdefault("left", []).extend(left)
        self.report["left_in_round"] = self.round
        return left

    # -------------------------------------------------------------- tcp receiving
    def listen_tcp(self, bind, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if a.get("mode") == "broadcast":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if a.get("mode") == "multicast":
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
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if a["out_address"] == "255.255.255.255":
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
