"""Where the benchmark's inputs and programs are."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "bench"
TEMPLATES = BENCH_DIR / "report"
LIB = ROOT / "target" / "release" / "libtaskfarm_worker.so"
HARNESS = ROOT / "tests" / "harness" / "server.sh"
DEFAULT_WORKER_BIN = ROOT / "build" / "bench" / "bench_worker"
DEFAULT_RUNNER_BIN = ROOT / "target" / "release" / "taskfarm"
DEFAULT_FORK_EXEC_BIN = ROOT / "build" / "bench" / "fork_exec_loop"
DEFAULT_TWO_REQUESTS_BIN = ROOT / "build" / "bench" / "two_requests_floor"
