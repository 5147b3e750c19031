/*
 * tests/concurrency/worker.c: the C worker process of tests/concurrency.rs,
 * tests/token.rs and tests/scale.rs.
 *
 *   worker [--again N] [--hold FILE] UUID
 *
 * Registers a worker for run UUID (server and credentials from TASKFARM_URL
 * and TASKFARM_USER/TASKFARM_PASSWORD or TASKFARM_TOKEN) and takes tasks
 * until none is left. Each task: update 50 %, update 100 %, done. Prints one
 * line per task done, "task N", and at the end "finished K" (K tasks done),
 * both on stdout; any failure goes to stderr with tf_last_error() and makes
 * the exit status 1. Exit status 0 only when the run ran out of tasks
 * (TF_NO_MORE_TASKS).
 *
 * For a server that may be killed (tests/scale.rs), careful as
 * docs/reliability.md advises:
 *   --again N   a worker registration or task request that fails with
 *               TF_ERR_CONNECTION after the library's own retries (its answer
 *               was lost when the server died: a POST is not repeated by the
 *               library) is made again, up to N calls in all (default 1).
 *   --hold FILE in the middle of its first task (after update 50 %), prints
 *               "holding task N" and waits until FILE exists.
 *
 * Built by the tests with cc against include/ and target/release.
 */
#define _POSIX_C_SOURCE 200809L

#include <taskfarm_worker.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, int64_t task, tf_status s) {
    fprintf(stderr, "worker: %s (task %lld) failed: %s (HTTP %d): %s\n", what, (long long)task,
            tf_status_name((int)s), tf_last_http_status(), tf_last_error());
    return 1;
}

static int usage(void) {
    fputs("usage: worker [--again N] [--hold FILE] UUID\n", stderr);
    return 2;
}

/* Waits until `path` exists, looking every 10 ms. */
static void wait_for(const char *path) {
    const struct timespec tick = {0, 10 * 1000 * 1000};
    while (access(path, F_OK) != 0) {
        nanosleep(&tick, NULL);
    }
}

int main(int argc, char **argv) {
    long again = 1;
    const char *hold = NULL;
    int arg = 1;
    for (; arg + 1 < argc && strncmp(argv[arg], "--", 2) == 0; arg += 2) {
        char *end = NULL;
        if (strcmp(argv[arg], "--again") == 0) {
            again = strtol(argv[arg + 1], &end, 10);
            if (*end != '\0' || again < 1) {
                return usage();
            }
        } else if (strcmp(argv[arg], "--hold") == 0) {
            hold = argv[arg + 1];
        } else {
            return usage();
        }
    }
    if (arg != argc - 1) {
        return usage();
    }
    const char *uuid = argv[arg];
    setvbuf(stdout, NULL, _IOLBF, 0);

    tf_worker *w = NULL;
    tf_status s = TF_ERR_CONNECTION;
    for (long i = 0; i < again && s == TF_ERR_CONNECTION; i++) {
        s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    }
    if (s != TF_OK) {
        return fail("tf_worker_new", -1, s);
    }
    long long done = 0;
    int64_t task = -1;
    int status = 0;
    for (;;) {
        s = TF_ERR_CONNECTION;
        for (long i = 0; i < again && s == TF_ERR_CONNECTION; i++) {
            s = tf_worker_task(w, &task);
        }
        if (s != TF_OK) {
            break;
        }
        if ((s = tf_worker_update(w, 50.0)) != TF_OK) {
            status = fail("tf_worker_update(50)", task, s);
            break;
        }
        if (hold != NULL && done == 0) {
            printf("holding task %lld\n", (long long)task);
            wait_for(hold);
        }
        if ((s = tf_worker_update(w, 100.0)) != TF_OK) {
            status = fail("tf_worker_update(100)", task, s);
            break;
        }
        if ((s = tf_worker_done(w)) != TF_OK) {
            status = fail("tf_worker_done", task, s);
            break;
        }
        printf("task %lld\n", (long long)task);
        done++;
    }
    if (status == 0 && s != TF_NO_MORE_TASKS) {
        status = fail("tf_worker_task", task, s);
    }
    printf("finished %lld\n", done);
    tf_worker_free(w);
    return status;
}
