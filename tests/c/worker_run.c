/*
 * tests/c/worker_run.c: a whole run through the C ABI against a REAL
 * taskfarm 0.4.0 server (tests/harness/server.sh starts it; tests/c/run.sh
 * runs this program, also under valgrind).
 *
 * Needs TASKFARM_URL, TASKFARM_USER and TASKFARM_PASSWORD. Some calls pass
 * NULL credentials and URL (the environment defaults), others the same
 * values as explicit strings.
 *
 * Two workers share the run but take turns in this one thread: with SQLite
 * the server has no row locks, and this test is about the protocol, not
 * about races.
 *
 * Prints one line per check and ends with "N passed, M failed"; the exit
 * status is non-zero when any check failed.
 */
#include <taskfarm_worker.h>

#include "check.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_TASKS 7

static const char *password;  /* never to appear in tf_last_error() */
static char token[1024];      /* a copy of the token, never to appear either */

/* Makes tf_last_error() hold a known message from another function, so that
 * check_last_error sees whether the call under test replaced it. */
static char reset_message[512];
static void reset_last_error(void) {
    (void)tf_worker_uuid(NULL);
    snprintf(reset_message, sizeof reset_message, "%s", tf_last_error());
}

/* After a failure of `function`: a fresh tf_last_error() that names it, is
 * not empty and holds neither the password nor the token. */
static void check_last_error(const char *function) {
    const char *message = tf_last_error();
    bool ok = message != NULL && message[0] != '\0' && strcmp(message, reset_message) != 0 &&
              strstr(message, function) != NULL;
    check(ok, "  tf_last_error() describes the failure of %s: \"%s\"", function,
          message ? message : "(NULL)");
    check(message != NULL && strstr(message, password) == NULL &&
              (token[0] == '\0' || strstr(message, token) == NULL),
          "  tf_last_error() holds neither the password nor the token");
}

/* `got` must be `want`; after a failure, tf_last_error() is checked too. */
static bool expect_status(tf_status got, tf_status want, const char *call) {
    bool ok = got == want;
    check(ok, "%s -> %s%s%s", call, tf_status_name((int)got), ok ? "" : ", expected ",
          ok ? "" : tf_status_name((int)want));
    if (!ok && got != TF_OK && got != TF_NO_MORE_TASKS) {
        printf("     tf_last_error(): %s\n", tf_last_error());
    }
    if (want != TF_OK && want != TF_NO_MORE_TASKS) {
        char name[128];
        function_name(call, name, sizeof name);
        check_last_error(name);
        if (want == TF_ERR_INVALID_ARGUMENT) {
            check(tf_last_http_status() == 0, "  tf_last_http_status() is 0 for a bad argument (%d)",
                  tf_last_http_status());
        }
    }
    return ok;
}

#define EXPECT(call, want) (reset_last_error(), expect_status((call), (want), #call))

static bool near(double a, double b) { return fabs(a - b) < 1e-9; }

/* A string from the library: compare, then free it. */
static void expect_string(char *got, const char *want, const char *what) {
    check(got != NULL && strcmp(got, want) == 0, "%s is %s (got %s)", what, want,
          got ? got : "(NULL)");
    tf_string_free(got);
}

static bool is_hex32(const char *s) {
    if (s == NULL || strlen(s) != 32) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

static void expect_task(const tf_taskfarm *tf, int64_t task, tf_task_state state, double percent) {
    static const char *names[] = {"waiting", "computing", "done"};
    tf_task_state got_state = (tf_task_state)77;
    double got_percent = -1.0;
    tf_status s1 = tf_taskfarm_task_state(tf, task, &got_state);
    tf_status s2 = tf_taskfarm_task_percent_completed(tf, task, &got_percent);
    bool ok = s1 == TF_OK && s2 == TF_OK && got_state == state && near(got_percent, percent);
    check(ok, "task %lld is %s at %g %% (got %s %s, %d at %g %%)", (long long)task,
          names[state], percent, tf_status_name((int)s1), tf_status_name((int)s2), (int)got_state,
          got_percent);
}

static void expect_counts(const tf_taskfarm *tf, int64_t waiting, int64_t computing, int64_t done,
                          double percent) {
    tf_run_status st;
    memset(&st, 0xab, sizeof st);
    tf_status s = tf_taskfarm_status(tf, &st);
    bool ok = s == TF_OK && st.num_tasks == NUM_TASKS && st.num_waiting == waiting &&
              st.num_computing == computing && st.num_done == done &&
              near(st.percent_done, percent);
    check(ok,
          "tf_taskfarm_status: %s, %lld tasks, waiting %lld computing %lld done %lld, %g %% "
          "(expected waiting %lld computing %lld done %lld, %g %%)",
          tf_status_name((int)s), (long long)st.num_tasks, (long long)st.num_waiting,
          (long long)st.num_computing, (long long)st.num_done, st.percent_done,
          (long long)waiting, (long long)computing, (long long)done, percent);
    int64_t n = -7;
    double p = -7.0;
    EXPECT(tf_taskfarm_num_waiting(tf, &n), TF_OK);
    check(n == waiting, "  tf_taskfarm_num_waiting is %lld (%lld)", (long long)waiting, (long long)n);
    EXPECT(tf_taskfarm_num_computing(tf, &n), TF_OK);
    check(n == computing, "  tf_taskfarm_num_computing is %lld (%lld)", (long long)computing,
          (long long)n);
    EXPECT(tf_taskfarm_num_done(tf, &n), TF_OK);
    check(n == done, "  tf_taskfarm_num_done is %lld (%lld)", (long long)done, (long long)n);
    EXPECT(tf_taskfarm_percent_done(tf, &p), TF_OK);
    check(near(p, percent), "  tf_taskfarm_percent_done is %g (%g)", percent, p);
}

/* Takes a task with `w`, checks it is handed back again while held, reports
 * 0, 20, ..., 100 % and marks it done. Returns the task, -1 when none is left. */
static int64_t work_one(tf_worker *w, const char *name) {
    const tf_taskfarm *tf = tf_worker_taskfarm(w);
    int64_t task = -5;
    tf_status s = tf_worker_task(w, &task);
    if (s == TF_NO_MORE_TASKS) {
        check(task == -5, "%s: TF_NO_MORE_TASKS leaves the out-pointer alone", name);
        return -1;
    }
    if (!EXPECT(s, TF_OK)) {
        return -1;
    }
    check(task >= 0 && task < NUM_TASKS, "%s got task %lld", name, (long long)task);
    int64_t again = -5;
    EXPECT(tf_worker_task(w, &again), TF_OK);
    check(again == task, "%s: the held task %lld is handed back again (%lld)", name,
          (long long)task, (long long)again);
    expect_task(tf, task, TF_TASK_COMPUTING, 0.0);
    for (int p = 0; p <= 100; p += 20) {
        EXPECT(tf_worker_update(w, (double)p), TF_OK);
    }
    expect_task(tf, task, TF_TASK_COMPUTING, 100.0);
    EXPECT(tf_worker_done(w), TF_OK);
    expect_task(tf, task, TF_TASK_DONE, 100.0);
    return task;
}

int main(void) {
    const char *url = getenv("TASKFARM_URL");
    const char *user = getenv("TASKFARM_USER");
    password = getenv("TASKFARM_PASSWORD");
    if (!url || !*url || !user || !*user || !password || !*password) {
        fprintf(stderr, "worker_run: set TASKFARM_URL, TASKFARM_USER and TASKFARM_PASSWORD "
                        "(tests/harness/server.sh env DIR)\n");
        puts("0 passed, 1 failed");
        return 1;
    }
    /* The base URL as the library uses it (with its trailing '/'), and without it. */
    char base[1024], base_no_slash[1024];
    snprintf(base, sizeof base, "%s%s", url, url[strlen(url) - 1] == '/' ? "" : "/");
    snprintf(base_no_slash, sizeof base_no_slash, "%s", base);
    base_no_slash[strlen(base_no_slash) - 1] = '\0';

    puts("-- version and status names");
    {
        char want[64];
        snprintf(want, sizeof want, "%d.%d.%d", TF_VERSION_MAJOR, TF_VERSION_MINOR,
                 TF_VERSION_PATCH);
        const char *v = tf_version();
        check(v != NULL && strcmp(v, want) == 0, "tf_version() is \"%s\" (the header's %s)",
              v ? v : "(NULL)", want);
        static const char *names[] = {"TF_OK",           "TF_NO_MORE_TASKS", "TF_ERR_INVALID_ARGUMENT",
                                      "TF_ERR_CONNECTION", "TF_ERR_AUTH",    "TF_ERR_NOT_FOUND",
                                      "TF_ERR_HTTP",     "TF_ERR_PROTOCOL", "TF_ERR_INTERNAL",
                                      "TF_STOPPED",      "TF_NOT_DONE"};
        const int codes[] = {TF_OK,           TF_NO_MORE_TASKS, TF_ERR_INVALID_ARGUMENT,
                             TF_ERR_CONNECTION, TF_ERR_AUTH,    TF_ERR_NOT_FOUND,
                             TF_ERR_HTTP,     TF_ERR_PROTOCOL, TF_ERR_INTERNAL,
                             TF_STOPPED,      TF_NOT_DONE};
        for (int i = 0; i < 11; i++) {
            const char *n = tf_status_name(codes[i]);
            check(codes[i] == i && n != NULL && strcmp(n, names[i]) == 0,
                  "tf_status_name(%d) is %s", codes[i], n ? n : "(NULL)");
        }
        const int unknown[] = {-1, 11, 42, INT_MAX, INT_MIN};
        for (int i = 0; i < 5; i++) {
            const char *n = tf_status_name(unknown[i]);
            check(n != NULL && strcmp(n, "TF_UNKNOWN_STATUS") == 0,
                  "tf_status_name(%d) is TF_UNKNOWN_STATUS (%s)", unknown[i], n ? n : "(NULL)");
        }
    }

    puts("-- create a run (credentials and URL from the environment)");
    tf_taskfarm *tf = NULL;
    if (!EXPECT(tf_taskfarm_create(NULL, NULL, NULL, NUM_TASKS, &tf), TF_OK) || tf == NULL) {
        printf("%d passed, %d failed\n", passed, failed + 1);
        return 1;
    }
    char uuid[128];
    const char *u = tf_taskfarm_uuid(tf);
    check(is_hex32(u), "tf_taskfarm_uuid is a UUID: %s", u ? u : "(NULL)");
    snprintf(uuid, sizeof uuid, "%s", u ? u : "");
    check(tf_taskfarm_num_tasks(tf) == NUM_TASKS, "tf_taskfarm_num_tasks is %d (%lld)", NUM_TASKS,
          (long long)tf_taskfarm_num_tasks(tf));
    {
        const char *t = tf_taskfarm_token(tf);
        check(t != NULL && t[0] != '\0', "tf_taskfarm_token is non-empty");
        snprintf(token, sizeof token, "%s", t ? t : "");
        char *s = NULL;
        EXPECT(tf_taskfarm_url(tf, "runs", &s), TF_OK);
        char want[1100];
        snprintf(want, sizeof want, "%sruns", base);
        expect_string(s, want, "tf_taskfarm_url(tf, \"runs\")");
        s = NULL;
        EXPECT(tf_taskfarm_url(tf, "", &s), TF_OK);
        expect_string(s, base, "tf_taskfarm_url(tf, \"\")");
    }
    expect_counts(tf, 0, 0, 0, 0.0);

    puts("-- the run list (explicit credentials and URL)");
    {
        tf_run_list *list = NULL;
        EXPECT(tf_runs(user, password, url, &list), TF_OK);
        size_t n = tf_run_list_len(list);
        check(n >= 1, "tf_run_list_len is at least 1 (%zu)", n);
        size_t found = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            const char *ru = tf_run_list_uuid(list, i);
            if (ru != NULL && strcmp(ru, uuid) == 0) {
                found = i;
            }
        }
        check(found != SIZE_MAX, "the new run is in the list");
        if (found != SIZE_MAX) {
            check(tf_run_list_num_tasks(list, found) == NUM_TASKS, "its num_tasks is %d (%lld)",
                  NUM_TASKS, (long long)tf_run_list_num_tasks(list, found));
            check(tf_run_list_id(list, found) > 0, "its id is positive (%lld)",
                  (long long)tf_run_list_id(list, found));
        }
        const size_t past[] = {n, n + 1, SIZE_MAX};
        for (int i = 0; i < 3; i++) {
            reset_last_error();
            check(tf_run_list_uuid(list, past[i]) == NULL, "tf_run_list_uuid(list, %zu) is NULL",
                  past[i]);
            check_last_error("tf_run_list_uuid");
            reset_last_error();
            check(tf_run_list_id(list, past[i]) == -1, "tf_run_list_id(list, %zu) is -1", past[i]);
            check_last_error("tf_run_list_id");
            reset_last_error();
            check(tf_run_list_num_tasks(list, past[i]) == -1,
                  "tf_run_list_num_tasks(list, %zu) is -1", past[i]);
            check_last_error("tf_run_list_num_tasks");
        }
        tf_run_list_free(list);

        char *json = NULL;
        EXPECT(tf_runs_json(NULL, NULL, NULL, &json), TF_OK);
        char want[200];
        snprintf(want, sizeof want, "\"uuid\":\"%s\"", uuid);
        check(json != NULL && json[0] == '[' && strstr(json, want) != NULL,
              "tf_runs_json is an array holding %s", want);
        tf_string_free(json);
    }

    puts("-- a second handle, the URL without its trailing '/'");
    tf_taskfarm *tf2 = NULL;
    EXPECT(tf_taskfarm_open(user, password, base_no_slash, uuid, &tf2), TF_OK);
    check(tf2 != NULL && tf_taskfarm_num_tasks(tf2) == NUM_TASKS &&
              strcmp(tf_taskfarm_uuid(tf2), uuid) == 0,
          "tf_taskfarm_open gives the same run (uuid, %d tasks)", NUM_TASKS);
    {
        char *s = NULL;
        EXPECT(tf_taskfarm_url(tf2, "runs", &s), TF_OK);
        char want[1100];
        snprintf(want, sizeof want, "%sruns", base);
        expect_string(s, want, "tf_taskfarm_url of a handle opened without the '/'");
    }

    puts("-- a token instead of the password");
    {
        tf_taskfarm *t3 = NULL;
        EXPECT(tf_taskfarm_open_with_token(token, url, uuid, &t3), TF_OK);
        check(t3 != NULL && strcmp(tf_taskfarm_uuid(t3), uuid) == 0 &&
                  strcmp(tf_taskfarm_token(t3), token) == 0 && tf_taskfarm_num_tasks(t3) == NUM_TASKS,
              "tf_taskfarm_open_with_token opens the run with the token given");
        tf_worker *w3 = NULL;
        EXPECT(tf_worker_new_with_token(token, NULL, uuid, &w3), TF_OK);
        check(w3 != NULL && is_hex32(tf_worker_uuid(w3)) &&
                  strcmp(tf_taskfarm_token(tf_worker_taskfarm(w3)), token) == 0,
              "tf_worker_new_with_token registers a worker that uses the token");
        tf_worker_free(w3);
        tf_taskfarm *x = (tf_taskfarm *)&passed; /* sentinel */
        EXPECT(tf_taskfarm_open_with_token(token, url, "0123456789abcdef0123456789abcdef", &x),
               TF_ERR_NOT_FOUND);
        check(x == (tf_taskfarm *)&passed, "  the out-pointer is untouched");
        tf_taskfarm_free(t3);
    }

    puts("-- run information");
    {
        char *json = NULL;
        EXPECT(tf_taskfarm_info(tf, "numDone", &json), TF_OK);
        expect_string(json, "0", "info(\"numDone\")");
        json = NULL;
        EXPECT(tf_taskfarm_info(tf, "", &json), TF_OK);
        char want[200];
        snprintf(want, sizeof want, "\"uuid\":\"%s\"", uuid);
        check(json != NULL && json[0] == '{' && strstr(json, want) && strstr(json, "\"numTasks\":7") &&
                  strstr(json, "\"percentDone\"") && strstr(json, "\"numWaiting\"") &&
                  strstr(json, "\"numComputing\""),
              "info(\"\") is the whole object: %s", json ? json : "(NULL)");
        tf_string_free(json);
        json = NULL;
        EXPECT(tf_taskfarm_info(tf2, NULL, &json), TF_OK);
        check(json != NULL && json[0] == '{' && strstr(json, want),
              "info(NULL) is the whole object too");
        tf_string_free(json);
        char sentinel[] = "untouched";
        json = sentinel;
        EXPECT(tf_taskfarm_info(tf, "bogus", &json), TF_ERR_INVALID_ARGUMENT);
        check(json == sentinel, "  the out-pointer is untouched");
        EXPECT(tf_taskfarm_info(tf, "numTasks", &json), TF_ERR_INVALID_ARGUMENT);
        check(json == sentinel, "  the out-pointer is untouched");
    }

    puts("-- two workers");
    tf_worker *w1 = NULL, *w2 = NULL;
    EXPECT(tf_worker_new(NULL, NULL, NULL, uuid, &w1), TF_OK);
    EXPECT(tf_worker_new(user, password, url, uuid, &w2), TF_OK);
    if (w1 == NULL || w2 == NULL) {
        tf_worker_free(w1);
        tf_worker_free(w2);
        tf_taskfarm_free(tf2);
        tf_taskfarm_free(tf);
        printf("%d passed, %d failed\n", passed, failed + 1);
        return 1;
    }
    {
        const char *u1 = tf_worker_uuid(w1), *u2 = tf_worker_uuid(w2);
        check(is_hex32(u1) && is_hex32(u2) && strcmp(u1, u2) != 0,
              "worker UUIDs are 32 lowercase hex digits and differ: %s %s", u1 ? u1 : "(NULL)",
              u2 ? u2 : "(NULL)");
        const tf_taskfarm *b = tf_worker_taskfarm(w1);
        check(b != NULL && strcmp(tf_taskfarm_uuid(b), uuid) == 0 &&
                  tf_taskfarm_num_tasks(b) == NUM_TASKS && tf_worker_taskfarm(w1) == b,
              "tf_worker_taskfarm lends the worker's run (same uuid, %d tasks, stable)", NUM_TASKS);
    }
    puts("-- nothing held: update, done and requeue do nothing");
    EXPECT(tf_worker_update(w1, 50.0), TF_OK);
    EXPECT(tf_worker_done(w1), TF_OK);
    EXPECT(tf_worker_requeue(w1), TF_OK);
    expect_counts(tf, 0, 0, 0, 0.0);

    puts("-- worker 1: a task, bad updates, done at 50 % does not mark it done");
    int64_t a = -1;
    EXPECT(tf_worker_task(w1, &a), TF_OK);
    {
        int64_t again = -1;
        EXPECT(tf_worker_task(w1, &again), TF_OK);
        check(a >= 0 && a < NUM_TASKS && again == a, "worker 1 holds task %lld (again: %lld)",
              (long long)a, (long long)again);
    }
    expect_task(tf, a, TF_TASK_COMPUTING, 0.0);
    EXPECT(tf_worker_update(w1, 150.0), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_worker_update(w1, NAN), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_worker_update(w1, -1.0), TF_ERR_INVALID_ARGUMENT);
    expect_task(tf, a, TF_TASK_COMPUTING, 0.0);
    EXPECT(tf_worker_update(w1, 50.0), TF_OK);
    expect_task(tf2, a, TF_TASK_COMPUTING, 50.0);
    {
        char *json = NULL;
        EXPECT(tf_taskfarm_get_task_info(tf, a, "percentCompleted", &json), TF_OK);
        check(json != NULL && near(strtod(json, NULL), 50.0),
              "get_task_info(percentCompleted) is 50: %s", json ? json : "(NULL)");
        tf_string_free(json);
        json = NULL;
        EXPECT(tf_taskfarm_get_task_info(tf, a, "status", &json), TF_OK);
        expect_string(json, "\"computing\"", "get_task_info(status)");
    }
    EXPECT(tf_worker_done(w1), TF_NOT_DONE);
    expect_task(tf, a, TF_TASK_COMPUTING, 50.0);
    {
        int64_t next = -1;
        EXPECT(tf_worker_task(w1, &next), TF_OK);
        check(next != a, "after done, worker 1 asks for a new task (%lld, not %lld)",
              (long long)next, (long long)a);
        /* Give it back at once: worker 2 will get it. */
        EXPECT(tf_worker_requeue(w1), TF_OK);
        expect_task(tf, next, TF_TASK_WAITING, 0.0);
    }

    puts("-- worker 2: requeue gives a task back (waiting, 0 %)");
    int64_t b = -1;
    EXPECT(tf_worker_task(w2, &b), TF_OK);
    EXPECT(tf_worker_update(w2, 25.0), TF_OK);
    expect_task(tf, b, TF_TASK_COMPUTING, 25.0);
    EXPECT(tf_worker_requeue(w2), TF_OK);
    expect_task(tf, b, TF_TASK_WAITING, 0.0);
    expect_counts(tf, 1, 1, 0, 50.0 / NUM_TASKS);
    EXPECT(tf_worker_update(w2, 60.0), TF_OK); /* nothing held any more */
    expect_task(tf, b, TF_TASK_WAITING, 0.0);
    {
        int64_t c = -1;
        EXPECT(tf_worker_task(w2, &c), TF_OK);
        check(c == b, "the waiting task %lld is handed out first (%lld)", (long long)b,
              (long long)c);
        EXPECT(tf_worker_requeue(w2), TF_OK);
    }

    puts("-- both workers work through the run");
    int done_count[NUM_TASKS] = {0};
    int by_worker[2] = {0, 0};
    {
        bool more1 = true, more2 = true;
        int rounds = 0;
        while ((more1 || more2) && rounds++ < 4 * NUM_TASKS) {
            if (more1) {
                int64_t t = work_one(w1, "worker 1");
                more1 = t >= 0;
                if (more1) {
                    done_count[t]++;
                    by_worker[0]++;
                }
            }
            if (more2) {
                int64_t t = work_one(w2, "worker 2");
                more2 = t >= 0;
                if (more2) {
                    done_count[t]++;
                    by_worker[1]++;
                }
            }
        }
        int64_t t = -5;
        EXPECT(tf_worker_task(w1, &t), TF_NO_MORE_TASKS);
        EXPECT(tf_worker_task(w2, &t), TF_NO_MORE_TASKS);
        check(t == -5, "TF_NO_MORE_TASKS leaves the out-pointer alone");
        bool once = true;
        for (int i = 0; i < NUM_TASKS; i++) {
            once = once && done_count[i] == (i == a ? 0 : 1);
        }
        check(once && by_worker[0] + by_worker[1] == NUM_TASKS - 1,
              "every task but %lld done exactly once (worker 1: %d, worker 2: %d)", (long long)a,
              by_worker[0], by_worker[1]);
        check(by_worker[0] > 0 && by_worker[1] > 0, "both workers did tasks");
    }
    expect_counts(tf, 0, 1, NUM_TASKS - 1, (100.0 * (NUM_TASKS - 1) + 50.0) / NUM_TASKS);

    puts("-- restart(false): unfinished tasks back to waiting, keeping their percentage");
    EXPECT(tf_taskfarm_restart(tf, false), TF_OK);
    expect_task(tf, a, TF_TASK_WAITING, 50.0);
    expect_counts(tf, 1, 0, NUM_TASKS - 1, (100.0 * (NUM_TASKS - 1) + 50.0) / NUM_TASKS);
    {
        int64_t t = -1;
        EXPECT(tf_worker_task(w1, &t), TF_OK);
        check(t == a, "after TF_NO_MORE_TASKS, tf_worker_task asks again: task %lld (%lld)",
              (long long)a, (long long)t);
        expect_task(tf, a, TF_TASK_COMPUTING, 50.0);
        EXPECT(tf_worker_update(w1, 75.0), TF_OK);
        EXPECT(tf_worker_update(w1, 100.0), TF_OK);
        EXPECT(tf_worker_done(w1), TF_OK);
        expect_task(tf, a, TF_TASK_DONE, 100.0);
        EXPECT(tf_worker_task(w1, &t), TF_NO_MORE_TASKS);
        EXPECT(tf_worker_task(w2, &t), TF_NO_MORE_TASKS);
    }

    puts("-- the run is done");
    expect_counts(tf, 0, 0, NUM_TASKS, 100.0);
    expect_counts(tf_worker_taskfarm(w2), 0, 0, NUM_TASKS, 100.0);
    {
        char *json = NULL;
        EXPECT(tf_taskfarm_info(tf, "numDone", &json), TF_OK);
        expect_string(json, "7", "info(\"numDone\")");
        json = NULL;
        EXPECT(tf_taskfarm_info(tf, "numWaiting", &json), TF_OK);
        expect_string(json, "0", "info(\"numWaiting\")");
        json = NULL;
        EXPECT(tf_taskfarm_info(tf, "percentDone", &json), TF_OK);
        check(json != NULL && near(strtod(json, NULL), 100.0), "info(\"percentDone\") is 100: %s",
              json ? json : "(NULL)");
        tf_string_free(json);
        json = NULL;
        EXPECT(tf_taskfarm_info(tf, "", &json), TF_OK);
        check(json != NULL && strstr(json, "\"numDone\":7") && strstr(json, "\"numWaiting\":0") &&
                  strstr(json, "\"numComputing\":0"),
              "info(\"\"): %s", json ? json : "(NULL)");
        tf_string_free(json);
    }

    puts("-- task information: get and set, typed conveniences");
    {
        char *json = NULL;
        char want[64];
        EXPECT(tf_taskfarm_get_task_info(tf, a, "", &json), TF_OK);
        snprintf(want, sizeof want, "\"task\":%lld", (long long)a);
        check(json != NULL && json[0] == '{' && strstr(json, want) && strstr(json, "\"status\":\"done\"") &&
                  strstr(json, "\"percentCompleted\"") && strstr(json, "\"id\""),
              "get_task_info(\"\") is the whole task: %s", json ? json : "(NULL)");
        tf_string_free(json);
        json = NULL;
        EXPECT(tf_taskfarm_get_task_info(tf, a, NULL, &json), TF_OK);
        check(json != NULL && strstr(json, want), "get_task_info(NULL) is the whole task too");
        tf_string_free(json);

        EXPECT(tf_taskfarm_set_task_info(tf, a, "status", "\"waiting\""), TF_OK);
        EXPECT(tf_taskfarm_set_task_info(tf, a, "percentCompleted", "30"), TF_OK);
        expect_task(tf, a, TF_TASK_WAITING, 30.0);
        json = NULL;
        EXPECT(tf_taskfarm_get_task_info(tf2, a, "status", &json), TF_OK);
        expect_string(json, "\"waiting\"", "get_task_info(status) after set_task_info");
        EXPECT(tf_taskfarm_set_task_info(tf, a, "status", "\"computing\""), TF_OK);
        EXPECT(tf_taskfarm_set_task_info(tf, a, "percentCompleted", "62.5"), TF_OK);
        expect_task(tf, a, TF_TASK_COMPUTING, 62.5);
        EXPECT(tf_taskfarm_set_task_info(tf, a, "status", "\"bogus\""), TF_ERR_INVALID_ARGUMENT);
        EXPECT(tf_taskfarm_set_task_info(tf, a, "percentCompleted", "150"), TF_ERR_INVALID_ARGUMENT);
        EXPECT(tf_taskfarm_set_task_info(tf, a, "bogus", "1"), TF_ERR_INVALID_ARGUMENT);
        EXPECT(tf_taskfarm_set_task_info(tf, a, "status", "not json"), TF_ERR_INVALID_ARGUMENT);
        char sentinel[] = "untouched";
        json = sentinel;
        EXPECT(tf_taskfarm_get_task_info(tf, a, "bogus", &json), TF_ERR_INVALID_ARGUMENT);
        check(json == sentinel, "  the out-pointer is untouched");
        expect_task(tf, a, TF_TASK_COMPUTING, 62.5);

        EXPECT(tf_taskfarm_set_task_state(tf, a, TF_TASK_WAITING), TF_OK);
        EXPECT(tf_taskfarm_set_task_percent_completed(tf, a, 12.5), TF_OK);
        expect_task(tf, a, TF_TASK_WAITING, 12.5);
        EXPECT(tf_taskfarm_set_task_percent_completed(tf, a, 100.0), TF_OK);
        EXPECT(tf_taskfarm_set_task_state(tf, a, TF_TASK_DONE), TF_OK);
        expect_task(tf, a, TF_TASK_DONE, 100.0);
        EXPECT(tf_taskfarm_set_task_state(tf, a, 42), TF_ERR_INVALID_ARGUMENT);
        EXPECT(tf_taskfarm_set_task_percent_completed(tf, a, NAN), TF_ERR_INVALID_ARGUMENT);
        EXPECT(tf_taskfarm_set_task_percent_completed(tf, a, 100.5), TF_ERR_INVALID_ARGUMENT);
        EXPECT(tf_taskfarm_set_task_percent_completed(tf, NUM_TASKS, 10.0), TF_ERR_INVALID_ARGUMENT);
        expect_task(tf, a, TF_TASK_DONE, 100.0);
        expect_counts(tf, 0, 0, NUM_TASKS, 100.0);
    }

    puts("-- restart(true): every task back to waiting at 0 %");
    EXPECT(tf_taskfarm_restart(tf2, true), TF_OK);
    expect_counts(tf, NUM_TASKS, 0, 0, 0.0);
    for (int64_t t = 0; t < NUM_TASKS; t++) {
        expect_task(tf, t, TF_TASK_WAITING, 0.0);
    }

    puts("-- tf_worker_free never marks a held task done; restart(false) leaves it at 100 %");
    {
        int64_t t = -1;
        EXPECT(tf_worker_task(w2, &t), TF_OK);
        EXPECT(tf_worker_update(w2, 100.0), TF_OK);
        tf_worker_free(w2);
        w2 = NULL;
        expect_task(tf, t, TF_TASK_COMPUTING, 100.0);
        EXPECT(tf_taskfarm_restart(tf, false), TF_OK);
        expect_task(tf, t, TF_TASK_COMPUTING, 100.0);
        expect_counts(tf, NUM_TASKS - 1, 1, 0, 100.0 / NUM_TASKS);
    }

    puts("-- timeout and retries");
    EXPECT(tf_taskfarm_set_timeout(tf, 30.0), TF_OK);
    EXPECT(tf_taskfarm_set_timeout(tf, 0.001), TF_OK);
    EXPECT(tf_taskfarm_set_timeout(tf, 1e6), TF_OK);
    EXPECT(tf_taskfarm_set_timeout(tf, NAN), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_timeout(tf, 0.0), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_timeout(tf, -1.0), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_timeout(tf, INFINITY), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_timeout(tf, 1e300), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_retries(tf, 0), TF_OK);
    EXPECT(tf_taskfarm_set_retries(tf, 1000), TF_OK);
    EXPECT(tf_taskfarm_set_retries(tf, 1001), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_retries(tf, (uint32_t)-1), TF_ERR_INVALID_ARGUMENT);
    EXPECT(tf_taskfarm_set_timeout(tf, 20.0), TF_OK);
    EXPECT(tf_taskfarm_set_retries(tf, 2), TF_OK);
    expect_counts(tf, NUM_TASKS - 1, 1, 0, 100.0 / NUM_TASKS);

    puts("-- delete: later calls give TF_ERR_NOT_FOUND");
    EXPECT(tf_taskfarm_delete(tf), TF_OK);
    {
        tf_run_status st;
        memset(&st, 0xab, sizeof st);
        tf_run_status before = st;
        EXPECT(tf_taskfarm_status(tf, &st), TF_ERR_NOT_FOUND);
        check(memcmp(&st, &before, sizeof st) == 0, "  the out-pointer is untouched");
        check(tf_last_http_status() == 404, "  tf_last_http_status() is 404 (%d)",
              tf_last_http_status());
        int64_t n = -9;
        EXPECT(tf_taskfarm_num_done(tf2, &n), TF_ERR_NOT_FOUND);
        check(n == -9, "  the out-pointer is untouched");
        char *json = NULL;
        EXPECT(tf_taskfarm_info(tf, "", &json), TF_ERR_NOT_FOUND);
        check(json == NULL, "  the out-pointer is untouched");
        EXPECT(tf_taskfarm_get_task_info(tf, 0, "", &json), TF_ERR_NOT_FOUND);
        EXPECT(tf_taskfarm_set_task_state(tf, 0, TF_TASK_DONE), TF_ERR_NOT_FOUND);
        EXPECT(tf_taskfarm_restart(tf, true), TF_ERR_NOT_FOUND);
        EXPECT(tf_taskfarm_delete(tf2), TF_ERR_NOT_FOUND);
        int64_t t = -9;
        EXPECT(tf_worker_task(w1, &t), TF_ERR_NOT_FOUND);
        check(t == -9, "  the out-pointer is untouched");
        EXPECT(tf_taskfarm_status(tf_worker_taskfarm(w1), &st), TF_ERR_NOT_FOUND);
        check(tf_taskfarm_uuid(tf) != NULL && strcmp(tf_taskfarm_uuid(tf), uuid) == 0 &&
                  tf_taskfarm_num_tasks(tf) == NUM_TASKS,
              "the deleted handle still knows its uuid and number of tasks");
        tf_taskfarm *gone = (tf_taskfarm *)&st; /* a sentinel, never dereferenced */
        EXPECT(tf_taskfarm_open(NULL, NULL, NULL, uuid, &gone), TF_ERR_NOT_FOUND);
        check(gone == (tf_taskfarm *)&st, "  the out-pointer is untouched");
        tf_worker *wgone = (tf_worker *)&st;
        EXPECT(tf_worker_new(user, password, url, uuid, &wgone), TF_ERR_NOT_FOUND);
        check(wgone == (tf_worker *)&st, "  the out-pointer is untouched");
        tf_run_list *list = NULL;
        EXPECT(tf_runs(NULL, NULL, NULL, &list), TF_OK);
        bool listed = false;
        for (size_t i = 0; i < tf_run_list_len(list); i++) {
            listed = listed || strcmp(tf_run_list_uuid(list, i), uuid) == 0;
        }
        check(!listed, "the deleted run is no longer listed");
        tf_run_list_free(list);
    }

    puts("-- wrong credentials give TF_ERR_AUTH");
    {
        const char *wrong = "not-the-password-4711";
        tf_taskfarm *x = (tf_taskfarm *)&passed; /* sentinel */
        EXPECT(tf_taskfarm_create(user, wrong, url, 3, &x), TF_ERR_AUTH);
        check(x == (tf_taskfarm *)&passed, "  the out-pointer is untouched");
        check(tf_last_http_status() == 401, "  tf_last_http_status() is 401 (%d)",
              tf_last_http_status());
        check(strstr(tf_last_error(), wrong) == NULL, "  tf_last_error() does not hold the wrong password");
        tf_run_list *list = NULL;
        EXPECT(tf_runs(user, wrong, NULL, &list), TF_ERR_AUTH);
        check(list == NULL, "  the out-pointer is untouched");
        check(strstr(tf_last_error(), wrong) == NULL, "  tf_last_error() does not hold the wrong password");
        EXPECT(tf_runs(user, "", NULL, &list), TF_ERR_AUTH);
        EXPECT(tf_runs("no-such-user", password, url, &list), TF_ERR_AUTH);
        tf_worker *w = NULL;
        EXPECT(tf_worker_new(user, wrong, NULL, uuid, &w), TF_ERR_AUTH);
        check(w == NULL, "  the out-pointer is untouched");
    }

    tf_worker_free(w1);
    tf_taskfarm_free(tf2);
    tf_taskfarm_free(tf);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
