"""Scenario c: the real server, SQLite with one worker and PostgreSQL +
gunicorn with 1 to 16 worker processes, ours against Python, every update
sent (TASKFARM_UPDATE_INTERVAL=0)."""

from .checks import log
from .config import CLIENTS, alternating
from .runs import measured_run, server_env


def scenario_real(cfg, db, server, workers, env, counts, num_tasks):
    rows = []
    env = server_env(env, server)
    for n in counts:
        for rep in range(cfg["real_reps"]):
            for client in alternating(CLIENTS, rep):
                row, run_uuid = measured_run(server, workers, env, f"{db} {client} x{n}", client, n,
                                             num_tasks)
                row.update(scenario=f"c-{db}", db=db, workers=n, client=client, rep=rep + 1,
                           same_process_share=server.same_process_share(run_uuid))
                rows.append(row)
                log(f"c {db} x{n:<2d} rep {rep + 1} {client:6s}: {row['tasks_per_s']:6.1f} tasks/s, "
                    f"client {row['client_cpu_ms_per_task']:.2f} ms CPU/task, "
                    f"server {row['server_cpu_ms_per_task']:.1f} ms CPU/task, "
                    f"machine busy {row['busy_cores']:.2f} cores, dups {row['duplicates']}")
    return rows
