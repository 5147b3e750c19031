"""The tools from Debian's packages the benchmark runs (installed when
missing and we are root), their versions, and the machine."""

import os
import platform
import shutil
import subprocess
import sys

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.postgres_cluster import find_pg_bin

from .checks import log
from .cpus import CLIENT_CPU, PIN, SERVER_CPU

# Tools from Debian's packages: command -> package.
TOOLS = {
    "nginx": "nginx",
    "wrk": "wrk",
    "valgrind": "valgrind",
    "callgrind_annotate": "valgrind",
    "nm": "binutils",
    "strip": "binutils",
    "strace": "strace",
    "parallel": "parallel",
}


def have_postgresql():
    """Whether the harness finds PostgreSQL's server programs (its `--db postgresql`)."""
    try:
        find_pg_bin()
    except HarnessError:
        return False
    return True


def _apt_install(packages, env):
    return subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)


def ensure_tools():
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None})
    if not have_postgresql():
        missing.append("postgresql")
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {' '.join(missing)} (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = _apt_install(missing, env)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            r = _apt_install(missing, env)
        if r.returncode == 0 and all(shutil.which(c) for c in TOOLS) and have_postgresql():
            return
        sys.exit(f"bench: could not install {' '.join(missing)}:\n{r.stderr[-2000:]}")
    sys.exit(f"bench: missing tools: install them with "
             f"`apt-get install -y {' '.join(missing)}` and run again")


def tool_version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (r.stdout + r.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def versions():
    """The versions of the tools, Python, requests and cargo, for the report."""
    return "; ".join([
        tool_version(["nginx", "-v"]), tool_version(["wrk", "-v"]).split(" [")[0],
        tool_version(["valgrind", "--version"]), f"Python {platform.python_version()}",
        tool_version([sys.executable, "-c", "import requests; print('requests', requests.__version__)"]),
        tool_version(["cargo", "--version"]),
    ])


def machine():
    """CPUs, CPU model, kernel, and the pinning of scenarios a and b."""
    cpu_model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    pinning = f"; server and client pinned to CPUs {SERVER_CPU} and {CLIENT_CPU} in a and b" if PIN else ""
    return f"{os.cpu_count()} CPUs ({cpu_model}), Linux {platform.release()}{pinning}"
