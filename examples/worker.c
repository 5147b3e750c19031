/*
 * examples/worker.c: a taskfarm worker in C (what example.py of the Python
 * taskfarm-worker does).
 *
 *   worker [-n N]            create a run of N tasks (default 10) and print
 *                            its UUID, and only that, on stdout
 *   worker [-s MS] UUID      work through the run UUID: each task in 4 steps
 *                            of simulated work of MS milliseconds each
 *                            (default 50, or the environment's WORKER_STEP_MS),
 *                            reporting progress after each step
 *   worker --status UUID     print "percentDone waiting computing done" of the run
 *
 * The server and the credentials come from the environment: TASKFARM_URL
 * (default http://localhost:5000/api/), TASKFARM_USER and TASKFARM_PASSWORD.
 *
 * Build against the tree (after `make build`):
 *   cc -std=c11 examples/worker.c -Iinclude -Ltarget/release \
 *      -Wl,-rpath,$PWD/target/release -ltaskfarm_worker -o worker
 *
 * Typical use: `worker -n 1000` once, then one `worker UUID` per Slurm array
 * job or MPI rank; each takes tasks until none is left.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <taskfarm_worker.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEPS 4

/* Reports a failed call on stderr: what was being done, the library's message. */
static int fail(const char *what, tf_status status) {
    fprintf(stderr, "worker: %s failed (%s): %s\n", what, tf_status_name((int)status),
            tf_last_error());
    return 1;
}

/* Parses a whole number in [min, max]; returns 0 on success. */
static int parse_number(const char *text, long long min, long long max, long long *out) {
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        return -1;
    }
    *out = value;
    return 0;
}

/* Stands in for one step of the real computation of `task`. */
static void compute_step(int64_t task, int step, long step_ms) {
    (void)task;
    (void)step;
    struct timespec pause = {step_ms / 1000, (step_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {
    }
}

/* worker -n N: creates a run of N tasks and prints its UUID. */
static int create_run(int64_t num_tasks) {
    tf_taskfarm *run;
    tf_status s = tf_taskfarm_create(NULL, NULL, NULL, num_tasks, &run);
    if (s != TF_OK) {
        return fail("creating a run", s);
    }
    printf("%s\n", tf_taskfarm_uuid(run));
    tf_taskfarm_free(run); /* the run stays on the server */
    return 0;
}

/* worker --status UUID: prints "percentDone waiting computing done". */
static int print_status(const char *uuid) {
    tf_taskfarm *run;
    tf_status s = tf_taskfarm_open(NULL, NULL, NULL, uuid, &run);
    if (s != TF_OK) {
        return fail("opening the run", s);
    }
    tf_run_status st;
    s = tf_taskfarm_status(run, &st);
    if (s == TF_OK) {
        printf("%g %lld %lld %lld\n", st.percent_done, (long long)st.num_waiting,
               (long long)st.num_computing, (long long)st.num_done);
    }
    tf_taskfarm_free(run);
    return s == TF_OK ? 0 : fail("reading the run's status", s);
}

/* worker UUID: takes tasks from the run until none is left. */
static int work(const char *uuid, long step_ms) {
    tf_worker *w;
    tf_status s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    if (s != TF_OK) {
        return fail("registering the worker", s);
    }
    /* A short name to tell workers apart: the last 8 hex digits of the worker's
     * UUID (random; the first ones are a timestamp, alike for workers started together). */
    const char *worker_uuid = tf_worker_uuid(w);
    char name[9];
    snprintf(name, sizeof name, "%s", worker_uuid + strlen(worker_uuid) - 8);

    int done = 0, status = 0;
    int64_t task;
    while ((s = tf_worker_task(w, &task)) == TF_OK) {
        for (int step = 1; step <= STEPS && s == TF_OK; step++) {
            compute_step(task, step, step_ms);
            s = tf_worker_update(w, 100.0 * step / STEPS);
        }
        if (s == TF_OK) {
            /* The last update was 100 %: done() marks the task done on the server. */
            s = tf_worker_done(w);
        }
        if (s != TF_OK) {
            fail("reporting on a task", s);
            /* Give the task back so that another worker can do it. */
            if (tf_worker_requeue(w) != TF_OK) {
                fprintf(stderr, "worker %s: could not give task %lld back: %s\n", name,
                        (long long)task, tf_last_error());
            }
            status = 1;
            break;
        }
        done++;
        printf("worker %s: task %lld done\n", name, (long long)task);
    }
    if (status == 0 && s != TF_NO_MORE_TASKS) {
        status = fail("asking for a task", s);
    }
    printf("worker %s: %d tasks done\n", name, done);
    tf_worker_free(w);
    return status;
}

static int usage(void) {
    fputs("usage: worker [-n N]            create a run of N tasks (default 10), print its UUID\n"
          "       worker [-s MS] UUID      work through the run UUID, MS ms per step (default 50)\n"
          "       worker --status UUID     print \"percentDone waiting computing done\"\n"
          "(TASKFARM_URL, TASKFARM_USER and TASKFARM_PASSWORD from the environment;\n"
          " WORKER_STEP_MS sets the default step time)\n",
          stderr);
    return 2;
}

int main(int argc, char **argv) {
    /* One line at a time, also into a pipe, so that several workers interleave cleanly. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    long long value;
    if (argc == 1) {
        return create_run(10);
    }
    if (argc == 3 && strcmp(argv[1], "-n") == 0) {
        if (parse_number(argv[2], 1, INT32_MAX, &value) != 0) {
            return usage();
        }
        return create_run(value);
    }
    if (argc == 3 && strcmp(argv[1], "--status") == 0) {
        return print_status(argv[2]);
    }

    long step_ms = 50;
    const char *env = getenv("WORKER_STEP_MS");
    if (env != NULL && *env != '\0') {
        if (parse_number(env, 0, 3600000, &value) != 0) {
            fprintf(stderr, "worker: WORKER_STEP_MS=%s is not a number of milliseconds\n", env);
            return 2;
        }
        step_ms = (long)value;
    }
    int arg = 1;
    if (argc == 4 && strcmp(argv[1], "-s") == 0) {
        if (parse_number(argv[2], 0, 3600000, &value) != 0) {
            return usage();
        }
        step_ms = (long)value;
        arg = 3;
    }
    if (argc != arg + 1 || argv[arg][0] == '-') {
        return usage();
    }
    return work(argv[arg], step_ms);
}
