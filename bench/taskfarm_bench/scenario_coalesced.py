"""Scenario e: coalesced progress (TASKFARM_UPDATE_INTERVAL, default 1 s) on
PostgreSQL + gunicorn. Requests are counted in gunicorn's access log (each
attempt is a line), the same way for both clients.

e1 the stress pattern (10 updates, done) with 1..32 workers; e2 a tight loop
(many updates per task); e3 runs of growing size, without and with an index
on tasks.run_id."""

from .checks import log
from .config import E_CLIENTS, RUN_ID_INDEX_SQL, alternating
from .runs import measured_run, server_env


def e_run(server, workers, env, scenario, client, n, num_tasks, rep, prepare=None):
    """One run of `num_tasks` worked through by n workers of `client`
    (c-coalesced: the C worker with the default update interval; python)."""
    cenv = dict(env)
    if client == "c-coalesced":
        cenv.pop("TASKFARM_UPDATE_INTERVAL", None)
    row, run_uuid = measured_run(server, workers, cenv, f"{scenario} {client} x{n}",
                                 "c" if client == "c-coalesced" else client, n, num_tasks,
                                 prepare=prepare, requests_from_log=True)
    row.update(scenario=scenario, db="postgresql", workers=n, client=client, rep=rep, run_uuid=run_uuid)
    log(f"{scenario} x{n:<2d} rep {rep} {client:11s}: {row['tasks_per_s']:7.1f} tasks/s, "
        f"{row['requests_per_task']:7.2f} requests/task, "
        f"server {row['server_cpu_ms_per_task']:.2f} ms CPU/task")
    return row


def done_but_tail(conn, size, tail):
    """prepare() for a run of `size` tasks whose all but the last `tail` are
    inserted straight into the database as done (as the server would have
    left them)."""
    def prepare(run_uuid):
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM runs WHERE uuid = %s", (run_uuid,))
            run_id = cur.fetchone()[0]
            cur.execute(
                'INSERT INTO tasks (task, status, "percentCompleted", run_id) '
                "SELECT g, 'done', 100.0, %s FROM generate_series(0, %s) g",
                (run_id, size - tail - 1))
            cur.execute('UPDATE runs SET "nextTask" = %s WHERE id = %s', (size - tail, run_id))
            cur.execute("ANALYZE tasks")
        return size - tail
    return prepare


def scenario_coalesced(cfg, server, workers, env):
    rows = []
    env = server_env(env, server)
    for n in cfg["e_workers"]:
        for rep in range(cfg["e_reps"]):
            for client in alternating(E_CLIENTS, rep):
                rows.append(e_run(server, workers, env, "e-stress", client, n,
                                  max(cfg["e_tasks"], 4 * n), rep + 1))
    tight = dict(env, BENCH_UPDATES=str(cfg["e_tight_updates"]),
                 BENCH_UPDATE_SLEEP_US=str(cfg["e_tight_sleep_us"]))
    for client in E_CLIENTS:
        rows.append(e_run(server, workers, tight, "e-tight", client, cfg["e_tight_workers"],
                          cfg["e_tight_tasks"], 1))
    # e3: the workers do the tail of each run; each run is deleted afterwards,
    # so the tasks table holds about one run.
    conn = server.pg_connect()
    try:
        tail = cfg["e_size_tail"]
        for size in cfg["e_sizes"]:
            for indexed in (False, True):
                with conn.cursor() as cur:
                    cur.execute(RUN_ID_INDEX_SQL.replace(" CONCURRENTLY", "") if indexed
                                else "DROP INDEX IF EXISTS ix_tasks_run_id")
                for client in E_CLIENTS:
                    row = e_run(server, workers, env,
                                f"e-size-{size}-{'index' if indexed else 'noindex'}",
                                client, cfg["e_size_workers"], size, 1,
                                prepare=done_but_tail(conn, size, tail))
                    rows.append(row)
                    server.call("DELETE", f"runs/{row['run_uuid']}")
                    with conn.cursor() as cur:
                        cur.execute("VACUUM tasks")
        with conn.cursor() as cur:
            cur.execute("DROP INDEX IF EXISTS ix_tasks_run_id")
    finally:
        conn.close()
    return rows
