"""A TCP proxy in front of the server whose faults the soak switches on for
short windows. Every worker and reaper talks to the server through it.

Modes (`set_mode`): None forwards everything; "drop" closes new connections
at once and every open one at its next answer; "delay" holds each answer
`delay` seconds (longer than the clients' timeout) before forwarding it;
"cut" forwards the first half of an answer's first chunk and closes; "reset"
lets the request reach the server, throws the answer away and resets the
client (SO_LINGER 0): the server acted, the client never hears of it.
The mode is read when an answer (a chunk from the server) arrives, so a window
catches the requests in flight during it. `hits` counts the answers (and
connections) each mode touched.
"""

import socket
import struct
import threading
import time

from taskfarm_harness.loopback import HOST

MODES = ("drop", "delay", "cut", "reset")


def _reset(sock):
    """Closes sock with a TCP reset."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)  # wakes a recv in the other thread, sends nothing
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock):
    """Closes sock, waking a thread blocked in its recv (shutdown first)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    def __init__(self, upstream_port, delay):
        self.upstream_port = upstream_port
        self.delay = delay
        self.mode = None
        self.hits = dict.fromkeys(MODES, 0)
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()

    @property
    def url(self):
        return f"http://{HOST}:{self.port}/api/"

    def set_mode(self, mode):
        assert mode is None or mode in MODES
        with self.lock:
            self.mode = mode

    def _hit(self, mode):
        with self.lock:
            self.hits[mode] += 1

    def close(self):
        self.closed = True
        _close(self.listener)

    def _accept_loop(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        if self.mode == "drop":
            self._hit("drop")
            _reset(client)
            return
        try:
            upstream = socket.create_connection((HOST, self.upstream_port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)  # the server is down: as if nothing listened
            return
        threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
        self._pump_answers(upstream, client)

    @staticmethod
    def _pump_requests(client, upstream):
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        except OSError:
            pass
        try:
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _pump_answers(self, upstream, client):
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                mode = self.mode
                if mode is not None:
                    self._hit(mode)
                if mode in ("drop", "reset"):
                    _reset(client)
                    _close(upstream)
                    return
                if mode == "cut":
                    client.sendall(data[: max(1, len(data) // 2)])
                    _close(client)
                    _close(upstream)
                    return
                if mode == "delay":
                    time.sleep(self.delay)
                client.sendall(data)
        except OSError:
            pass
        _close(client)
        _close(upstream)
