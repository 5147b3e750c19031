// examples/worker.cpp: a taskfarm worker in C++ (the C++ version of worker.c).
//
//   worker [-n N]   create a run of N tasks (default 10) and print its UUID
//   worker UUID     work through the run UUID, reporting progress
//
// The credentials and the server come from the environment: TASKFARM_USER,
// TASKFARM_PASSWORD and TASKFARM_URL (default http://localhost:5000/api/).
//
// Build against the tree (after `make build`):
//   g++ -std=c++17 examples/worker.cpp -Iinclude -Ltarget/release
//       -Wl,-rpath,$PWD/target/release -ltaskfarm_worker -o worker
// (or `make examples/worker-cpp`).
// Typical use: one `worker UUID` per Slurm array job or MPI rank.

#include <taskfarm_worker.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>

namespace {

// Stands in for the real computation of one step of `task`.
void compute_step(std::int64_t task, int step) {
    (void)task;
    (void)step;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// Creates a run of `num_tasks` tasks and prints its UUID.
int create_run(std::int64_t num_tasks) {
    const taskfarm::TaskFarm run = taskfarm::TaskFarm::create(num_tasks);
    std::cout << run.uuid() << '\n';
    return 0;
}

// Works through the run `uuid` until no task is left.
int work(std::string_view uuid) {
    taskfarm::Worker worker(uuid);
    std::cout << "worker " << worker.uuid() << " on run " << uuid << '\n';

    constexpr int steps = 4;
    for (std::int64_t task : worker.tasks()) {
        for (int step = 1; step <= steps; ++step) {
            compute_step(task, step);
            worker.update(100.0 * step / steps);
        }
        worker.done();  // marked done on the server: the last update was 100
        std::cout << "task " << task << " done\n";
    }

    const taskfarm::RunStatus status = worker.taskfarm().status();
    std::cout << "run " << uuid << ": " << status.num_done << " of " << status.num_tasks
              << " tasks done (" << status.percent_done << " %)\n";
    return 0;
}

int usage() {
    std::cerr << "usage: worker [-n N]   create a run of N tasks (default 10), print its UUID\n"
                 "       worker UUID     work through the run UUID\n"
                 "(TASKFARM_USER, TASKFARM_PASSWORD and TASKFARM_URL from the environment)\n";
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        if (argc == 1) {
            return create_run(10);
        }
        const std::string_view first = argv[1];
        if (argc == 3 && first == "-n") {
            char *end = nullptr;
            const long long n = std::strtoll(argv[2], &end, 10);
            if (*argv[2] == '\0' || *end != '\0' || n < 1) {
                return usage();
            }
            return create_run(n);
        }
        if (argc == 2 && !first.empty() && first.front() != '-') {
            return work(first);
        }
        return usage();
    } catch (const taskfarm::Error &e) {
        std::cerr << "taskfarm: " << e.what() << " (" << taskfarm::status_name(e.status()) << ")\n";
        return 1;
    }
}
