"""The state directory of a server: server.json (how to reach it, and what
`stop` and `restart` need) and server.log."""

import json
import os

from .errors import HarnessError

SERVER_JSON = "server.json"
SERVER_LOG = "server.log"


def state_paths(state_dir):
    d = os.path.abspath(state_dir)
    return (d, os.path.join(d, SERVER_JSON), os.path.join(d, SERVER_LOG))


def read_json(path):
    """The JSON value in path, None when there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot read {path}: {e}") from e


def read_info(state_dir):
    return read_json(state_paths(state_dir)[1])


def open_private(path):
    """Opens path for writing, created or truncated, readable by its owner
    only (0600): server.json and harness.json hold passwords and the
    server's secret key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    return os.fdopen(fd, "w", encoding="utf-8")


def write_json(path, value):
    """Replaces path atomically (write, then rename) with value as JSON,
    readable by its owner only."""
    tmp = path + ".tmp"
    with open_private(tmp) as f:
        f.write(json.dumps(value) + "\n")
    os.replace(tmp, path)


def write_info(state_dir, info):
    write_json(state_paths(state_dir)[1], info)


def log_tail(log_path, lines=40):
    try:
        with open(log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])
