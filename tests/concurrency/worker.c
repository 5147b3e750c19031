/*
 * tests/concurrency/worker.c: the minimal C worker of tests/concurrency.rs.
 *
 *   worker UUID
 *
 * Registers a worker for run UUID (credentials and server from TASKFARM_USER,
 * TASKFARM_PASSWORD and TASKFARM_URL) and takes tasks until none is left.
 * Each task: update 50 %, update 100 %, done. Prints one line per task done,
 * "task N", and at the end "finished K" (K tasks done), both on stdout; any
 * failure goes to stderr with tf_last_error() and makes the exit status 1.
 * Exit status 0 only when the run ran out of tasks (TF_NO_MORE_TASKS).
 *
 * Built by the test with cc against include/ and target/release.
 */
#include <taskfarm_worker.h>

#include <stdint.h>
#include <stdio.h>

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
    tf_status s = tf_worker_new(NULL, NULL, NULL, argv[1], &w);
    if (s != TF_OK) {
        return fail("tf_worker_new", -1, s);
    }
    long long done = 0;
    int64_t task = -1;
    int status = 0;
    while ((s = tf_worker_task(w, &task)) == TF_OK) {
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
