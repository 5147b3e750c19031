/*
 * tests/outcomes/outcome_worker.c: a worker whose tasks end in each outcome
 * (tests/outcomes.rs runs it against the real server on PostgreSQL).
 *
 * usage: outcome_worker RUN_UUID FAIL_TASK NOT_DONE_TASK
 *   - task FAIL_TASK fails every time: tf_worker_fail after 30 %;
 *   - task NOT_DONE_TASK, at its first attempt, is released by
 *     tf_worker_done at 50 %: TF_NOT_DONE;
 *   - every other task adds 100.0 / 7 to its percentage seven times (the
 *     sum is 100.00000000000001), then tf_worker_done: TF_OK.
 * Prints "task T attempt A" as it takes a task, then "failed T",
 * "not_done T" or "done T"; "end STATUS" at the end. Any unexpected status
 * prints "unexpected ..." and the exit status is 1.
 */
#include <taskfarm_worker.h>

#include <stdio.h>
#include <stdlib.h>

static int bad = 0;

static void expect(tf_status got, tf_status want, const char *what) {
    if (got != want) {
        printf("unexpected %s: %s (want %s): %s\n", what, tf_status_name((int)got),
               tf_status_name((int)want), tf_last_error());
        bad = 1;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RUN_UUID FAIL_TASK NOT_DONE_TASK\n", argv[0]);
        return 2;
    }
    const long long fail_task = atoll(argv[2]);
    const long long not_done_task = atoll(argv[3]);
    tf_worker *w = NULL;
    if (tf_worker_new(NULL, NULL, NULL, argv[1], &w) != TF_OK) {
        printf("unexpected tf_worker_new: %s\n", tf_last_error());
        return 1;
    }
    int64_t attempt = -1;
    expect(tf_worker_attempt(w, &attempt), TF_NO_MORE_TASKS, "attempt with no task held");
    expect(tf_worker_fail(w, "nothing held"), TF_OK, "fail with no task held");
    int64_t task;
    tf_status s;
    while ((s = tf_worker_task(w, &task)) == TF_OK) {
        expect(tf_worker_attempt(w, &attempt), TF_OK, "attempt");
        printf("task %lld attempt %lld\n", (long long)task, (long long)attempt);
        if (task == fail_task) {
            expect(tf_worker_update(w, 30.0), TF_OK, "update 30");
            char message[128];
            snprintf(message, sizeof message, "task %lld fails on purpose (attempt %lld)",
                     (long long)task, (long long)attempt);
            expect(tf_worker_fail(w, message), TF_OK, "fail");
            printf("failed %lld\n", (long long)task);
        } else if (task == not_done_task && attempt == 1) {
            expect(tf_worker_update(w, 50.0), TF_OK, "update 50");
            expect(tf_worker_done(w), TF_NOT_DONE, "done at 50 %");
            printf("not_done %lld\n", (long long)task);
        } else {
            double p = 0.0;
            for (int i = 0; i < 7; i++) {
                p += 100.0 / 7;
                expect(tf_worker_update(w, p), TF_OK, "update by 100/7");
            }
            expect(tf_worker_done(w), TF_OK, "done after seven steps of 100/7");
            printf("done %lld\n", (long long)task);
        }
        fflush(stdout);
    }
    printf("end %s\n", tf_status_name((int)s));
    if (s != TF_NO_MORE_TASKS) {
        printf("unexpected end: %s\n", tf_last_error());
        bad = 1;
    }
    tf_worker_free(w);
    return bad;
}
