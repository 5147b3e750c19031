"""The canned server: nginx answering every endpoint at once with a fixed
body (bench/nginx.conf.in), pinned to one CPU (scenarios a and b, the
profile)."""

import base64
import hashlib
import hmac
import http.client
import re
import subprocess
import time
from pathlib import Path

from taskfarm_harness.loopback import free_port

from .cpus import SERVER_CPU, pinned
from .paths import BENCH_DIR
from .processes import CLEANUP, stop_process


def fake_jwt():
    """A token shaped like the server's (HS256 JWT of {"id": 1}), so that the
    Authorization header has the real size."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(b'{"id":1}')
    sig = hmac.new(b"benchmark", head.encode(), hashlib.sha256).digest()
    return head + "." + b64(sig)


class CannedServer:
    def __init__(self, workdir, run_uuid, token):
        self.dir = Path(workdir) / "nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_uuid = run_uuid
        self.token = token
        self.proc = None
        self.port = None

    def start(self):
        template = (BENCH_DIR / "nginx.conf.in").read_text()
        for _attempt in range(5):
            port = free_port()
            conf = (template.replace("@DIR@", str(self.dir))
                    .replace("@PORT@", str(port))
                    .replace("@RUN_UUID@", self.run_uuid)
                    .replace("@TOKEN@", self.token)
                    .replace("@NUM_TASKS@", "1000000"))
            (self.dir / "nginx.conf").write_text(conf)
            with pinned([SERVER_CPU]):
                self.proc = subprocess.Popen(
                    ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                     "-e", str(self.dir / "error.log")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            CLEANUP.procs.append(self.proc)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.port = port
                    self.stub_requests()
                    return self
                except OSError:
                    time.sleep(0.05)
            stop_process(self.proc)
        log_tail = (self.dir / "error.log").read_text()[-1500:] if (self.dir / "error.log").exists() else ""
        raise RuntimeError(f"nginx did not start:\n{log_tail}")

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/api/"

    def stub_requests(self):
        """nginx's count of requests so far (this one included)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", "/bench_status")
            body = c.getresponse().read().decode()
        finally:
            c.close()
        m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", body, re.M)
        if not m:
            raise RuntimeError(f"unexpected stub_status answer: {body!r}")
        return int(m.group(3))


