/*
 * chaos/chaos_worker.c: the C worker of the chaos soak (`make chaos`). It uses
 * the library as a user would: the journal and the stop signals come from the
 * environment (TASKFARM_JOURNAL, TASKFARM_STOP_SIGNALS), nothing in the code
 * knows about them. What it adds is the oracle log, which does not trust the
 * library: one line per event, appended with O_APPEND and fsync'ed before the
 * worker goes on, so a line is on disk before the step it announces.
 *
 *   chaos_worker UUID
 *
 *   CHAOS_LOG=FILE      the oracle log (created; appended to)
 *   CHAOS_WORKER=ID     this process's name in the log (the supervisor's slot
 *                       and generation, e.g. w3.7)
 *   CHAOS_TASK_MS=MS    mean time of a task (default 200): 4 steps, each
 *                       followed by tf_worker_update(25, 50, 75, 100)
 *   CHAOS_STOP=FILE     when no task is handed out: end once every task is
 *                       done or FILE exists, else ask again 100 ms later
 *
 * Log lines: "<CLOCK_MONOTONIC ns> <ID> <pid> <event> [task] [status]":
 *   begin - request - start T - computed T - done T STATUS - requeue T STATUS -
 *   fail WHAT STATUS - end N
 * "request" comes before tf_worker_task, "start T" after it returned T,
 * "computed T" after the last update and before tf_worker_done, "done T S"
 * with what tf_worker_done returned. The phase a worker is in is thus the
 * last line of its log, which is how the soak picks the moment of a SIGKILL
 * (mid-request, mid-task, mid-done).
 *
 * Failures: a failed update hands the task back (tf_worker_requeue) and ends
 * the process with status 1, as examples/worker.c does; a failed
 * tf_worker_done is logged and the worker goes on (with a journal the done is
 * kept and delivered later, README "When workers die"); any other failure
 * ends the process with status 1. The supervisor starts a replacement.
 */
#define _POSIX_C_SOURCE 200809L
#include <taskfarm_worker.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static const char *worker_name = "w?";

/* Appends one line to the oracle log and fsyncs it; a log that cannot be
 * written ends the process (the oracle would be blind). */
static void note(const char *fmt, ...) {
    char line[512];
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int n = snprintf(line, sizeof line, "%lld %s %d ",
                     (long long)now.tv_sec * 1000000000LL + now.tv_nsec, worker_name,
                     (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) {
        n = (int)sizeof line - 2;
    }
    line[n++] = '\n';
    if (write(log_fd, line, (size_t)n) != n || fsync(log_fd) != 0) {
        fprintf(stderr, "chaos_worker: cannot write the oracle log: %s\n", strerror(errno));
        _exit(3);
    }
}

static void nap(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

/* The time task T takes: between half and one and a half times the mean,
 * fixed per task so that every computation of a task takes as long. */
static long task_time_ms(int64_t task, long mean_ms) {
    uint64_t h = (uint64_t)task * 2654435761u;
    return mean_ms / 2 + (long)(h % 1000) * mean_ms / 1000;
}

static int fail(tf_worker *w, const char *what, tf_status s) {
    note("fail %s %s", what, tf_status_name((int)s));
    fprintf(stderr, "chaos_worker %s: %s failed: %s: %s\n", worker_name, what,
            tf_status_name((int)s), tf_last_error());
    tf_worker_free(w);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: chaos_worker UUID (CHAOS_LOG, CHAOS_WORKER, CHAOS_TASK_MS, CHAOS_STOP)\n",
              stderr);
        return 2;
    }
    const char *log_path = getenv("CHAOS_LOG");
    if (!log_path || !*log_path) {
        fputs("chaos_worker: CHAOS_LOG is not set\n", stderr);
        return 2;
    }
    log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "chaos_worker: %s: %s\n", log_path, strerror(errno));
        return 2;
    }
    if (getenv("CHAOS_WORKER")) {
        worker_name = getenv("CHAOS_WORKER");
    }
    long mean_ms = env_long("CHAOS_TASK_MS", 200);
    const char *stop = getenv("CHAOS_STOP");

    tf_worker *w = NULL;
    tf_status s = tf_worker_new(NULL, NULL, NULL, argv[1], &w);
    if (s != TF_OK) {
        return fail(NULL, "tf_worker_new", s);
    }
    note("begin %s", tf_worker_uuid(w));
    long finished = 0;
    for (;;) {
        int64_t task = -1;
        note("request");
        s = tf_worker_task(w, &task);
        if (s == TF_NO_MORE_TASKS) {
            tf_run_status st;
            s = tf_taskfarm_status(tf_worker_taskfarm(w), &st);
            if (s != TF_OK) {
                return fail(w, "tf_taskfarm_status", s);
            }
            if (st.num_done == st.num_tasks || (stop && access(stop, F_OK) == 0)) {
                break;
            }
            nap(100);
            continue;
        }
        if (s != TF_OK) {
            return fail(w, "tf_worker_task", s);
        }
        note("start %lld", (long long)task);
        long step_ms = task_time_ms(task, mean_ms) / 4;
        for (int step = 1; step <= 4; step++) {
            nap(step_ms);
            if ((s = tf_worker_update(w, 25.0 * step)) != TF_OK) {
                note("update-failed %lld %s", (long long)task, tf_status_name((int)s));
                tf_status r = tf_worker_requeue(w);
                note("requeue %lld %s", (long long)task, tf_status_name((int)r));
                return fail(w, "tf_worker_update", s);
            }
        }
        note("computed %lld", (long long)task);
        s = tf_worker_done(w);
        note("done %lld %s", (long long)task, tf_status_name((int)s));
        if (s == TF_OK) {
            finished++;
        }
    }
    note("end %ld", finished);
    tf_worker_free(w);
    return 0;
}
