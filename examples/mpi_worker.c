/*
 * examples/mpi_worker.c: one taskfarm worker per MPI rank, all on one run.
 *
 *   mpirun -n 64 mpi_worker UUID           (or TASKFARM_RUN=UUID in the environment)
 *   srun --mpi=pmix mpi_worker UUID        (inside a Slurm job)
 *
 * Rank 0 opens the run with the credentials (TASKFARM_URL, TASKFARM_USER,
 * TASKFARM_PASSWORD) -- the one password check of the whole job -- and
 * broadcasts the run's token; every rank then registers its own worker with
 * that token (tf_worker_new_with_token: no password check on the server,
 * which spends about a quarter of a second of CPU on each) and takes tasks
 * until none is left. With TASKFARM_TOKEN already in the environment rank 0
 * sends no password at all.
 *
 * Each task is computed in 2 steps of WORKER_STEP_MS milliseconds (default
 * 50), with progress reported after each. At the end rank 0 prints, for every
 * rank, the tasks it did:
 *
 *   rank 3: 51 tasks: 2 7 11 ...
 *   4 ranks: 200 tasks done
 *
 * The exit status is 0 when every rank succeeded and 1 when any failed
 * (MPI_Allreduce of a failure flag), so a job script or a test sees a failure
 * of any rank; the failing rank says why on stderr.
 *
 * Build against the tree (`make mpi-examples` does it for Open MPI and MPICH):
 *   mpicc -std=c11 examples/mpi_worker.c -Iinclude -Ltarget/release \
 *       -Wl,-rpath,$PWD/target/release -ltaskfarm_worker -o mpi_worker
 * or against an install: mpicc ... $(pkg-config --cflags --libs taskfarm_worker).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <mpi.h>
#include <taskfarm_worker.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEPS 2

static int rank;

/* Reports a failed call on stderr: the rank, what was being done, the library's message. */
static int fail(const char *what, tf_status status) {
    fprintf(stderr, "mpi_worker rank %d: %s failed (%s): %s\n", rank, what,
            tf_status_name((int)status), tf_last_error());
    return 1;
}

/* Stands in for one step of the real computation of a task. */
static void compute_step(long step_ms) {
    struct timespec pause = {step_ms / 1000, (step_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {
    }
}

/* Rank 0: opens the run (the job's one password check) and copies its token.
 * Returns the token (malloc'd) or NULL after reporting why. */
static char *fetch_token(const char *uuid) {
    tf_taskfarm *run;
    tf_status s = tf_taskfarm_open(NULL, NULL, NULL, uuid, &run);
    if (s != TF_OK) {
        fail("opening the run", s);
        return NULL;
    }
    const char *token = tf_taskfarm_token(run);
    char *copy = token != NULL ? malloc(strlen(token) + 1) : NULL;
    if (copy != NULL) {
        strcpy(copy, token);
    } else {
        fprintf(stderr, "mpi_worker rank 0: no token to share\n");
    }
    tf_taskfarm_free(run);
    return copy;
}

/* Rank 0's token on every rank (malloc'd; NULL on every rank when rank 0 has none). */
static char *share_token(const char *uuid) {
    char *token = rank == 0 ? fetch_token(uuid) : NULL;
    int length = token != NULL ? (int)strlen(token) + 1 : 0;
    MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (length == 0) {
        return NULL;
    }
    if (rank != 0) {
        token = malloc((size_t)length);
        if (token == NULL) {
            fprintf(stderr, "mpi_worker rank %d: out of memory\n", rank);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Bcast(token, length, MPI_CHAR, 0, MPI_COMM_WORLD);
    return token;
}

/* Overwrites and frees the token: it is a secret. */
static void forget_token(char *token) {
    if (token != NULL) {
        volatile char *p = token;
        while (*p != '\0') {
            *p++ = '\0';
        }
        free(token);
    }
}

/* Takes tasks from the run until none is left; appends each task done to
 * *done (grown as needed). Returns 0, or 1 after reporting a failure. */
static int work(tf_worker *w, long step_ms, int64_t **done, int *num_done) {
    int capacity = 0;
    int64_t task;
    tf_status s;
    while ((s = tf_worker_task(w, &task)) == TF_OK) {
        for (int step = 1; step <= STEPS && s == TF_OK; step++) {
            compute_step(step_ms);
            s = tf_worker_update(w, 100.0 * step / STEPS);
        }
        if (s == TF_OK) {
            s = tf_worker_done(w); /* the last update was 100 %: the task is done */
        }
        if (s != TF_OK) {
            fail("reporting on a task", s);
            if (tf_worker_requeue(w) != TF_OK) { /* give it back to another worker */
                fprintf(stderr, "mpi_worker rank %d: could not give task %lld back: %s\n", rank,
                        (long long)task, tf_last_error());
            }
            return 1;
        }
        if (*num_done == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            int64_t *grown = realloc(*done, (size_t)capacity * sizeof **done);
            if (grown == NULL) {
                fprintf(stderr, "mpi_worker rank %d: out of memory\n", rank);
                return 1;
            }
            *done = grown;
        }
        (*done)[(*num_done)++] = task;
    }
    return s == TF_NO_MORE_TASKS ? 0 : fail("asking for a task", s);
}

/* Rank 0 prints the tasks of every rank (gathered), then the total. */
static void report(const int64_t *done, int num_done, int size) {
    int *counts = rank == 0 ? calloc((size_t)size, sizeof *counts) : NULL;
    int *offsets = rank == 0 ? calloc((size_t)size, sizeof *offsets) : NULL;
    MPI_Gather(&num_done, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    int64_t *all = NULL;
    int total = 0;
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            offsets[r] = total;
            total += counts[r];
        }
        all = malloc((size_t)(total > 0 ? total : 1) * sizeof *all);
    }
    MPI_Gatherv(done, num_done, MPI_INT64_T, all, counts, offsets, MPI_INT64_T, 0,
                MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            printf("rank %d: %d tasks:", r, counts[r]);
            for (int i = 0; i < counts[r]; i++) {
                printf(" %lld", (long long)all[offsets[r] + i]);
            }
            printf("\n");
        }
        printf("%d ranks: %d tasks done\n", size, total);
        free(all);
        free(counts);
        free(offsets);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    const char *uuid = argc == 2 ? argv[1] : getenv("TASKFARM_RUN");
    long step_ms = 50;
    const char *env = getenv("WORKER_STEP_MS");
    if (env != NULL && *env != '\0') {
        char *end;
        errno = 0;
        step_ms = strtol(env, &end, 10);
        if (errno != 0 || *end != '\0' || step_ms < 0 || step_ms > 3600000) {
            uuid = NULL;
        }
    }
    if (argc > 2 || uuid == NULL || *uuid == '\0' || uuid[0] == '-') {
        if (rank == 0) {
            fputs("usage: mpirun mpi_worker UUID   (or TASKFARM_RUN=UUID; WORKER_STEP_MS: "
                  "milliseconds per step, default 50)\n",
                  stderr);
        }
        MPI_Finalize();
        return 2;
    }

    int failed = 0;
    int64_t *done = NULL;
    int num_done = 0;
    char *token = share_token(uuid);
    if (token == NULL) {
        failed = 1; /* rank 0 said why */
    } else {
        tf_worker *w;
        tf_status s = tf_worker_new_with_token(token, NULL, uuid, &w);
        forget_token(token);
        if (s != TF_OK) {
            failed = fail("registering the worker", s);
        } else {
            failed = work(w, step_ms, &done, &num_done);
            tf_worker_free(w);
        }
    }

    int any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    report(done, num_done, size);
    if (rank == 0 && any_failed) {
        fprintf(stderr, "mpi_worker: at least one rank failed\n");
    }
    free(done);
    MPI_Finalize();
    return any_failed ? 1 : 0;
}
