/*
 * examples/watch_run.c: create a run and watch it (no MPI, no worker).
 *
 *   watch_run -n N [options]     create a run of N tasks, print its UUID on the
 *                                first line, then watch it
 *   watch_run [options] UUID     watch the run UUID
 *
 *   options: -i SECONDS   time between two looks (default 1)
 *            -t SECONDS   give up after that long (default: never)
 *
 * Every look prints one line, one request (tf_taskfarm_status):
 *
 *   [############........]  60.0 %  done 6  computing 2  waiting 0  of 10
 *
 * and the program ends when the run is 100 % done (exit 0). A failed look
 * (server restarting, network down) is reported on stderr and tried again at
 * the next one; an unknown run or wrong credentials end it (exit 1); -t ends
 * it with exit 3.
 *
 * The server and the credentials come from the environment: TASKFARM_URL
 * (default http://localhost:5000/api/), TASKFARM_USER, TASKFARM_PASSWORD.
 *
 * Build against an installed taskfarm_worker:
 *   cc -std=c11 examples/watch_run.c $(pkg-config --cflags --libs taskfarm_worker) -o watch_run
 *
 * Typical use: `watch_run -n 1000` prints the UUID to hand to the workers
 * (Slurm array jobs, MPI ranks: see slurm_array.sh), then shows their progress.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <taskfarm_worker.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BAR_WIDTH 20

static int usage(void) {
    fputs("usage: watch_run -n N [-i SECONDS] [-t SECONDS]   create a run of N tasks, watch it\n"
          "       watch_run [-i SECONDS] [-t SECONDS] UUID   watch the run UUID\n"
          "(TASKFARM_URL, TASKFARM_USER and TASKFARM_PASSWORD from the environment)\n",
          stderr);
    return 2;
}

/* Parses a number in [min, max]; returns 0 on success. */
static int parse_double(const char *text, double min, double max, double *out) {
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value >= min && value <= max)) {
        return -1;
    }
    *out = value;
    return 0;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds) {
    struct timespec pause = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {
    }
}

static void print_progress(const tf_run_status *st) {
    char bar[BAR_WIDTH + 1];
    int filled = (int)(st->percent_done / 100.0 * BAR_WIDTH + 0.5);
    for (int i = 0; i < BAR_WIDTH; i++) {
        bar[i] = i < filled ? '#' : '.';
    }
    bar[BAR_WIDTH] = '\0';
    printf("[%s] %5.1f %%  done %lld  computing %lld  waiting %lld  of %lld\n", bar,
           st->percent_done, (long long)st->num_done, (long long)st->num_computing,
           (long long)st->num_waiting, (long long)st->num_tasks);
}

int main(int argc, char **argv) {
    /* One line at a time, also into a pipe or a file. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    double interval = 1.0, timeout = -1.0, number;
    long long num_tasks = 0;
    const char *uuid = NULL;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "-n") == 0 && value != NULL) {
            if (parse_double(value, 1, INT32_MAX, &number) != 0 || number != (long long)number) {
                return usage();
            }
            num_tasks = (long long)number;
            i++;
        } else if (strcmp(argv[i], "-i") == 0 && value != NULL) {
            if (parse_double(value, 0.01, 86400, &interval) != 0) {
                return usage();
            }
            i++;
        } else if (strcmp(argv[i], "-t") == 0 && value != NULL) {
            if (parse_double(value, 0, 1e9, &timeout) != 0) {
                return usage();
            }
            i++;
        } else if (argv[i][0] != '-' && uuid == NULL) {
            uuid = argv[i];
        } else {
            return usage();
        }
    }
    if ((uuid == NULL) == (num_tasks == 0)) {
        return usage(); /* exactly one of -n N and UUID */
    }

    tf_taskfarm *run;
    tf_status s = num_tasks > 0 ? tf_taskfarm_create(NULL, NULL, NULL, num_tasks, &run)
                                : tf_taskfarm_open(NULL, NULL, NULL, uuid, &run);
    if (s != TF_OK) {
        fprintf(stderr, "watch_run: %s the run failed (%s): %s\n",
                num_tasks > 0 ? "creating" : "opening", tf_status_name((int)s), tf_last_error());
        return 1;
    }
    if (num_tasks > 0) {
        printf("%s\n", tf_taskfarm_uuid(run)); /* for the workers */
    } else {
        printf("run %s: %lld tasks\n", tf_taskfarm_uuid(run),
               (long long)tf_taskfarm_num_tasks(run));
    }

    /* Each failed look is retried at the next one: the library's own retries
     * (TASKFARM_RETRIES) would make one look last minutes on a dead server. */
    tf_taskfarm_set_retries(run, 0);
    tf_taskfarm_set_timeout(run, interval < 5.0 ? 5.0 : interval);

    int status = 0;
    const double start = now_seconds();
    for (;;) {
        tf_run_status st;
        s = tf_taskfarm_status(run, &st);
        if (s == TF_OK) {
            print_progress(&st);
            if (st.num_done >= st.num_tasks) {
                break; /* 100 % */
            }
        } else {
            fprintf(stderr, "watch_run: %s: %s\n", tf_status_name((int)s), tf_last_error());
            if (s == TF_ERR_NOT_FOUND || s == TF_ERR_AUTH || s == TF_ERR_INVALID_ARGUMENT) {
                status = 1; /* looking again will not help */
                break;
            }
        }
        if (timeout >= 0 && now_seconds() - start + interval > timeout) {
            fprintf(stderr, "watch_run: the run is not done after %g s\n", timeout);
            status = 3;
            break;
        }
        sleep_seconds(interval);
    }
    tf_taskfarm_free(run); /* the run stays on the server */
    return status;
}
