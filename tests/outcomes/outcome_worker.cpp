// tests/outcomes/outcome_worker.cpp: outcome_worker.c in C++ through
// include/taskfarm_worker.hpp (same arguments, same lines; see there).
#include <taskfarm_worker.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s RUN_UUID FAIL_TASK NOT_DONE_TASK\n", argv[0]);
        return 2;
    }
    const long long fail_task = std::atoll(argv[2]);
    const long long not_done_task = std::atoll(argv[3]);
    int bad = 0;
    try {
        taskfarm::Worker w(argv[1]);
        if (w.attempt()) {
            std::printf("unexpected attempt() with no task held\n");
            bad = 1;
        }
        w.fail("nothing held");
        for (std::int64_t task : w.tasks()) {
            const std::int64_t attempt = w.attempt().value_or(-1);
            std::printf("task %lld attempt %lld\n", (long long)task, (long long)attempt);
            if (task == fail_task) {
                w.update(30.0);
                w.fail("task " + std::to_string(task) + " fails on purpose (attempt " +
                       std::to_string(attempt) + ")");
                std::printf("failed %lld\n", (long long)task);
            } else if (task == not_done_task && attempt == 1) {
                w.update(50.0);
                if (w.done()) {
                    std::printf("unexpected done() at 50 %%: true\n");
                    bad = 1;
                }
                std::printf("not_done %lld\n", (long long)task);
            } else {
                double p = 0.0;
                for (int i = 0; i < 7; i++) {
                    p += 100.0 / 7;
                    w.update(p);
                }
                if (!w.done()) {
                    std::printf("unexpected done() after seven steps of 100/7: false\n");
                    bad = 1;
                }
                std::printf("done %lld\n", (long long)task);
            }
            std::fflush(stdout);
        }
        std::printf("end %s\n", w.stopped() ? "TF_STOPPED" : "TF_NO_MORE_TASKS");
    } catch (const taskfarm::Error &e) {
        std::printf("unexpected error: %s\n", e.what());
        return 1;
    }
    return bad;
}
