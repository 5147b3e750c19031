/* bench/fork_exec_loop.c: the floor of the benchmark's section on `taskfarm
 * run` (bench/taskfarm_bench/scenario_run.py): a plain loop of fork, execv of
 * the command, waitpid, N times, one at a time, nothing else.
 *
 *   fork_exec_loop N PROGRAM [ARG...]
 *
 * Prints one JSON line on stdout: the execs, the loop's wall time, its own
 * CPU (getrusage RUSAGE_SELF: the fork and the wait, what a launcher cannot
 * avoid) and its children's (RUSAGE_CHILDREN: the command itself, exec
 * included). Exit status 1 when a command could not be started or did not
 * exit with 0, 2 on bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fork_exec_loop N PROGRAM [ARG...]\n");
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || n < 1) {
        fprintf(stderr, "fork_exec_loop: N must be a positive number, not %s\n", argv[1]);
        return 2;
    }
    double start = now();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork_exec_loop: fork");
            return 1;
        }
        if (pid == 0) {
            execv(argv[2], argv + 2);
            _exit(127);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                perror("fork_exec_loop: waitpid");
                return 1;
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fork_exec_loop: %s ended with wait status %d at exec %ld\n", argv[2], status, i + 1);
            return 1;
        }
    }
    double wall = now() - start;
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    printf("{\"execs\": %ld, \"wall_s\": %.6f, \"self_user_s\": %.6f, \"self_sys_s\": %.6f, "
           "\"children_user_s\": %.6f, \"children_sys_s\": %.6f}\n",
           n, wall, seconds(self.ru_utime), seconds(self.ru_stime), seconds(children.ru_utime),
           seconds(children.ru_stime));
    return 0;
}
