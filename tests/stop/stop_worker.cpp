// tests/stop/stop_worker.cpp: TF_STOP_CONTINUE through the C++ wrapper, for
// tests/stop_signals.rs.
//
//   stop_worker_cpp UUID
//
// taskfarm::stop_on_signals({SIGTERM}, TF_STOP_CONTINUE); a range-for over
// the worker's tasks: update(25), print "computing TASK", wait for the stop
// (polling taskfarm::stop_requested(), 60 s at most), then update(50), which
// hands the task back and returns false. The loop must end without an
// exception; then prints "stopped SIGNAL", the number of tasks seen,
// Worker::stopped() and held_percent(). Exit status 0 when it all held.
#include <taskfarm_worker.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

int main(int argc, char **argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc != 2) {
        std::fputs("usage: stop_worker_cpp UUID\n", stderr);
        return 2;
    }
    try {
        taskfarm::stop_on_signals({SIGTERM}, TF_STOP_CONTINUE);
        taskfarm::Worker worker(argv[1]);
        int seen = 0;
        bool update_after_stop = true;
        for (std::int64_t task : worker.tasks()) {
            seen++;
            worker.update(25.0);
            std::printf("computing %lld held %g\n", static_cast<long long>(task),
                        worker.held_percent().value_or(-1.0));
            const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (taskfarm::stop_requested() == 0 && std::chrono::steady_clock::now() < end) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            update_after_stop = worker.update(50.0);
            worker.done();  // nothing held any more: does nothing
        }
        std::printf("stopped %d tasks %d update %s stopped() %s held %s\n",
                    taskfarm::stop_requested(), seen, update_after_stop ? "true" : "false",
                    worker.stopped() ? "true" : "false",
                    worker.held_percent().has_value() ? "some" : "none");
        return seen == 1 && !update_after_stop && worker.stopped() ? 0 : 1;
    } catch (const taskfarm::Error &e) {
        std::printf("FAIL Error %s: %s\n", taskfarm::status_name(e.status()).data(), e.what());
        return 1;
    }
}
