"""The soak's sizes and timings: CHAOS_SEED, CHAOS_SECONDS, CHAOS_TASKS,
CHAOS_WORKERS from the environment (the command line overrides them), and the
fixed timings every fault is measured against."""

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAOS_DIR = ROOT / "chaos"
TASKFARM_BIN = ROOT / "target" / "release" / "taskfarm"
C_WORKER_BIN = ROOT / "build" / "chaos" / "chaos_worker"
PYTHON_WORKER = CHAOS_DIR / "python_worker.py"
FIGURES = CHAOS_DIR / "figures.json"
REPORT = ROOT / "RELIABILITY.md"

CLIENTS = ("c", "python")


@dataclass
class Config:
    seed: int
    seconds: float = 120.0
    tasks: int = 1000
    workers: int = 8
    client: str = "c"
    out_dir: Path = ROOT / "build" / "chaos"
    # Mean time of a task (ms); each task takes between half and 1.5 times it.
    task_ms: int = 200
    # The journal's heartbeat and the reaper's --stale (seconds): a SIGSTOP
    # shorter than stale must not get a worker reaped, a longer one may, by a
    # reaper on another host only (the heartbeat is its only evidence).
    heartbeat: float = 0.5
    stale: float = 4.0
    # The library's per-attempt timeout (TASKFARM_TIMEOUT): the proxy's
    # "delay" windows hold answers longer than this.
    timeout: float = 10.0
    # Mean seconds between two faults of the schedule.
    fault_interval: float = 2.5
    # After the faults: how long without progress before the run counts as
    # stuck, and the longest drain (long: on a loaded machine a drain that
    # still makes progress is slow, not stuck, and a task it cut off would
    # count as lost).
    drain_idle: float = 30.0
    # The last wave (after --restart-orphans) ends after this long.
    wave_max: float = 60.0
    drain_max: float = 3600.0
    journal_fs_bytes: int = 2 * 1024 * 1024
    extra: dict = field(default_factory=dict)

    @property
    def run_dir(self):
        return self.out_dir / f"{self.client}-seed{self.seed}"


def env_number(name, kind, default):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError as e:
        raise SystemExit(f"chaos: {name}={text!r} is not a {kind.__name__}") from e
    if value <= 0:
        raise SystemExit(f"chaos: {name}={text!r} must be positive")
    return value


def from_environment(seed=None, seconds=None, tasks=None, workers=None, client="c", out_dir=None):
    """The configuration: the arguments first, then CHAOS_*, then defaults.
    A seed nobody gave is drawn at random (and printed by the soak)."""
    if seed is None:
        seed = env_number("CHAOS_SEED", int, None)
    if seed is None:
        seed = random.SystemRandom().randrange(1, 1 << 31)
    cfg = Config(seed=seed, client=client)
    cfg.seconds = seconds or env_number("CHAOS_SECONDS", float, cfg.seconds)
    cfg.tasks = tasks or env_number("CHAOS_TASKS", int, cfg.tasks)
    cfg.workers = workers or env_number("CHAOS_WORKERS", int, cfg.workers)
    if out_dir is not None:
        cfg.out_dir = Path(out_dir)
    return cfg
