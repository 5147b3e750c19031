"""What the benchmark started (nginx, the harness's servers): stopped on
every way out."""

import signal
import subprocess

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.server import stop_server

from .checks import log


def stop_process(p, sig=signal.SIGQUIT, timeout=5.0):
    """Stops a child we started (SIGQUIT: nginx's graceful stop), killing it
    after `timeout`."""
    if p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except ProcessLookupError:
        pass


class Cleanup:
    def __init__(self):
        self.procs = []          # Popen objects (nginx)
        self.servers = []        # harness state dirs

    def stop_server(self, state):
        """The harness's stop: the server's process group, then its PostgreSQL."""
        try:
            stop_server(str(state))
        except HarnessError as e:
            log(f"stopping the server of {state}: {e}")
        if state in self.servers:
            self.servers.remove(state)

    def stop_all(self):
        for p in self.procs:
            stop_process(p)
        self.procs.clear()
        for state in list(self.servers):
            self.stop_server(state)


CLEANUP = Cleanup()


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
