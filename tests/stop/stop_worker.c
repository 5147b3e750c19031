/*
 * tests/stop/stop_worker.c: the C workers of tests/stop_signals.rs.
 *
 *   stop_worker exit UUID       installs a SIGTERM handler of its own (it
 *                               prints "own handler ran"), then TF_STOP_EXIT
 *                               on SIGTERM; three workers, in the main
 *                               thread and two more threads, each takes a
 *                               task and reports 37.5 % (main), 62.5 % or
 *                               80 %; prints "computing T1 T2 T3"; the first
 *                               two compute for 60 s without calling the
 *                               library, the third calls tf_worker_update
 *                               every 10 ms (and exits 3 if that ever
 *                               returns). Prints "finished" if it ever gets
 *                               there.
 *   stop_worker continue UUID   TF_STOP_CONTINUE on SIGTERM; worker A takes a
 *                               task and reports 100 % (finished, not yet
 *                               done), worker B takes one and reports 20 %;
 *                               prints "computing A B", waits (polling
 *                               tf_stop_requested, 60 s at most), then prints
 *                               one line per outcome: B's update, A's done,
 *                               both task calls, tf_stop_requested().
 *   stop_worker deadline UUID   the wall-time checks (see below), one line each.
 *   stop_worker fork X          TF_STOP_EXIT, then fork(): the child prints
 *                               "child PID" and sleeps 60 s; the parent
 *                               prints how the child ended.
 *   stop_worker loop UUID       the task loop (update 100, done) with the
 *                               deadline the library finds by itself; prints
 *                               "status STATUS tasks K" and "last_error ...".
 *   stop_worker mpi UUID        (built with mpicc) one worker per rank, stop
 *                               signals from TASKFARM_STOP_SIGNALS; each rank
 *                               takes a task, reports 10 * rank + 5 %, prints
 *                               "rank R pid P computing TASK" and sleeps 60 s.
 *
 * Lines go to stdout, unbuffered per line; the exit status is 0 when every
 * check of the mode held. Built by the test against include/ and target/release.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, setenv */

#include <taskfarm_worker.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef STOP_WORKER_MPI
#include <mpi.h>
#endif

static int fail(const char *what, tf_status s) {
    printf("FAIL %s: %s: %s\n", what, tf_status_name((int)s), tf_last_error());
    return 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds) {
    struct timespec pause = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {
    }
}

/* 60 s of "computation" that makes no library call. */
static volatile double sink;
static void compute_without_library_calls(void) {
    double end = now() + 60.0;
    while (now() < end) {
        for (int i = 0; i < 100000; i++) {
            sink += i * 1e-9;
        }
    }
}

/* Registers a worker, takes a task and reports `percent`; 0 on success. */
static int take_and_report(const char *uuid, double percent, tf_worker **w, int64_t *task) {
    tf_status s = tf_worker_new(NULL, NULL, NULL, uuid, w);
    if (s != TF_OK) {
        return fail("tf_worker_new", s);
    }
    if ((s = tf_worker_task(*w, task)) != TF_OK) {
        return fail("tf_worker_task", s);
    }
    if ((s = tf_worker_update(*w, percent)) != TF_OK) {
        return fail("tf_worker_update", s);
    }
    double held = -1;
    if ((s = tf_worker_held_percent(*w, &held)) != TF_OK || held != percent) {
        printf("FAIL tf_worker_held_percent: %s, %g instead of %g\n", tf_status_name((int)s), held,
               percent);
        return 1;
    }
    return 0;
}

struct thread_worker {
    const char *uuid;
    double percent;
    int chatty; /* calls tf_worker_update every 10 ms instead of computing */
    int64_t task;
    int failed;
    pthread_mutex_t *lock;
    pthread_cond_t *ready;
    int *taken;
};

static void *thread_main(void *arg) {
    struct thread_worker *tw = arg;
    tf_worker *w = NULL;
    tw->failed = take_and_report(tw->uuid, tw->percent, &w, &tw->task);
    pthread_mutex_lock(tw->lock);
    (*tw->taken)++;
    pthread_cond_signal(tw->ready);
    pthread_mutex_unlock(tw->lock);
    if (tw->failed) {
        return NULL;
    }
    if (!tw->chatty) {
        compute_without_library_calls();
        return NULL;
    }
    /* After the signal this call must not return before the process ends:
     * in TF_STOP_EXIT mode the library ends it, with the signal. */
    tf_status s;
    while ((s = tf_worker_update(w, tw->percent)) == TF_OK) {
        sleep_seconds(0.01);
    }
    printf("chatty thread got %s\n", tf_status_name((int)s));
    exit(3);
}

/* The program's own SIGTERM handler, installed before the library's: it must
 * keep being called. Only async-signal-safe work. */
static void own_handler(int signal) {
    (void)signal;
    static const char line[] = "own handler ran\n";
    ssize_t written = write(STDOUT_FILENO, line, sizeof line - 1);
    (void)written;
}

static int mode_exit(const char *uuid) {
    struct sigaction own;
    memset(&own, 0, sizeof own);
    own.sa_handler = own_handler;
    sigemptyset(&own.sa_mask);
    if (sigaction(SIGTERM, &own, NULL) != 0) {
        puts("FAIL sigaction");
        return 1;
    }
    const int signals[] = {SIGTERM};
    tf_status s = tf_stop_on_signals(signals, 1, TF_STOP_EXIT);
    if (s != TF_OK) {
        return fail("tf_stop_on_signals", s);
    }
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
    int taken = 0;
    struct thread_worker tws[2] = {{uuid, 62.5, 0, -1, 0, &lock, &ready, &taken},
                                   {uuid, 80.0, 1, -1, 0, &lock, &ready, &taken}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        if (pthread_create(&threads[i], NULL, thread_main, &tws[i]) != 0) {
            puts("FAIL pthread_create");
            return 1;
        }
    }
    tf_worker *w = NULL;
    int64_t task = -1;
    if (take_and_report(uuid, 37.5, &w, &task) != 0) {
        return 1;
    }
    pthread_mutex_lock(&lock);
    while (taken < 2) {
        pthread_cond_wait(&ready, &lock);
    }
    pthread_mutex_unlock(&lock);
    if (tws[0].failed || tws[1].failed) {
        return 1;
    }
    printf("computing %lld %lld %lld\n", (long long)task, (long long)tws[0].task,
           (long long)tws[1].task);
    compute_without_library_calls();
    puts("finished");
    return 1;
}

static int mode_continue(const char *uuid) {
    const int signals[] = {SIGTERM};
    tf_status s = tf_stop_on_signals(signals, 1, TF_STOP_CONTINUE);
    if (s != TF_OK) {
        return fail("tf_stop_on_signals", s);
    }
    tf_worker *a = NULL, *b = NULL;
    int64_t ta = -1, tb = -1;
    if (take_and_report(uuid, 100.0, &a, &ta) != 0 || take_and_report(uuid, 20.0, &b, &tb) != 0) {
        return 1;
    }
    printf("computing %lld %lld\n", (long long)ta, (long long)tb);
    double end = now() + 60.0;
    while (tf_stop_requested() == 0 && now() < end) {
        sleep_seconds(0.01);
    }
    printf("stop_requested %d\n", tf_stop_requested());
    printf("update %s\n", tf_status_name((int)tf_worker_update(b, 40.0)));
    double p = -1;
    printf("held_percent after update %s\n", tf_status_name((int)tf_worker_held_percent(b, &p)));
    printf("done %s\n", tf_status_name((int)tf_worker_done(a)));
    int64_t t = -1;
    printf("task a %s\n", tf_status_name((int)tf_worker_task(a, &t)));
    printf("task b %s\n", tf_status_name((int)tf_worker_task(b, &t)));
    printf("last_error %s\n", tf_last_error());
    tf_worker_free(a);
    tf_worker_free(b);
    return 0;
}

/* The wall-time checks, each printed as "ok ..." or "FAIL ...". */
static int mode_deadline(const char *uuid) {
    int failed = 0;
#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        int ok_ = (cond);                                                                        \
        printf("%s ", ok_ ? "ok" : "FAIL");                                                      \
        printf(__VA_ARGS__);                                                                     \
        printf("\n");                                                                            \
        failed += !ok_;                                                                          \
    } while (0)
    tf_worker *w = NULL;
    tf_status s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    if (s != TF_OK) {
        return fail("tf_worker_new", s);
    }
    int64_t t = -1;
    double p = -1;
    CHECK(tf_worker_held_percent(w, &p) == TF_NO_MORE_TASKS && p == -1,
          "held_percent with no task held is TF_NO_MORE_TASKS");
    /* 1. A deadline an hour away, 2 h per task: no task is taken. */
    CHECK(tf_worker_set_deadline(w, now() + 3600, 7200) == TF_OK, "deadline in 1 h, 2 h per task");
    s = tf_worker_task(w, &t);
    CHECK(s == TF_STOPPED && t == -1, "tf_worker_task -> %s (%s)", tf_status_name((int)s),
          tf_last_error());
    CHECK(strstr(tf_last_error(), "cannot fit a task of 7200.0 s") != NULL,
          "the message says why: %s", tf_last_error());
    /* 2. Estimate from completed tasks: one task of at least 1.2 s. */
    CHECK(tf_worker_set_deadline(w, now() + 3600, 0) == TF_OK, "deadline in 1 h, estimate");
    s = tf_worker_task(w, &t);
    CHECK(s == TF_OK, "a task is taken (%s)", tf_status_name((int)s));
    CHECK(tf_worker_held_percent(w, &p) == TF_OK && p == 0.0, "held_percent is 0 (%g)", p);
    sleep_seconds(1.2);
    CHECK(tf_worker_update(w, 100.0) == TF_OK && tf_worker_done(w) == TF_OK, "task %lld done",
          (long long)t);
    CHECK(tf_worker_set_deadline(w, now() + 1.0, 0) == TF_OK, "deadline in 1 s, estimate");
    int64_t t2 = -1;
    s = tf_worker_task(w, &t2);
    CHECK(s == TF_STOPPED && t2 == -1, "1 s left < the 1.2 s task done: %s (%s)",
          tf_status_name((int)s), tf_last_error());
    CHECK(strstr(tf_last_error(), "the longest task this worker completed") != NULL,
          "the message names the estimate");
    tf_worker_free(w);
    /* 3. TASKFARM_DEADLINE and TASKFARM_TASK_SECONDS, read by a new worker. */
    char deadline[64];
    snprintf(deadline, sizeof deadline, "%.3f", now() + 50.0);
    setenv("TASKFARM_DEADLINE", deadline, 1);
    setenv("TASKFARM_TASK_SECONDS", "100", 1);
    s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    CHECK(s == TF_OK, "a worker with TASKFARM_DEADLINE=now+50 TASKFARM_TASK_SECONDS=100");
    if (s == TF_OK) {
        s = tf_worker_task(w, &t2);
        CHECK(s == TF_STOPPED, "tf_worker_task -> %s (%s)", tf_status_name((int)s),
              tf_last_error());
        tf_worker_free(w);
    }
    /* 4. A bad TASKFARM_DEADLINE: a clear error, no worker. */
    setenv("TASKFARM_DEADLINE", "nan", 1);
    w = NULL;
    s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    CHECK(s == TF_ERR_INVALID_ARGUMENT && w == NULL &&
              strstr(tf_last_error(), "TASKFARM_DEADLINE") != NULL,
          "TASKFARM_DEADLINE=nan -> %s (%s)", tf_status_name((int)s), tf_last_error());
    setenv("TASKFARM_DEADLINE", "1000", 1);
    s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    CHECK(s == TF_ERR_INVALID_ARGUMENT && strstr(tf_last_error(), "already passed") != NULL,
          "TASKFARM_DEADLINE=1000 -> %s (%s)", tf_status_name((int)s), tf_last_error());
    printf("%d failed\n", failed);
    return failed == 0 ? 0 : 1;
}

/* TF_STOP_EXIT, then fork(): the child (no library call) sleeps; the
 * parent reports how the child ended. */
static int mode_fork(void) {
    const int signals[] = {SIGTERM};
    tf_status s = tf_stop_on_signals(signals, 1, TF_STOP_EXIT);
    if (s != TF_OK) {
        return fail("tf_stop_on_signals", s);
    }
    pid_t child = fork();
    if (child == 0) {
        printf("child %ld\n", (long)getpid());
        sleep_seconds(60.0);
        _exit(0);
    }
    int status = 0;
    while (waitpid(child, &status, 0) == -1 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
        printf("child ended by signal %d\n", WTERMSIG(status));
    } else {
        printf("child exited %d\n", WEXITSTATUS(status));
    }
    return 0;
}

/* The task loop with whatever deadline the library finds by itself. */
static int mode_loop(const char *uuid) {
    tf_worker *w = NULL;
    tf_status s = tf_worker_new(NULL, NULL, NULL, uuid, &w);
    if (s != TF_OK) {
        return fail("tf_worker_new", s);
    }
    int tasks = 0;
    int64_t t;
    while ((s = tf_worker_task(w, &t)) == TF_OK) {
        if (tf_worker_update(w, 100.0) != TF_OK || tf_worker_done(w) != TF_OK) {
            return fail("update and done", s);
        }
        tasks++;
    }
    printf("status %s tasks %d\n", tf_status_name((int)s), tasks);
    printf("last_error %s\n", tf_last_error());
    tf_worker_free(w);
    return 0;
}

#ifdef STOP_WORKER_MPI
static int mode_mpi(const char *uuid, int *argc, char ***argv) {
    MPI_Init(argc, argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    tf_worker *w = NULL;
    int64_t task = -1;
    if (take_and_report(uuid, 10.0 * rank + 5.0, &w, &task) != 0) {
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    printf("rank %d pid %ld computing %lld\n", rank, (long)getpid(), (long long)task);
    /* Sleeps rather than spins: more ranks than cores, and the hand-back has
     * under a second between Open MPI's SIGTERM and its SIGKILL. */
    sleep_seconds(60.0);
    puts("finished");
    MPI_Finalize();
    return 1;
}
#endif

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 3) {
        fputs("usage: stop_worker exit|continue|deadline|fork|loop|mpi UUID\n", stderr);
        return 2;
    }
    if (strcmp(argv[1], "exit") == 0) {
        return mode_exit(argv[2]);
    }
    if (strcmp(argv[1], "continue") == 0) {
        return mode_continue(argv[2]);
    }
    if (strcmp(argv[1], "deadline") == 0) {
        return mode_deadline(argv[2]);
    }
    if (strcmp(argv[1], "fork") == 0) {
        return mode_fork();
    }
    if (strcmp(argv[1], "loop") == 0) {
        return mode_loop(argv[2]);
    }
#ifdef STOP_WORKER_MPI
    if (strcmp(argv[1], "mpi") == 0) {
        return mode_mpi(argv[2], &argc, &argv);
    }
#endif
    fprintf(stderr, "stop_worker: unknown mode %s\n", argv[1]);
    return 2;
}
