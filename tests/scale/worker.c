/*
 * tests/scale/worker.c: the worker of tests/scale.rs, careful as
 * docs/reliability.md advises for a server that may be killed.
 *
 *   worker UUID
 *
 * Registers a worker for run UUID (server and token from TASKFARM_URL and
 * TASKFARM_TOKEN) and takes tasks until none is left; each task: update
 * 50 %, update 100 %, done. A call that fails with TF_ERR_CONNECTION after
 * the library's own retries (a worker registration or a task hand-out whose
 * answer was lost when the server died: a POST is not repeated by the
 * library) is made again, up to 20 times. Prints "task N" for each task done
 * and "finished K" at the end, on stdout; a failure goes to stderr with
 * tf_last_error() and makes the exit status 1. Exit status 0 only when the
 * run ran out of tasks.
 *
 * Built by the test with cc against include/ and target/release.
 */
#include <taskfarm_worker.h>

#include <stdint.h>
#include <stdio.h>

enum { AGAIN = 20 };

static int fail(const char *what, int64_t task, tf_status s) {
    fprintf(stderr, "worker: %s (task %lld) failed: %s (HTTP %d): %s\n", what, (long long)task,
            tf_status_name((int)s), tf_last_http_status(), tf_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: worker UUID\n", stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    tf_worker *w = NULL;
    tf_status s = TF_ERR_CONNECTION;
    for (int i = 0; i < AGAIN && s == TF_ERR_CONNECTION; i++) {
        s = tf_worker_new(NULL, NULL, NULL, argv[1], &w);
    }
    if (s != TF_OK) {
        return fail("tf_worker_new", -1, s);
    }
    long long done = 0;
    int64_t task = -1;
    int status = 0;
    for (;;) {
        s = TF_ERR_CONNECTION;
        for (int i = 0; i < AGAIN && s == TF_ERR_CONNECTION; i++) {
            s = tf_worker_task(w, &task);
        }
        if (s != TF_OK) {
            break;
        }
        if ((s = tf_worker_update(w, 50.0)) != TF_OK) {
            status = fail("tf_worker_update(50)", task, s);
            break;
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
