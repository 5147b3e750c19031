/* bench/two_requests_floor.c: the measured floor of any client of the
 * protocol in the benchmark's section on `taskfarm run`
 * (bench/taskfarm_bench/scenario_run.py): the two requests that a task
 * costs, made by the leanest client there can be, against the canned server
 * (bench/nginx.conf.in), optionally with a fork, execv and waitpid of a
 * command per task.
 *
 *   two_requests_floor PORT RUN_UUID TOKEN N [PROGRAM [ARG...]]
 *
 * One keep-alive TCP connection to 127.0.0.1:PORT. Per task: `POST
 * /api/runs/RUN_UUID/task` {"worker_uuid": ...}, the answer's "id" read, then
 * `PUT /api/runs/RUN_UUID/tasks/ID` {"status":"done","percentCompleted":100};
 * each request is one write(2) of a buffer formatted in place, each answer
 * read with read(2) until its headers and Content-Length bytes of body are
 * in. No library, no allocation, no header kept but Content-Length. With
 * PROGRAM, the command is also run per task, between the two requests, as
 * bench/fork_exec_loop.c runs it (fork, execv, waitpid).
 *
 * Prints one JSON line on stdout: the tasks, requests and execs, the loop's
 * wall time, its own CPU (getrusage RUSAGE_SELF) and its children's
 * (RUSAGE_CHILDREN). Exit status 1 when the server gave an unexpected answer
 * or closed the connection, or a command failed; 2 on bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A fixed worker uuid: the body has the size of the real one. */
#define WORKER_UUID "5f0c6b1e-8d2a-4c3b-9e7f-0a1b2c3d4e5f"
#define DONE_BODY "{\"status\":\"done\",\"percentCompleted\":100}"

static char answer[16384];

static double seconds(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what) {
    fprintf(stderr, "two_requests_floor: %s\n", what);
    return -1;
}

static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("two_requests_floor: write");
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one answer into `answer`; returns its status code (the body starts
 * at *body, *body_len bytes), -1 on error. */
static int read_answer(int fd, const char **body, long *body_len) {
    size_t have = 0;
    char *end_of_head = NULL;
    long length = -1;
    for (;;) {
        if (end_of_head == NULL) {
            answer[have] = '\0';
            end_of_head = strstr(answer, "\r\n\r\n");
            if (end_of_head != NULL) {
                /* Content-Length, case-insensitive; none on a 204. */
                for (char *line = strstr(answer, "\r\n"); line != NULL && line < end_of_head;
                     line = strstr(line + 2, "\r\n")) {
                    if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
                        length = strtol(line + 17, NULL, 10);
                }
                if (length < 0)
                    length = 0;
            }
        }
        if (end_of_head != NULL && (long)have >= (end_of_head + 4 - answer) + length)
            break;
        if (have + 1 >= sizeof answer)
            return fail("an answer larger than the buffer");
        ssize_t n = read(fd, answer + have, sizeof answer - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("two_requests_floor: read");
            return -1;
        }
        if (n == 0)
            return fail("the server closed the connection");
        have += (size_t)n;
    }
    if (strncmp(answer, "HTTP/1.1 ", 9) != 0)
        return fail("not an HTTP/1.1 answer");
    *body = end_of_head + 4;
    *body_len = length;
    return atoi(answer + 9);
}

static int run_command(char **argv, long task) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("two_requests_floor: fork");
        return -1;
    }
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("two_requests_floor: waitpid");
            return -1;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "two_requests_floor: %s ended with wait status %d at task %ld\n", argv[0], status, task);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: two_requests_floor PORT RUN_UUID TOKEN N [PROGRAM [ARG...]]\n");
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "two_requests_floor: PORT must be a port number, not %s\n", argv[1]);
        return 2;
    }
    const char *run_uuid = argv[2], *token = argv[3];
    errno = 0;
    long n = strtol(argv[4], &end, 10);
    if (errno != 0 || *end != '\0' || n < 1) {
        fprintf(stderr, "two_requests_floor: N must be a positive number, not %s\n", argv[4]);
        return 2;
    }
    char **command = argc > 5 ? argv + 5 : NULL;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("two_requests_floor: connect");
        return 1;
    }

    static char request[4096];
    char ask_body[64];
    int ask_len = snprintf(ask_body, sizeof ask_body, "{\"worker_uuid\":\"%s\"}", WORKER_UUID);
    long execs = 0;
    double start = now();
    for (long i = 0; i < n; i++) {
        const char *body;
        long body_len;
        int len = snprintf(request, sizeof request,
                           "POST /api/runs/%s/task HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n"
                           "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n%s",
                           run_uuid, port, token, ask_len, ask_body);
        if (len < 0 || (size_t)len >= sizeof request || send_all(fd, request, (size_t)len) != 0)
            return 1;
        int status = read_answer(fd, &body, &body_len);
        if (status != 201) {
            fprintf(stderr, "two_requests_floor: POST task answered %d at task %ld\n", status, i + 1);
            return 1;
        }
        const char *id_at = strstr(body, "\"id\":");
        if (id_at == NULL || id_at >= body + body_len) {
            fprintf(stderr, "two_requests_floor: no task id in the answer: %.*s\n", (int)body_len, body);
            return 1;
        }
        long id = strtol(id_at + 5, NULL, 10);

        if (command != NULL) {
            if (run_command(command, i + 1) != 0)
                return 1;
            execs++;
        }

        len = snprintf(request, sizeof request,
                       "PUT /api/runs/%s/tasks/%ld HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n"
                       "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       run_uuid, id, port, token, strlen(DONE_BODY), DONE_BODY);
        if (len < 0 || (size_t)len >= sizeof request || send_all(fd, request, (size_t)len) != 0)
            return 1;
        status = read_answer(fd, &body, &body_len);
        if (status != 204 && status != 200) {
            fprintf(stderr, "two_requests_floor: PUT done answered %d at task %ld\n", status, i + 1);
            return 1;
        }
    }
    double wall = now() - start;
    close(fd);
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    printf("{\"tasks\": %ld, \"requests\": %ld, \"execs\": %ld, \"wall_s\": %.6f, \"self_user_s\": %.6f, "
           "\"self_sys_s\": %.6f, \"children_user_s\": %.6f, \"children_sys_s\": %.6f}\n",
           n, 2 * n, execs, wall, seconds(self.ru_utime), seconds(self.ru_stime), seconds(children.ru_utime),
           seconds(children.ru_stime));
    return 0;
}
