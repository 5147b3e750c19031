"""Where the harness's servers listen: 127.0.0.1, on a free port."""

import socket

HOST = "127.0.0.1"


def free_port():
    """A TCP port on HOST that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]
