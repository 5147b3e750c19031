/*
 * tests/c/bad_arguments.c: every function of include/taskfarm_worker.h fed
 * bad arguments: NULL for each pointer parameter (one at a time), invalid
 * UTF-8, NaN, infinities, negative and huge numbers, tasks outside
 * 0..numTasks-1, a state that is not a tf_task_state, malformed URLs, bad
 * settings in the environment, and *_free(NULL).
 *
 * Each call must give its documented result (TF_ERR_INVALID_ARGUMENT, or
 * NULL / -1 / 0 for getters), leave its out-pointer alone (pre-filled with
 * a sentinel), send nothing to the server, and leave a fresh tf_last_error()
 * that names the function and holds no secret, with tf_last_http_status() 0.
 *
 * The handle-based calls use a REAL taskfarm server: TASKFARM_URL,
 * TASKFARM_USER and TASKFARM_PASSWORD (tests/c/run.sh sets them).
 *
 * Prints one line per check and ends with "N passed, M failed"; the exit
 * status is non-zero when any check failed.
 */
#define _POSIX_C_SOURCE 200112L /* setenv, unsetenv, sigaction */

#include <taskfarm_worker.h>

#include "check.h"

#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_TASKS 3

static char user[256], password[256], url[1024];

/* A sentinel for out-pointers: an object whose address the library never hands out. */
static char sentinel_object;
#define SENTINEL ((void *)&sentinel_object)

static const char BAD_UTF8[] = "\xff\xfe";
static const char SECRET_IN_URL[] = "s3cretpw";

/* Makes tf_last_error() hold a known message from another function, so that
 * the next check sees whether the call under test replaced it. */
static char reset_message[512];
static void reset_last_error(const char *call) {
    if (strncmp(call, "tf_run_list_len", 15) == 0) {
        (void)tf_worker_uuid(NULL);
    } else {
        (void)tf_run_list_len(NULL);
    }
    snprintf(reset_message, sizeof reset_message, "%s", tf_last_error());
}

/* After a failure of `function`: a fresh, non-empty tf_last_error() that names
 * it and holds neither the password nor the secret of a URL; HTTP status 0. */
static void check_last_error(const char *function) {
    const char *message = tf_last_error();
    bool ok = message != NULL && message[0] != '\0' && strcmp(message, reset_message) != 0 &&
              strstr(message, function) != NULL;
    check(ok, "  tf_last_error(): \"%s\"", message ? message : "(NULL)");
    check(message != NULL && strstr(message, password) == NULL &&
              strstr(message, SECRET_IN_URL) == NULL,
          "  tf_last_error() holds no secret");
    check(tf_last_http_status() == 0, "  tf_last_http_status() is 0 (%d)", tf_last_http_status());
}

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
    }
    return ok;
}

/* A fallible call that must give `want` (after it, tf_last_error() is checked). */
#define EXPECT(call, want) (reset_last_error(#call), expect_status((call), (want), #call))
#define INVALID(call) EXPECT(call, TF_ERR_INVALID_ARGUMENT)

/* A getter that must fail with the value `want` (NULL, -1, 0). */
#define GETTER_FAILS(call, want)                                                             \
    do {                                                                                     \
        reset_last_error(#call);                                                             \
        bool ok_ = (call) == (want);                                                         \
        check(ok_, "%s -> %s", #call, #want);                                                \
        char name_[128];                                                                     \
        function_name(#call, name_, sizeof name_);                                           \
        check_last_error(name_);                                                             \
    } while (0)

#define UNTOUCHED(cond) check((cond), "  the out-pointer is untouched (%s)", #cond)

static bool same_bytes(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* The number of runs on the server (a valid call). */
static size_t count_runs(void) {
    tf_run_list *list = NULL;
    if (tf_runs(NULL, NULL, NULL, &list) != TF_OK) {
        check(false, "tf_runs to count the runs: %s", tf_last_error());
        return SIZE_MAX;
    }
    size_t n = tf_run_list_len(list);
    tf_run_list_free(list);
    return n;
}

/* Every function that reaches the server from credentials and a URL (only
 * those that take a run uuid when `uuid_only`), with these arguments: each
 * must give TF_ERR_INVALID_ARGUMENT and leave its out-pointer alone. */
static void connect_all_invalid(const char *label, const char *u, const char *p, const char *base,
                                const char *run_uuid, bool uuid_only) {
    printf("-- connecting with %s\n", label);
    tf_taskfarm *tf = SENTINEL;
    if (!uuid_only) {
        tf_run_list *list = SENTINEL;
        INVALID(tf_runs(u, p, base, &list));
        UNTOUCHED(list == SENTINEL);
        char *json = SENTINEL;
        INVALID(tf_runs_json(u, p, base, &json));
        UNTOUCHED(json == SENTINEL);
        INVALID(tf_taskfarm_create(u, p, base, NUM_TASKS, &tf));
        UNTOUCHED(tf == SENTINEL);
    }
    INVALID(tf_taskfarm_open(u, p, base, run_uuid, &tf));
    UNTOUCHED(tf == SENTINEL);
    tf_worker *w = SENTINEL;
    INVALID(tf_worker_new(u, p, base, run_uuid, &w));
    UNTOUCHED(w == SENTINEL);
}

/* Runs connect_all_invalid with the environment variable `name` set to
 * `value` (NULL: unset; `shown`: how to print it), then puts it back. */
static void with_env(const char *name, const char *value, const char *shown, const char *run_uuid) {
    char saved[1024];
    const char *old = getenv(name);
    bool had = old != NULL;
    snprintf(saved, sizeof saved, "%s", had ? old : "");
    char label[256];
    if (value) {
        setenv(name, value, 1);
        snprintf(label, sizeof label, "NULL arguments and %s=\"%s\"", name, shown ? shown : value);
    } else {
        unsetenv(name);
        snprintf(label, sizeof label, "NULL arguments and %s unset", name);
    }
    connect_all_invalid(label, NULL, NULL, NULL, run_uuid, false);
    if (had) {
        setenv(name, saved, 1);
    } else {
        unsetenv(name);
    }
}

int main(void) {
    const char *e_url = getenv("TASKFARM_URL");
    const char *e_user = getenv("TASKFARM_USER");
    const char *e_password = getenv("TASKFARM_PASSWORD");
    if (!e_url || !*e_url || !e_user || !*e_user || !e_password || !*e_password) {
        fprintf(stderr, "bad_arguments: set TASKFARM_URL, TASKFARM_USER and TASKFARM_PASSWORD "
                        "(tests/harness/server.sh env DIR)\n");
        puts("0 passed, 1 failed");
        return 1;
    }
    snprintf(user, sizeof user, "%s", e_user);
    snprintf(password, sizeof password, "%s", e_password);
    snprintf(url, sizeof url, "%s", e_url);

    puts("-- before any failure");
    {
        const char *m = tf_last_error();
        check(m != NULL && m[0] == '\0', "tf_last_error() is \"\" before any failure");
        check(tf_last_http_status() == 0, "tf_last_http_status() is 0 before any failure");
        const char *v = tf_version();
        check(v != NULL && v[0] != '\0', "tf_version() is a string (%s)", v ? v : "(NULL)");
        const int unknown[] = {-1, 11, 100, INT_MAX, INT_MIN};
        for (int i = 0; i < 5; i++) {
            const char *n = tf_status_name(unknown[i]);
            check(n != NULL && strcmp(n, "TF_UNKNOWN_STATUS") == 0,
                  "tf_status_name(%d) is TF_UNKNOWN_STATUS", unknown[i]);
        }
    }

    puts("-- *_free(NULL) does nothing (and leaves tf_last_error alone)");
    {
        reset_last_error("");
        tf_string_free(NULL);
        tf_run_list_free(NULL);
        tf_taskfarm_free(NULL);
        tf_worker_free(NULL);
        check(strcmp(tf_last_error(), reset_message) == 0,
              "tf_string_free, tf_run_list_free, tf_taskfarm_free, tf_worker_free (NULL): "
              "no failure recorded");
    }

    puts("-- getters on NULL handles");
    GETTER_FAILS(tf_run_list_len(NULL), (size_t)0);
    GETTER_FAILS(tf_run_list_id(NULL, 0), -1);
    GETTER_FAILS(tf_run_list_uuid(NULL, 0), NULL);
    GETTER_FAILS(tf_run_list_num_tasks(NULL, 0), -1);
    GETTER_FAILS(tf_taskfarm_uuid(NULL), NULL);
    GETTER_FAILS(tf_taskfarm_num_tasks(NULL), -1);
    GETTER_FAILS(tf_taskfarm_token(NULL), NULL);
    GETTER_FAILS(tf_worker_uuid(NULL), NULL);
    GETTER_FAILS(tf_worker_taskfarm(NULL), NULL);

    puts("-- setup: a run of 3 tasks, a worker holding one, a worker holding none");
    tf_taskfarm *tf = NULL;
    tf_worker *w = NULL, *idle = NULL;
    int64_t held = -1;
    if (!EXPECT(tf_taskfarm_create(NULL, NULL, NULL, NUM_TASKS, &tf), TF_OK) ||
        !EXPECT(tf_worker_new(NULL, NULL, NULL, tf_taskfarm_uuid(tf), &w), TF_OK) ||
        !EXPECT(tf_worker_new(user, password, url, tf_taskfarm_uuid(tf), &idle), TF_OK) ||
        !EXPECT(tf_worker_task(w, &held), TF_OK)) {
        tf_worker_free(idle);
        tf_worker_free(w);
        tf_taskfarm_free(tf);
        printf("%d passed, %d failed\n", passed, failed + 1);
        return 1;
    }
    char uuid[128];
    snprintf(uuid, sizeof uuid, "%s", tf_taskfarm_uuid(tf));
    const size_t runs_before = count_runs();

    puts("-- the run list: NULL out-pointer, index past the end");
    {
        INVALID(tf_runs(NULL, NULL, NULL, NULL));
        INVALID(tf_runs_json(NULL, NULL, NULL, NULL));
        tf_run_list *list = NULL;
        EXPECT(tf_runs(user, password, url, &list), TF_OK);
        size_t n = tf_run_list_len(list);
        GETTER_FAILS(tf_run_list_id(list, n), -1);
        GETTER_FAILS(tf_run_list_uuid(list, n), NULL);
        GETTER_FAILS(tf_run_list_num_tasks(list, n), -1);
        GETTER_FAILS(tf_run_list_id(list, SIZE_MAX), -1);
        GETTER_FAILS(tf_run_list_uuid(list, SIZE_MAX), NULL);
        GETTER_FAILS(tf_run_list_num_tasks(list, SIZE_MAX), -1);
        tf_run_list_free(list);
    }

    puts("-- create, open, worker_new: NULL out-pointer or uuid, bad numbers of tasks");
    {
        INVALID(tf_taskfarm_create(NULL, NULL, NULL, NUM_TASKS, NULL));
        INVALID(tf_taskfarm_create(user, password, url, NUM_TASKS, NULL));
        INVALID(tf_taskfarm_open(NULL, NULL, NULL, uuid, NULL));
        INVALID(tf_worker_new(NULL, NULL, NULL, uuid, NULL));
        tf_taskfarm *x = SENTINEL;
        INVALID(tf_taskfarm_open(NULL, NULL, NULL, NULL, &x));
        UNTOUCHED(x == SENTINEL);
        tf_worker *y = SENTINEL;
        INVALID(tf_worker_new(NULL, NULL, NULL, NULL, &y));
        UNTOUCHED(y == SENTINEL);
        const int64_t bad_counts[] = {0, -1, INT64_MIN, INT64_MAX, (int64_t)INT32_MAX + 1};
        for (int i = 0; i < 5; i++) {
            printf("   num_tasks = %lld\n", (long long)bad_counts[i]);
            INVALID(tf_taskfarm_create(NULL, NULL, NULL, bad_counts[i], &x));
            UNTOUCHED(x == SENTINEL);
        }
        const char *bad_uuids[] = {"", "../runs", "abc?x=1", "a b", "abc/def",
                                   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"};
        for (int i = 0; i < 6; i++) {
            printf("   uuid = \"%s\"\n", bad_uuids[i]);
            INVALID(tf_taskfarm_open(NULL, NULL, NULL, bad_uuids[i], &x));
            UNTOUCHED(x == SENTINEL);
            INVALID(tf_worker_new(NULL, NULL, NULL, bad_uuids[i], &y));
            UNTOUCHED(y == SENTINEL);
        }
    }

    puts("-- open_with_token, worker_new_with_token: NULLs, malformed tokens, bad URLs");
    {
        tf_taskfarm *x = SENTINEL;
        tf_worker *y = SENTINEL;
        const char *good = "a.well-formed.token"; /* never reaches the server below */
        INVALID(tf_taskfarm_open_with_token(good, url, uuid, NULL));
        INVALID(tf_worker_new_with_token(good, url, uuid, NULL));
        INVALID(tf_taskfarm_open_with_token(good, url, NULL, &x));
        UNTOUCHED(x == SENTINEL);
        INVALID(tf_worker_new_with_token(good, url, NULL, &y));
        UNTOUCHED(y == SENTINEL);
        const char *bad_urls[] = {BAD_UTF8, "", "ftp://h/api/", "http://u:s3cretpw@h/api/"};
        for (int i = 0; i < 4; i++) {
            printf("   url_base #%d\n", i);
            INVALID(tf_taskfarm_open_with_token(good, bad_urls[i], uuid, &x));
            UNTOUCHED(x == SENTINEL);
            INVALID(tf_worker_new_with_token(good, bad_urls[i], uuid, &y));
            UNTOUCHED(y == SENTINEL);
        }
        /* NULL token: TASKFARM_TOKEN, which is not set here. */
        unsetenv("TASKFARM_TOKEN");
        INVALID(tf_taskfarm_open_with_token(NULL, url, uuid, &x));
        UNTOUCHED(x == SENTINEL);
        check(strstr(tf_last_error(), "TASKFARM_TOKEN") != NULL, "  the message names TASKFARM_TOKEN");
        INVALID(tf_worker_new_with_token(NULL, NULL, uuid, &y));
        UNTOUCHED(y == SENTINEL);
        /* Malformed tokens: refused before anything is sent, never quoted. */
        static char long_token[5000];
        memset(long_token, 'A', sizeof long_token - 1);
        const char *bad_tokens[] = {"",
                                    "SECRET TOKEN",
                                    "SECRET:TOKEN",
                                    "SECRET\tTOKEN",
                                    "SECRET\nTOKEN",
                                    "SECRET\x7fTOKEN",
                                    "SECRET\xc3\xa9TOKEN",
                                    "SECRET\xff\xfeTOKEN",
                                    long_token};
        for (int i = 0; i < 9; i++) {
            printf("   token #%d\n", i);
            INVALID(tf_taskfarm_open_with_token(bad_tokens[i], url, uuid, &x));
            UNTOUCHED(x == SENTINEL);
            check(strstr(tf_last_error(), "SECRET") == NULL && strstr(tf_last_error(), "AAAA") == NULL,
                  "  tf_last_error() does not quote the token");
            INVALID(tf_worker_new_with_token(bad_tokens[i], url, uuid, &y));
            UNTOUCHED(y == SENTINEL);
            check(strstr(tf_last_error(), "SECRET") == NULL && strstr(tf_last_error(), "AAAA") == NULL,
                  "  tf_last_error() does not quote the token");
        }
        /* The same from TASKFARM_TOKEN, for every function that takes credentials. */
        setenv("TASKFARM_TOKEN", "SECRET TOKEN", 1);
        INVALID(tf_taskfarm_open(NULL, NULL, NULL, uuid, &x));
        UNTOUCHED(x == SENTINEL);
        check(strstr(tf_last_error(), "TASKFARM_TOKEN") != NULL && strstr(tf_last_error(), "SECRET") == NULL,
              "  the message names TASKFARM_TOKEN without quoting it");
        INVALID(tf_worker_new(user, password, url, uuid, &y));
        UNTOUCHED(y == SENTINEL);
        INVALID(tf_taskfarm_create(NULL, NULL, NULL, NUM_TASKS, &x));
        UNTOUCHED(x == SENTINEL);
        tf_run_list *l = SENTINEL;
        INVALID(tf_runs(NULL, NULL, NULL, &l));
        UNTOUCHED(l == SENTINEL);
        setenv("TASKFARM_TOKEN", "", 1);
        INVALID(tf_worker_new_with_token(NULL, NULL, uuid, &y));
        UNTOUCHED(y == SENTINEL);
        unsetenv("TASKFARM_TOKEN");
    }

    connect_all_invalid("user name \"\\xff\\xfe\"", BAD_UTF8, password, url, uuid, false);
    connect_all_invalid("password \"\\xff\\xfe\"", user, BAD_UTF8, url, uuid, false);
    connect_all_invalid("url_base \"\\xff\\xfe\"", user, password, BAD_UTF8, uuid, false);
    connect_all_invalid("uuid \"\\xff\\xfe\"", user, password, url, BAD_UTF8, true);
    connect_all_invalid("url_base \"\"", user, password, "", uuid, false);
    connect_all_invalid("url_base \"ftp://x\"", user, password, "ftp://x", uuid, false);
    connect_all_invalid("url_base \"http://\"", user, password, "http://", uuid, false);
    connect_all_invalid("url_base \"https://\"", user, password, "https://", uuid, false);
    connect_all_invalid("url_base \"http://user:s3cretpw@host/\"", user, password,
                        "http://user:s3cretpw@host/", uuid, false);
    connect_all_invalid("url_base \"localhost:5000/api/\"", user, password, "localhost:5000/api/",
                        uuid, false);
    connect_all_invalid("url_base \"http://h/a pi/\"", user, password, "http://h/a pi/", uuid, false);
    /* A port that is not 1..65535 never becomes the scheme's port 80. */
    connect_all_invalid("url_base \"http://127.0.0.1:5OOO/api/\"", user, password,
                        "http://127.0.0.1:5OOO/api/", uuid, false);
    connect_all_invalid("url_base \"http://127.0.0.1:70000/api/\"", user, password,
                        "http://127.0.0.1:70000/api/", uuid, false);
    /* Basic authentication cannot carry a ':' in the user name. */
    connect_all_invalid("user name \"al:ice\"", "al:ice", password, url, uuid, false);

    /* NULL credentials and URL fall back to the environment: when that is
     * missing or malformed, the result is TF_ERR_INVALID_ARGUMENT too. */
    with_env("TASKFARM_USER", NULL, NULL, uuid);
    with_env("TASKFARM_PASSWORD", NULL, NULL, uuid);
    with_env("TASKFARM_URL", "ftp://x", NULL, uuid);
    with_env("TASKFARM_URL", "http://user:s3cretpw@host/", NULL, uuid);
    with_env("TASKFARM_URL", "http://127.0.0.1:-1/api/", NULL, uuid);
    with_env("TASKFARM_USER", BAD_UTF8, "\\xff\\xfe", uuid);
    with_env("TASKFARM_TIMEOUT", "nan", NULL, uuid);
    with_env("TASKFARM_TIMEOUT", "-1", NULL, uuid);
    with_env("TASKFARM_RETRIES", "-1", NULL, uuid);
    with_env("TASKFARM_RETRIES", "many", NULL, uuid);
    with_env("TASKFARM_BACKOFF", "inf", NULL, uuid);
    {
        /* ...and the environment is back as it was. */
        tf_taskfarm *x = NULL;
        EXPECT(tf_taskfarm_open(NULL, NULL, NULL, uuid, &x), TF_OK);
        tf_taskfarm_free(x);
    }

    puts("-- run functions: NULL handle, NULL out-pointer");
    {
        double d = -12345.0;
        int64_t n = -12345;
        tf_run_status st, st0;
        memset(&st, 0xab, sizeof st);
        st0 = st;
        char *s = SENTINEL;
        tf_task_state ts = (tf_task_state)77;

        INVALID(tf_taskfarm_percent_done(NULL, &d));
        INVALID(tf_taskfarm_percent_done(tf, NULL));
        INVALID(tf_taskfarm_num_done(NULL, &n));
        INVALID(tf_taskfarm_num_done(tf, NULL));
        INVALID(tf_taskfarm_num_waiting(NULL, &n));
        INVALID(tf_taskfarm_num_waiting(tf, NULL));
        INVALID(tf_taskfarm_num_computing(NULL, &n));
        INVALID(tf_taskfarm_num_computing(tf, NULL));
        INVALID(tf_taskfarm_status(NULL, &st));
        INVALID(tf_taskfarm_status(tf, NULL));
        INVALID(tf_taskfarm_info(NULL, "numDone", &s));
        INVALID(tf_taskfarm_info(tf, "numDone", NULL));
        INVALID(tf_taskfarm_info(tf, NULL, NULL));
        INVALID(tf_taskfarm_get_task_info(NULL, held, "status", &s));
        INVALID(tf_taskfarm_get_task_info(tf, held, "status", NULL));
        INVALID(tf_taskfarm_get_task_info(tf, held, NULL, NULL));
        INVALID(tf_taskfarm_set_task_info(NULL, held, "percentCompleted", "10"));
        INVALID(tf_taskfarm_set_task_info(tf, held, NULL, "10"));
        INVALID(tf_taskfarm_set_task_info(tf, held, "percentCompleted", NULL));
        INVALID(tf_taskfarm_task_percent_completed(NULL, held, &d));
        INVALID(tf_taskfarm_task_percent_completed(tf, held, NULL));
        INVALID(tf_taskfarm_task_state(NULL, held, &ts));
        INVALID(tf_taskfarm_task_state(tf, held, NULL));
        INVALID(tf_taskfarm_set_task_percent_completed(NULL, held, 10.0));
        INVALID(tf_taskfarm_set_task_state(NULL, held, TF_TASK_DONE));
        INVALID(tf_taskfarm_restart(NULL, false));
        INVALID(tf_taskfarm_restart(NULL, true));
        INVALID(tf_taskfarm_delete(NULL));
        INVALID(tf_taskfarm_url(NULL, "runs", &s));
        INVALID(tf_taskfarm_url(tf, NULL, &s));
        INVALID(tf_taskfarm_url(tf, "runs", NULL));
        INVALID(tf_taskfarm_set_timeout(NULL, 10.0));
        INVALID(tf_taskfarm_set_retries(NULL, 3));
        UNTOUCHED(d == -12345.0 && n == -12345 && s == SENTINEL && ts == (tf_task_state)77 &&
                  same_bytes(&st, &st0, sizeof st));
        /* NULL is a valid `info` (the whole object), unlike a NULL out-pointer. */
        char *whole = NULL;
        EXPECT(tf_taskfarm_info(tf, NULL, &whole), TF_OK);
        check(whole != NULL && whole[0] == '{', "  info NULL gives the whole run: %s",
              whole ? whole : "(NULL)");
        tf_string_free(whole);
        whole = NULL;
        EXPECT(tf_taskfarm_get_task_info(tf, held, NULL, &whole), TF_OK);
        check(whole != NULL && whole[0] == '{', "  info NULL gives the whole task: %s",
              whole ? whole : "(NULL)");
        tf_string_free(whole);

        puts("-- invalid UTF-8 and unknown keys");
        INVALID(tf_taskfarm_info(tf, BAD_UTF8, &s));
        INVALID(tf_taskfarm_get_task_info(tf, held, BAD_UTF8, &s));
        INVALID(tf_taskfarm_set_task_info(tf, held, BAD_UTF8, "10"));
        INVALID(tf_taskfarm_set_task_info(tf, held, "percentCompleted", BAD_UTF8));
        INVALID(tf_taskfarm_set_task_info(tf, held, "status", "\"\xff\xfe\""));
        INVALID(tf_taskfarm_url(tf, BAD_UTF8, &s));
        const char *run_keys[] = {"bogus", "numTasks", "uuid", "NUMDONE", " numDone", "numDone "};
        for (int i = 0; i < 6; i++) {
            printf("   info = \"%s\"\n", run_keys[i]);
            INVALID(tf_taskfarm_info(tf, run_keys[i], &s));
        }
        const char *task_keys[] = {"bogus", "task", "id", "Status", "percentDone"};
        for (int i = 0; i < 5; i++) {
            printf("   info = \"%s\"\n", task_keys[i]);
            INVALID(tf_taskfarm_get_task_info(tf, held, task_keys[i], &s));
            INVALID(tf_taskfarm_set_task_info(tf, held, task_keys[i], "1"));
        }
        UNTOUCHED(s == SENTINEL);

        puts("-- empty and 1 MiB strings");
        {
            size_t big_len = (size_t)1 << 20;
            char *big = malloc(big_len + 1);
            char *big_url = malloc(big_len + 16);
            if (big == NULL || big_url == NULL) {
                fprintf(stderr, "out of memory\n");
                return 2;
            }
            memset(big, 'a', big_len);
            big[big_len] = '\0';
            snprintf(big_url, big_len + 16, "http://%s/", big);
            INVALID(tf_taskfarm_info(tf, big, &s));
            INVALID(tf_taskfarm_get_task_info(tf, held, big, &s));
            INVALID(tf_taskfarm_set_task_info(tf, held, big, "1"));
            INVALID(tf_taskfarm_set_task_info(tf, held, "percentCompleted", big));
            INVALID(tf_taskfarm_set_task_info(tf, held, "percentCompleted", ""));
            INVALID(tf_taskfarm_set_task_info(tf, held, "", "1"));
            UNTOUCHED(s == SENTINEL);
            char *long_url = NULL;
            EXPECT(tf_taskfarm_url(tf, big, &long_url), TF_OK);
            check(long_url != NULL && strlen(long_url) == strlen(url) + big_len,
                  "  a 1 MiB endpoint gives a URL of base + 1 MiB");
            tf_string_free(long_url);
            tf_taskfarm *other = SENTINEL;
            tf_worker *other_worker = SENTINEL;
            INVALID(tf_taskfarm_open(user, password, url, big, &other));
            INVALID(tf_taskfarm_open(user, password, url, "", &other));
            INVALID(tf_worker_new(user, password, url, big, &other_worker));
            INVALID(tf_worker_new(user, password, url, "", &other_worker));
            INVALID(tf_taskfarm_create(user, password, big, 3, &other));
            INVALID(tf_taskfarm_create(user, password, "", 3, &other));
            INVALID(tf_taskfarm_create("", password, url, 3, &other));
            tf_status empty_password = tf_taskfarm_create(user, "", url, 3, &other);
            check(empty_password == TF_ERR_AUTH && tf_last_http_status() == 401,
                  "  an empty password is sent and refused: %s, HTTP %d",
                  tf_status_name(empty_password), tf_last_http_status());
            /* Sent to the server (or refused on the way): never OK, never a crash. */
            const char *huge[][3] = {{big, password, url}, {user, big, url}, {user, password, big_url}};
            for (int i = 0; i < 3; i++) {
                reset_last_error("tf_taskfarm_create");
                tf_status st = tf_taskfarm_create(huge[i][0], huge[i][1], huge[i][2], 3, &other);
                check(st != TF_OK && st != TF_ERR_INTERNAL && tf_last_error()[0] != '\0',
                      "  a 1 MiB %s: %s", i == 0 ? "user name" : i == 1 ? "password" : "host name",
                      tf_status_name(st));
                check(strstr(tf_last_error(), password) == NULL || i == 1,
                      "  the message holds no password");
            }
            UNTOUCHED(other == SENTINEL && other_worker == SENTINEL);
            free(big);
            free(big_url);
        }

        puts("-- bad values for set_task_info");
        const char *bad_percent[] = {"-1", "101", "1e400", "\"50\"", "null", "{}", "[]", "true",
                                     "nan", "", "50 50", "\"done\""};
        for (int i = 0; i < 12; i++) {
            printf("   percentCompleted = %s\n", bad_percent[i]);
            INVALID(tf_taskfarm_set_task_info(tf, held, "percentCompleted", bad_percent[i]));
        }
        const char *bad_state[] = {"\"bogus\"", "\"DONE\"", "done", "1", "null", "", "[\"done\"]"};
        for (int i = 0; i < 7; i++) {
            printf("   status = %s\n", bad_state[i]);
            INVALID(tf_taskfarm_set_task_info(tf, held, "status", bad_state[i]));
        }

        puts("-- tasks outside 0..numTasks-1");
        const int64_t bad_tasks[] = {-1, NUM_TASKS, INT64_MAX, INT64_MIN};
        for (int i = 0; i < 4; i++) {
            int64_t t = bad_tasks[i];
            printf("   task = %lld\n", (long long)t);
            INVALID(tf_taskfarm_get_task_info(tf, t, "", &s));
            INVALID(tf_taskfarm_get_task_info(tf, t, NULL, &s));
            INVALID(tf_taskfarm_set_task_info(tf, t, "percentCompleted", "10"));
            INVALID(tf_taskfarm_set_task_info(tf, t, "status", "\"done\""));
            INVALID(tf_taskfarm_task_percent_completed(tf, t, &d));
            INVALID(tf_taskfarm_task_state(tf, t, &ts));
            INVALID(tf_taskfarm_set_task_percent_completed(tf, t, 10.0));
            INVALID(tf_taskfarm_set_task_state(tf, t, TF_TASK_DONE));
        }
        UNTOUCHED(d == -12345.0 && s == SENTINEL && ts == (tf_task_state)77);

        puts("-- bad numbers: percentages, states, timeout, retries");
        const double bad_percentages[] = {NAN, INFINITY, -INFINITY, -1.0, -0.001, 100.001, 1e300,
                                          -1e300};
        for (int i = 0; i < 8; i++) {
            double p = bad_percentages[i];
            printf("   percentage = %g\n", p);
            INVALID(tf_taskfarm_set_task_percent_completed(tf, held, p));
            INVALID(tf_worker_update(w, p));
            INVALID(tf_worker_update(idle, p));
        }
        const int bad_states[] = {42, -1, 3, INT_MAX, INT_MIN};
        for (int i = 0; i < 5; i++) {
            printf("   state = %d\n", bad_states[i]);
            INVALID(tf_taskfarm_set_task_state(tf, held, bad_states[i]));
        }
        const double bad_timeouts[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, -1.0, 1e6 + 1.0, 1e300};
        for (int i = 0; i < 8; i++) {
            printf("   timeout = %g\n", bad_timeouts[i]);
            INVALID(tf_taskfarm_set_timeout(tf, bad_timeouts[i]));
        }
        const uint32_t bad_retries[] = {1001, 100000, UINT32_MAX};
        for (int i = 0; i < 3; i++) {
            printf("   retries = %lu\n", (unsigned long)bad_retries[i]);
            INVALID(tf_taskfarm_set_retries(tf, bad_retries[i]));
        }
        const double bad_intervals[] = {NAN, INFINITY, -INFINITY, -1.0, -0.001, 86400.001, 1e300};
        for (int i = 0; i < 7; i++) {
            printf("   update interval = %g\n", bad_intervals[i]);
            INVALID(tf_worker_set_update_interval(w, bad_intervals[i]));
        }
    }

    puts("-- worker functions: NULL worker, NULL out-pointer");
    {
        int64_t t = -12345;
        INVALID(tf_worker_task(NULL, &t));
        INVALID(tf_worker_task(w, NULL));
        INVALID(tf_worker_task(idle, NULL)); /* must not ask the server for a task */
        UNTOUCHED(t == -12345);
        INVALID(tf_worker_update(NULL, 50.0));
        INVALID(tf_worker_done(NULL));
        INVALID(tf_worker_requeue(NULL));
        INVALID(tf_worker_fail(NULL, "why"));
        INVALID(tf_worker_fail(w, NULL));
        INVALID(tf_worker_fail(w, BAD_UTF8));
        {
            int64_t n = -3;
            INVALID(tf_worker_attempt(NULL, &n));
            INVALID(tf_worker_attempt(w, NULL));
            UNTOUCHED(n == -3);
        }
        INVALID(tf_worker_set_journal(NULL, "/tmp"));
        INVALID(tf_worker_set_journal(w, BAD_UTF8));
        INVALID(tf_worker_set_journal(w, "/nonexistent/journal/dir"));
        EXPECT(tf_worker_set_journal(w, NULL), TF_OK); /* no journal: nothing to stop */
        double pc = -7.0;
        INVALID(tf_worker_held_percent(NULL, &pc));
        INVALID(tf_worker_held_percent(w, NULL));
        UNTOUCHED(pc == -7.0);
        INVALID(tf_worker_set_deadline(NULL, 4e9, 0.0));
        INVALID(tf_worker_set_update_interval(NULL, 1.0));
        INVALID(tf_worker_flush(NULL));
    }

    puts("-- stop signals and deadlines: refused, nothing installed");
    {
        const int uncatchable[] = {SIGTERM, SIGKILL};
        INVALID(tf_stop_on_signals(uncatchable, 2, TF_STOP_CONTINUE));
        const int stop_signal[] = {SIGSTOP};
        INVALID(tf_stop_on_signals(stop_signal, 1, TF_STOP_EXIT));
        const int unknown_signal[] = {SIGUSR1, 1000};
        INVALID(tf_stop_on_signals(unknown_signal, 2, TF_STOP_EXIT));
        const int crash_signal[] = {SIGSEGV};
        INVALID(tf_stop_on_signals(crash_signal, 1, TF_STOP_EXIT));
        const int term[] = {SIGTERM};
        INVALID(tf_stop_on_signals(term, 1, 2));
        INVALID(tf_stop_on_signals(term, 1, -1));
        struct sigaction now;
        sigaction(SIGTERM, NULL, &now);
        check(now.sa_handler == SIG_DFL, "SIGTERM still has its default action");
        check(tf_stop_requested() == 0, "tf_stop_requested() is 0");
        const double bad_deadlines[] = {NAN, -1.0, 0.0, 1.0, INFINITY, -INFINITY};
        for (int i = 0; i < 6; i++) {
            printf("   deadline = %g\n", bad_deadlines[i]);
            INVALID(tf_worker_set_deadline(w, bad_deadlines[i], 0.0));
        }
        INVALID(tf_worker_set_deadline(w, 4e9, NAN));
        INVALID(tf_worker_set_deadline(w, 4e9, -1.0));
    }

    puts("-- nothing reached the server");
    {
        tf_run_status st;
        EXPECT(tf_taskfarm_status(tf, &st), TF_OK);
        check(st.num_waiting == 0 && st.num_computing == 1 && st.num_done == 0 &&
                  st.percent_done == 0.0,
              "the run is as it was: one task computing at 0 %% (waiting %lld computing %lld done "
              "%lld, %g %%)",
              (long long)st.num_waiting, (long long)st.num_computing, (long long)st.num_done,
              st.percent_done);
        tf_task_state ts = TF_TASK_DONE;
        double d = -1.0;
        EXPECT(tf_taskfarm_task_state(tf, held, &ts), TF_OK);
        EXPECT(tf_taskfarm_task_percent_completed(tf, held, &d), TF_OK);
        check(ts == TF_TASK_COMPUTING && d == 0.0, "the held task is computing at 0 %%");
        size_t runs_after = count_runs();
        check(runs_after == runs_before, "no run was created (%zu runs, %zu before)", runs_after,
              runs_before);
        /* The settings still work after the refused ones. */
        EXPECT(tf_taskfarm_set_timeout(tf, 1e6), TF_OK);
        EXPECT(tf_taskfarm_set_retries(tf, 1000), TF_OK);
        EXPECT(tf_taskfarm_set_timeout(tf, 30.0), TF_OK);
        EXPECT(tf_taskfarm_set_retries(tf, 2), TF_OK);
    }

    puts("-- clean up");
    EXPECT(tf_worker_requeue(w), TF_OK);
    EXPECT(tf_taskfarm_delete(tf), TF_OK);
    tf_worker_free(idle);
    tf_worker_free(w);
    tf_taskfarm_free(tf);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
