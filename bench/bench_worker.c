/*
 * bench/bench_worker.c: the benchmark worker over libtaskfarm_worker.
 *
 * Does per task exactly what the Python client's stress test does (and what
 * bench/bench_worker.py does with taskfarm_worker.TaskFarmWorker): ask for a
 * task, report progress ten times (10, 20, ..., 100), mark it done. Then it
 * prints one JSON line on stdout with what it measured.
 *
 *   bench_worker RUN_UUID [MAX_TASKS]
 *
 * The server and credentials come from TASKFARM_URL, TASKFARM_USER and
 * TASKFARM_PASSWORD. MAX_TASKS (default 0: until the run has no task left)
 * bounds the number of tasks, for the canned server that never runs out.
 *
 * Environment for the measurements:
 *   BENCH_T0_NS      CLOCK_MONOTONIC in ns taken by the launcher just before
 *                    it started this process: "process start" for the start ->
 *                    first task figure. Without it, the process start time
 *                    from /proc/self/stat (10 ms resolution) is used.
 *   BENCH_BARRIER    1: after setting up (tf_worker_new), print "ready" on a
 *                    line of its own and wait for a line on stdin before the
 *                    task loop, so that a launcher can start several workers
 *                    together and time the loop alone.
 *   BENCH_LIST_TASKS 1: add the list of task numbers received ("task_list") to the
 *                    report, for the driver's check that no task was handed
 *                    out twice.
 *   BENCH_UPDATES    updates per task (default 10): 100·i/N for i = 1..N.
 *   BENCH_UPDATE_SLEEP_US  sleep before each update, in µs (default 0): the
 *                    "work" of a tight loop.
 *   BENCH_TASK_AGAIN a task request that fails with TF_ERR_CONNECTION (its
 *                    answer lost with a server that died) is made again up to
 *                    this many times (default 0): a server restart's scenario.
 *
 * Figures (keys of the JSON line): tasks, requests (HTTP requests sent, all
 * of them: 3 to set up — GET token, GET runs/UUID, POST worker — then one per
 * task request, update and done: the driver sets TASKFARM_UPDATE_INTERVAL=0,
 * so that every update is one request), loop_requests (those of the task loop),
 * wall_s (process start -> end), loop_wall_s and loop_cpu_s (the task loop;
 * loop_user_s + loop_sys_s = loop_cpu_s),
 * cpu_s (user + system CPU of the whole process, getrusage), peak_rss_kb
 * (VmHWM of /proc/self/status: the peak RSS of this program), maxrss_kb
 * (ru_maxrss: also holds the launcher's RSS, see peak_rss_kb()),
 * first_task_s (process start -> first task in hand),
 * loop_start_ns / end_ns (CLOCK_MONOTONIC, to combine several workers).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "taskfarm_worker.h"

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double user_seconds(const struct rusage *ru) {
    return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6;
}

static double sys_seconds(const struct rusage *ru) {
    return (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

static double cpu_seconds(const struct rusage *ru) {
    return user_seconds(ru) + sys_seconds(ru);
}

/* Process start as CLOCK_MONOTONIC ns, from BENCH_T0_NS or /proc/self/stat. */
static int64_t process_start_ns(const char **source) {
    const char *env = getenv("BENCH_T0_NS");
    if (env != NULL && *env != '\0') {
        *source = "launcher";
        return strtoll(env, NULL, 10);
    }
    *source = "proc";
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) return now_ns(CLOCK_MONOTONIC);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Field 22 (starttime, clock ticks since boot); the command name (field
     * 2) may hold spaces, so count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL) return now_ns(CLOCK_MONOTONIC);
    p += 2;
    for (int field = 3; field < 22 && p != NULL; field++) {
        p = strchr(p, ' ');
        if (p != NULL) p++;
    }
    if (p == NULL) return now_ns(CLOCK_MONOTONIC);
    long long ticks = strtoll(p, NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    /* starttime counts from boot (CLOCK_BOOTTIME); shift it to MONOTONIC. */
    int64_t start_boot = (int64_t)(ticks * (1000000000.0 / (double)hz));
    return start_boot - (now_ns(CLOCK_BOOTTIME) - now_ns(CLOCK_MONOTONIC));
}

/* Peak resident set size of this program (VmHWM, kB). Not ru_maxrss: Linux
 * keeps the launcher's RSS in ru_maxrss across fork + exec, so a worker
 * started by a 30 MB Python launcher would report at least 30 MB. */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static int fail(const char *what, tf_status s) {
    fprintf(stderr, "bench_worker: %s: %s: %s\n", what, tf_status_name(s), tf_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *t0_source;
    int64_t t0 = process_start_ns(&t0_source);
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s RUN_UUID [MAX_TASKS]\n", argv[0]);
        return 2;
    }
    const char *uuid = argv[1];
    long long max_tasks = argc == 3 ? strtoll(argv[2], NULL, 10) : 0;
    const char *list_env = getenv("BENCH_LIST_TASKS");
    int list_tasks = list_env != NULL && strcmp(list_env, "1") == 0;
    const char *barrier_env = getenv("BENCH_BARRIER");
    int barrier = barrier_env != NULL && strcmp(barrier_env, "1") == 0;
    const char *updates_env = getenv("BENCH_UPDATES");
    long updates = updates_env != NULL ? strtol(updates_env, NULL, 10) : 10;
    if (updates < 1) updates = 10;
    const char *again_env = getenv("BENCH_TASK_AGAIN");
    long task_again = again_env != NULL ? strtol(again_env, NULL, 10) : 0;
    const char *sleep_env = getenv("BENCH_UPDATE_SLEEP_US");
    long sleep_us = sleep_env != NULL ? strtol(sleep_env, NULL, 10) : 0;

    int64_t *received = NULL;
    size_t received_len = 0, received_cap = 0;
    long long requests = 0;

    tf_worker *w;
    tf_status s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    if (s != TF_OK) return fail("tf_worker_new", s);
    requests += 3; /* GET token, GET runs/UUID, POST worker */
    if (barrier) {
        printf("ready\n");
        fflush(stdout);
        int c;
        while ((c = getchar()) != EOF && c != '\n') {
        }
    }

    struct rusage ru_loop;
    getrusage(RUSAGE_SELF, &ru_loop);
    int64_t loop_start = now_ns(CLOCK_MONOTONIC);
    int64_t first_task = -1;
    long long tasks = 0, loop_requests = 0;
    int64_t task;
    while (max_tasks <= 0 || tasks < max_tasks) {
        s = tf_worker_task(w, &task);
        loop_requests++; /* POST runs/UUID/task (nothing is held here) */
        /* A hand-out whose answer was lost (the server died with the request
           in its queue): asked again, as docs/reliability.md advises. */
        for (long again = 0; s == TF_ERR_CONNECTION && again < task_again; again++) {
            s = tf_worker_task(w, &task);
            loop_requests++;
        }
        if (s == TF_NO_MORE_TASKS) break;
        if (s != TF_OK) return fail("tf_worker_task", s);
        if (first_task < 0) first_task = now_ns(CLOCK_MONOTONIC);
        if (list_tasks) {
            if (received_len == received_cap) {
                received_cap = received_cap ? 2 * received_cap : 256;
                received = realloc(received, received_cap * sizeof *received);
                if (received == NULL) return 1;
            }
            received[received_len++] = task;
        }
        for (long i = 1; i <= updates; i++) {
            if (sleep_us > 0) {
                struct timespec pause = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
                nanosleep(&pause, NULL);
            }
            s = tf_worker_update(w, 100.0 * (double)i / (double)updates);
            loop_requests++; /* PUT runs/UUID/tasks/ID percentCompleted */
            if (s != TF_OK) return fail("tf_worker_update", s);
        }
        s = tf_worker_done(w);
        loop_requests++; /* PUT runs/UUID/tasks/ID status done */
        if (s != TF_OK) return fail("tf_worker_done", s);
        tasks++;
    }
    int64_t end = now_ns(CLOCK_MONOTONIC);
    struct rusage ru_end;
    getrusage(RUSAGE_SELF, &ru_end);
    requests += loop_requests;
    long peak_kb = peak_rss_kb();
    tf_worker_free(w);

    printf("{\"client\": \"c\", \"tasks\": %lld, \"requests\": %lld, \"loop_requests\": %lld, "
           "\"wall_s\": %.9f, \"loop_wall_s\": %.9f, \"cpu_s\": %.6f, \"loop_cpu_s\": %.6f, "
           "\"loop_user_s\": %.6f, \"loop_sys_s\": %.6f, "
           "\"peak_rss_kb\": %ld, \"maxrss_kb\": %ld, \"first_task_s\": %.9f, \"t0_source\": \"%s\", "
           "\"loop_start_ns\": %lld, \"end_ns\": %lld",
           tasks, requests, loop_requests, (end - t0) / 1e9, (end - loop_start) / 1e9,
           cpu_seconds(&ru_end), cpu_seconds(&ru_end) - cpu_seconds(&ru_loop),
           user_seconds(&ru_end) - user_seconds(&ru_loop), sys_seconds(&ru_end) - sys_seconds(&ru_loop),
           peak_kb, ru_end.ru_maxrss, first_task < 0 ? -1.0 : (first_task - t0) / 1e9, t0_source,
           (long long)loop_start, (long long)end);
    if (list_tasks) {
        printf(", \"task_list\": [");
        for (size_t i = 0; i < received_len; i++)
            printf(i ? ",%lld" : "%lld", (long long)received[i]);
        printf("]");
    }
    printf("}\n");
    free(received);
    return 0;
}
