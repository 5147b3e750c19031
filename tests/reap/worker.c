/*
 * tests/reap/worker.c: the C worker of tests/reap.rs, a plain worker whose
 * journal comes from TASKFARM_JOURNAL, with switches that make it die or
 * wait at chosen points:
 *
 *   worker UUID
 *
 *   REAP_TEST_HOLD_AFTER=K   after K tasks, take one more, update it to 50 %,
 *                            print "holding N" and wait for ever (to be
 *                            SIGKILLed in the middle of a task)
 *   REAP_TEST_POISON=T       task T kills its worker (SIGKILL) at 50 %
 *   REAP_TEST_KILL_RANK=R    under mpirun, rank R (OMPI_COMM_WORLD_RANK)
 *                            kills itself (SIGKILL) at 50 % of its 4th task
 *   REAP_TEST_TASK_MS=MS     each task takes MS milliseconds between 50 and
 *                            100 % (default 0)
 *   REAP_TEST_GATE=FILE      before the first done: print "ready N", wait for
 *                            FILE; when that done fails print "done-failed N"
 *                            and wait for FILE.2 before going on
 *   REAP_TEST_STOP=FILE      when no task is left: end once every task is
 *                            done or FILE exists, else ask again
 *
 * Each task: update 50, update 100, done; "task N" on stdout once done.
 * Exit status 0 when the run ended normally, 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <taskfarm_worker.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void nap(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void wait_for(const char *path) {
    while (!exists(path)) {
        nap(20);
    }
}

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

static int fail(const char *what, int64_t task, tf_status s) {
    fprintf(stderr, "worker %d: %s (task %lld) failed: %s: %s\n", (int)getpid(), what,
            (long long)task, tf_status_name((int)s), tf_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: worker UUID\n", stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    long hold_after = env_long("REAP_TEST_HOLD_AFTER", -1);
    long poison = env_long("REAP_TEST_POISON", -1);
    long kill_rank = env_long("REAP_TEST_KILL_RANK", -1);
    long rank = env_long("OMPI_COMM_WORLD_RANK", -2);
    long task_ms = env_long("REAP_TEST_TASK_MS", 0);
    const char *gate = getenv("REAP_TEST_GATE");
    const char *stop = getenv("REAP_TEST_STOP");
    char gate2[4096] = "";
    if (gate) {
        snprintf(gate2, sizeof gate2, "%s.2", gate);
    }

    tf_worker *w = NULL;
    tf_status s = tf_worker_new(NULL, NULL, NULL, argv[1], &w);
    if (s != TF_OK) {
        return fail("tf_worker_new", -1, s);
    }
    long done = 0;
    int64_t task = -1;
    for (;;) {
        s = tf_worker_task(w, &task);
        if (s == TF_NO_MORE_TASKS) {
            tf_run_status st;
            s = tf_taskfarm_status(tf_worker_taskfarm(w), &st);
            if (s != TF_OK) {
                return fail("tf_taskfarm_status", -1, s);
            }
            if (st.num_done == st.num_tasks || (stop && exists(stop))) {
                break;
            }
            nap(50);
            continue;
        }
        if (s != TF_OK) {
            return fail("tf_worker_task", task, s);
        }
        if ((s = tf_worker_update(w, 50.0)) != TF_OK) {
            return fail("tf_worker_update(50)", task, s);
        }
        if (task == poison) {
            printf("poisoned %lld\n", (long long)task);
            raise(SIGKILL);
        }
        if (rank == kill_rank && done == 3) {
            printf("rank-killed %lld\n", (long long)task);
            raise(SIGKILL);
        }
        if (task_ms > 0) {
            nap(task_ms);
        }
        if (done == hold_after) {
            printf("holding %lld\n", (long long)task);
            for (;;) {
                pause();
            }
        }
        if ((s = tf_worker_update(w, 100.0)) != TF_OK) {
            return fail("tf_worker_update(100)", task, s);
        }
        if (gate && done == 0) {
            printf("ready %lld\n", (long long)task);
            wait_for(gate);
        }
        if ((s = tf_worker_done(w)) != TF_OK) {
            if (!gate) {
                return fail("tf_worker_done", task, s);
            }
            printf("done-failed %lld %s\n", (long long)task, tf_status_name((int)s));
            wait_for(gate2);
        } else {
            printf("task %lld\n", (long long)task);
        }
        done++;
    }
    printf("finished %ld\n", done);
    tf_worker_free(w);
    return 0;
}
