// tests/cpp/wrapper_test.cpp: the C++ wrapper (include/taskfarm_worker.hpp)
// driving whole runs against the real taskfarm server.
//
// Needs TASKFARM_URL, TASKFARM_USER and TASKFARM_PASSWORD (tests/cpp/run.sh
// starts the server and sets them). One worker at a time: the SQLite server
// cannot hand out tasks to concurrent workers.
//
// Prints one line per check and ends with "N passed, M failed"; the exit
// status is non-zero when a check failed.

#include <taskfarm_worker.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using taskfarm::Error;
using taskfarm::TaskFarm;
using taskfarm::TaskFarmRef;
using taskfarm::Worker;

int passed = 0;
int failed = 0;

void check(bool ok, const std::string &what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    std::fflush(stdout);
    (ok ? passed : failed) += 1;
}

template <class T>
std::string show(const std::optional<T> &value) {
    return value ? std::to_string(*value) : std::string("nullopt");
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// `body` must throw taskfarm::Error with `status` (and `http`, unless -1) and
// a non-empty message.
void expect_error(const std::string &what, tf_status status, int http,
                  const std::function<void()> &body) {
    try {
        body();
        check(false, what + ": no exception");
    } catch (const Error &e) {
        const bool ok = e.status() == status && (http < 0 || e.http_status() == http) &&
                        e.what()[0] != '\0';
        check(ok, what + ": Error " + std::string(taskfarm::status_name(e.status())) + " http " +
                      std::to_string(e.http_status()) + (ok ? "" : std::string(" (") + e.what() + ")"));
    } catch (const std::exception &e) {
        check(false, what + ": not a taskfarm::Error: " + e.what());
    }
}

// Runs one group of checks; an unexpected exception is one failed check.
void section(const char *name, const std::function<void()> &body) {
    std::printf("-- %s\n", name);
    try {
        body();
    } catch (const Error &e) {
        check(false, std::string(name) + ": unexpected taskfarm::Error " +
                         std::string(taskfarm::status_name(e.status())) + ": " + e.what());
    } catch (const std::exception &e) {
        check(false, std::string(name) + ": unexpected exception: " + e.what());
    }
}

std::string env(const char *name) {
    const char *value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        std::fprintf(stderr, "wrapper_test: %s is not set (run tests/cpp/run.sh)\n", name);
        std::exit(2);
    }
    return value;
}

// ---------------------------------------------------------------------------
// Every C function of include/taskfarm_worker.h, its address taken from C++
// (the header compiles and links as C++) and the C++ counterpart that this
// test exercises. tests/cpp/run.sh checks that this table names every
// function the header declares.

using AnyFunction = void (*)();

template <class F>
AnyFunction any(F *function) {
    return reinterpret_cast<AnyFunction>(function);
}

struct CFunction {
    const char *name;
    AnyFunction address;
    const char *counterpart;
};

const CFunction c_functions[] = {
    {"tf_last_error", any(&tf_last_error), "Error::what(), taskfarm::last_error()"},
    {"tf_last_http_status", any(&tf_last_http_status), "Error::http_status(), taskfarm::last_http_status()"},
    {"tf_runs", any(&tf_runs), "taskfarm::runs(), RunList::fetch()"},
    {"tf_runs_json", any(&tf_runs_json), "taskfarm::runs_json()"},
    {"tf_run_list_len", any(&tf_run_list_len), "RunList::size()"},
    {"tf_run_list_id", any(&tf_run_list_id), "RunList::id(), RunInfo::id"},
    {"tf_run_list_uuid", any(&tf_run_list_uuid), "RunList::uuid(), RunInfo::uuid"},
    {"tf_run_list_num_tasks", any(&tf_run_list_num_tasks), "RunList::num_tasks(), RunInfo::num_tasks"},
    {"tf_run_list_free", any(&tf_run_list_free), "RunList destructor"},
    {"tf_status_name", any(&tf_status_name), "taskfarm::status_name()"},
    {"tf_string_free", any(&tf_string_free), "every std::string result (detail::take_string)"},
    {"tf_taskfarm_create", any(&tf_taskfarm_create), "TaskFarm::create()"},
    {"tf_taskfarm_open", any(&tf_taskfarm_open), "TaskFarm::open()"},
    {"tf_taskfarm_open_with_token", any(&tf_taskfarm_open_with_token), "TaskFarm::open_with_token()"},
    {"tf_taskfarm_free", any(&tf_taskfarm_free), "TaskFarm destructor"},
    {"tf_taskfarm_uuid", any(&tf_taskfarm_uuid), "TaskFarm::uuid()"},
    {"tf_taskfarm_num_tasks", any(&tf_taskfarm_num_tasks), "TaskFarm::num_tasks()"},
    {"tf_taskfarm_percent_done", any(&tf_taskfarm_percent_done), "TaskFarm::percent_done()"},
    {"tf_taskfarm_num_done", any(&tf_taskfarm_num_done), "TaskFarm::num_done()"},
    {"tf_taskfarm_num_waiting", any(&tf_taskfarm_num_waiting), "TaskFarm::num_waiting()"},
    {"tf_taskfarm_num_computing", any(&tf_taskfarm_num_computing), "TaskFarm::num_computing()"},
    {"tf_taskfarm_status", any(&tf_taskfarm_status), "TaskFarm::status()"},
    {"tf_taskfarm_info", any(&tf_taskfarm_info), "TaskFarm::info()"},
    {"tf_taskfarm_get_task_info", any(&tf_taskfarm_get_task_info), "TaskFarm::get_task_info()"},
    {"tf_taskfarm_set_task_info", any(&tf_taskfarm_set_task_info), "TaskFarm::set_task_info()"},
    {"tf_taskfarm_task_percent_completed", any(&tf_taskfarm_task_percent_completed),
     "TaskFarm::task_percent_completed()"},
    {"tf_taskfarm_task_state", any(&tf_taskfarm_task_state), "TaskFarm::task_state()"},
    {"tf_taskfarm_set_task_percent_completed", any(&tf_taskfarm_set_task_percent_completed),
     "TaskFarm::set_task_percent_completed()"},
    {"tf_taskfarm_set_task_state", any(&tf_taskfarm_set_task_state), "TaskFarm::set_task_state()"},
    {"tf_taskfarm_restart", any(&tf_taskfarm_restart), "TaskFarm::restart()"},
    {"tf_taskfarm_delete", any(&tf_taskfarm_delete), "TaskFarm::remove()"},
    {"tf_taskfarm_url", any(&tf_taskfarm_url), "TaskFarm::url()"},
    {"tf_taskfarm_token", any(&tf_taskfarm_token), "TaskFarm::token()"},
    {"tf_taskfarm_set_timeout", any(&tf_taskfarm_set_timeout), "TaskFarm::set_timeout()"},
    {"tf_taskfarm_set_retries", any(&tf_taskfarm_set_retries), "TaskFarm::set_retries()"},
    {"tf_version", any(&tf_version), "taskfarm::version()"},
    {"tf_worker_new", any(&tf_worker_new), "Worker::Worker()"},
    {"tf_worker_new_with_token", any(&tf_worker_new_with_token), "Worker::with_token()"},
    {"tf_worker_free", any(&tf_worker_free), "Worker destructor"},
    {"tf_worker_uuid", any(&tf_worker_uuid), "Worker::uuid()"},
    {"tf_worker_taskfarm", any(&tf_worker_taskfarm), "Worker::taskfarm() -> TaskFarmRef"},
    {"tf_worker_task", any(&tf_worker_task), "Worker::task(), Worker::tasks()"},
    {"tf_worker_update", any(&tf_worker_update), "Worker::update()"},
    {"tf_worker_done", any(&tf_worker_done), "Worker::done()"},
    {"tf_worker_requeue", any(&tf_worker_requeue), "Worker::requeue()"},
    {"tf_worker_fail", any(&tf_worker_fail), "Worker::fail()"},
    {"tf_worker_attempt", any(&tf_worker_attempt), "Worker::attempt()"},
    {"tf_worker_held_percent", any(&tf_worker_held_percent), "Worker::held_percent()"},
    {"tf_worker_set_deadline", any(&tf_worker_set_deadline), "Worker::set_deadline()"},
    {"tf_stop_on_signals", any(&tf_stop_on_signals), "stop_on_signals()"},
    {"tf_stop_requested", any(&tf_stop_requested), "stop_requested()"},
    {"tf_worker_set_journal", any(&tf_worker_set_journal), "Worker::set_journal()"},
    {"tf_worker_set_update_interval", any(&tf_worker_set_update_interval),
     "Worker::set_update_interval()"},
    {"tf_worker_flush", any(&tf_worker_flush), "Worker::flush()"},
};

// ---------------------------------------------------------------------------
// Compile-time properties of the types.

static_assert(std::is_base_of_v<std::runtime_error, Error>);
static_assert(!std::is_copy_constructible_v<TaskFarm> && !std::is_copy_assignable_v<TaskFarm>);
static_assert(std::is_nothrow_move_constructible_v<TaskFarm> &&
              std::is_nothrow_move_assignable_v<TaskFarm>);
static_assert(!std::is_copy_constructible_v<Worker> && !std::is_copy_assignable_v<Worker>);
static_assert(std::is_nothrow_move_constructible_v<Worker> &&
              std::is_nothrow_move_assignable_v<Worker>);
static_assert(!std::is_copy_constructible_v<taskfarm::RunList>);
static_assert(std::is_nothrow_copy_constructible_v<TaskFarmRef>);
static_assert(std::is_convertible_v<const TaskFarm &, TaskFarmRef>);
static_assert(!std::is_convertible_v<TaskFarm &&, TaskFarmRef>);  // a view of a temporary would dangle
static_assert(!std::is_convertible_v<std::string_view, Worker>);  // Worker(uuid) is explicit
static_assert(std::is_same_v<decltype(std::declval<Worker &>().task()), std::optional<std::int64_t>>);

// tasks() and taskfarm() of a temporary Worker would dangle: deleted.
template <class W, class = void>
struct has_tasks : std::false_type {};
template <class W>
struct has_tasks<W, std::void_t<decltype(std::declval<W>().tasks())>> : std::true_type {};
template <class W, class = void>
struct has_taskfarm : std::false_type {};
template <class W>
struct has_taskfarm<W, std::void_t<decltype(std::declval<W>().taskfarm())>> : std::true_type {};
static_assert(has_tasks<Worker &>::value && !has_tasks<Worker &&>::value);
static_assert(has_taskfarm<Worker &>::value && !has_taskfarm<Worker &&>::value);
static_assert(std::is_same_v<decltype(*std::declval<Worker &>().tasks().begin()), std::int64_t>);
static_assert(std::is_same_v<std::iterator_traits<taskfarm::TaskRange::iterator>::iterator_category,
                             std::input_iterator_tag>);

// ---------------------------------------------------------------------------

void check_library() {
    check(taskfarm::version() == taskfarm::header_version(),
          "version() " + std::string(taskfarm::version()) + " == header " + taskfarm::header_version());
    check(taskfarm::status_name(TF_OK) == "TF_OK", "status_name(TF_OK)");
    check(taskfarm::status_name(TF_NO_MORE_TASKS) == "TF_NO_MORE_TASKS",
          "status_name(TF_NO_MORE_TASKS)");
    check(taskfarm::status_name(TF_ERR_NOT_FOUND) == "TF_ERR_NOT_FOUND",
          "status_name(TF_ERR_NOT_FOUND)");
    check(taskfarm::status_name(static_cast<tf_status>(99)) == "TF_UNKNOWN_STATUS",
          "status_name(99) is TF_UNKNOWN_STATUS");
}

void check_c_functions() {
    std::size_t reached = 0;
    for (const CFunction &f : c_functions) {
        const bool ok = f.address != nullptr;
        reached += ok ? 1 : 0;
        check(ok, std::string("C function ") + f.name + " reachable from C++: " + f.counterpart);
    }
    check(reached == sizeof c_functions / sizeof c_functions[0],
          std::to_string(reached) + " C functions reachable from C++");
}

void check_arguments(const std::string &user, const std::string &password, const std::string &url) {
    using taskfarm::OptionalString;
    check(!OptionalString().has_value() && OptionalString().c_str() == nullptr,
          "OptionalString() is NULL (from the environment)");
    check(!OptionalString(taskfarm::from_env).has_value() && !OptionalString(std::nullopt).has_value() &&
              !OptionalString(nullptr).has_value() &&
              !OptionalString(static_cast<const char *>(nullptr)).has_value() &&
              !OptionalString(std::optional<std::string>()).has_value(),
          "from_env, nullopt, nullptr, NULL and an empty optional are NULL");
    check(std::string_view(OptionalString(user).c_str()) == user &&
              std::string_view(OptionalString(std::string_view(password)).c_str()) == password &&
              std::string_view(OptionalString(std::optional<std::string>(url)).c_str()) == url &&
              std::string_view(OptionalString("").c_str()).empty(),
          "OptionalString keeps given strings (also \"\")");
    expect_error("a NUL inside a string argument", TF_ERR_INVALID_ARGUMENT, 0,
                 [] { (void)OptionalString(std::string_view("us\0er", 5)); });
}

// A whole run: create, open, workers, range-for, requeue, status, info, task
// information, restart both ways, runs, errors, remove.
void check_run(const std::string &user, const std::string &password, const std::string &url) {
    constexpr std::int64_t n = 6;
    TaskFarm tf = TaskFarm::create(n);  // credentials and URL from the environment
    const std::string uuid = tf.uuid();
    check(tf && !uuid.empty(), "TaskFarm::create(6) from the environment: run " + uuid);
    check(tf.num_tasks() == n, "num_tasks() == 6");

    {
        TaskFarm explicit_args = TaskFarm::open(user, password, url, uuid);
        check(explicit_args.uuid() == uuid && explicit_args.num_tasks() == n,
              "TaskFarm::open(user, password, url, uuid)");
        TaskFarm env_args = TaskFarm::open(uuid);
        check(env_args.uuid() == uuid && env_args.num_tasks() == n, "TaskFarm::open(uuid) from the environment");
        TaskFarm mixed = TaskFarm::open(std::optional<std::string>(user), std::string_view(password),
                                        taskfarm::from_env, uuid);
        check(mixed.uuid() == uuid, "TaskFarm::open(optional<string>, string_view, from_env, uuid)");
        TaskFarm created = TaskFarm::create(user.c_str(), password, std::optional<std::string_view>(url), 2);
        check(created.num_tasks() == 2 && created.uuid() != uuid,
              "TaskFarm::create(const char*, string, optional<string_view>, 2)");
        created.remove();
    }

    const taskfarm::RunStatus fresh = tf.status();
    check(fresh.num_tasks == n && fresh.num_done == 0 && fresh.num_waiting == 0 &&
              fresh.num_computing == 0 && fresh.percent_done == 0.0,
          "status() of a new run: 6 tasks, nothing done");
    check(tf.percent_done() == 0.0 && tf.num_done() == 0 && tf.num_waiting() == 0 && tf.num_computing() == 0,
          "percent_done(), num_done(), num_waiting(), num_computing() all 0");
    const std::string whole = tf.info();
    check(contains(whole, "\"uuid\"") && contains(whole, uuid) && contains(whole, "\"numTasks\""),
          "info() is the whole object: " + whole);
    check(tf.info("numDone") == "0", "info(\"numDone\") == \"0\"");
    const std::string base = url.back() == '/' ? url : url + "/";
    check(tf.url("runs") == base + "runs", "url(\"runs\") == " + tf.url("runs"));
    check(!tf.token().empty(), "token() is not empty");
    tf.set_timeout(30.0);
    tf.set_retries(3);
    check(true, "set_timeout(30), set_retries(3)");
    expect_error("set_timeout(0)", TF_ERR_INVALID_ARGUMENT, 0, [&] { tf.set_timeout(0.0); });
    expect_error("set_retries(5000)", TF_ERR_INVALID_ARGUMENT, 0, [&] { tf.set_retries(5000); });
    expect_error("info(\"bogus\")", TF_ERR_INVALID_ARGUMENT, 0, [&] { (void)tf.info("bogus"); });
    expect_error("task_state(6): task out of range", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { (void)tf.task_state(n); });
    expect_error("info() with a NUL in the key", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { (void)tf.info(std::string_view("num\0Done", 8)); });

    // One worker: nothing held, then update/requeue semantics.
    Worker w(uuid);
    const std::string worker_uuid = w.uuid();
    check(worker_uuid.size() == 32 && worker_uuid.find_first_not_of("0123456789abcdef") == std::string::npos,
          "Worker(uuid) from the environment: worker " + worker_uuid);
    TaskFarmRef run = w.taskfarm();
    check(run && run.uuid() == uuid && run.num_tasks() == n, "worker.taskfarm() is the run (borrowed)");
    w.update(50.0);
    w.done();
    w.requeue();
    check(tf.num_computing() == 0, "update(), done(), requeue() with no task held do nothing");

    // The journal: a file named by run and worker while it is on, gone when off.
    {
        const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                          ("tf-cpp-journal-" + worker_uuid);
        std::filesystem::create_directories(dir);
        w.set_journal(dir.string());
        const auto file = dir / ("worker-" + uuid + "-" + worker_uuid + ".json");
        check(std::filesystem::exists(file), "set_journal(dir) writes " + file.string());
        w.set_journal(taskfarm::from_env);
        check(!std::filesystem::exists(file), "set_journal(from_env) stops it and removes the file");
        expect_error("set_journal() of a missing directory", TF_ERR_INVALID_ARGUMENT, 0,
                     [&] { w.set_journal((dir / "missing").string()); });
        std::filesystem::remove_all(dir);
    }
    w.set_update_interval(0.5);
    w.flush();
    expect_error("set_update_interval(-1)", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { w.set_update_interval(-1.0); });
    expect_error("update(150)", TF_ERR_INVALID_ARGUMENT, 0, [&] { w.update(150.0); });
    expect_error("update(NaN)", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { w.update(std::numeric_limits<double>::quiet_NaN()); });

    const std::optional<std::int64_t> first = w.task();
    check(first && *first >= 0 && *first < n, "task() hands out task " + show(first));
    check(w.task() == first, "task() again gives the held task");
    w.update(50.0);
    check(tf.task_percent_completed(*first) == 50.0 && tf.task_state(*first) == TF_TASK_COMPUTING,
          "update(50): task at 50 %, computing");
    check(tf.get_task_info(*first, "status") == "\"computing\"",
          "get_task_info(task, \"status\") == " + tf.get_task_info(*first, "status"));
    check(run.num_computing() == 1, "num_computing() == 1 (through the borrowed run)");
    expect_error("update(150) with a task held", TF_ERR_INVALID_ARGUMENT, 0, [&] { w.update(150.0); });
    check(tf.task_percent_completed(*first) == 50.0, "a refused update changes nothing");
    w.requeue();
    check(tf.task_state(*first) == TF_TASK_WAITING && tf.task_percent_completed(*first) == 0.0 &&
              tf.num_waiting() == 1 && tf.num_computing() == 0,
          "requeue(): the task is waiting at 0 %");

    // The range-for works through every task, each once.
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    int iterations = 0;
    bool held_inside = true;
    for (std::int64_t t : w.tasks()) {
        if (++iterations > 3 * n) {
            break;  // a broken iterator must not loop forever
        }
        seen.at(static_cast<std::size_t>(t)) += 1;
        held_inside = held_inside && w.task() == t;
        w.update(50.0);
        w.update(100.0);
        w.done();
    }
    bool each_once = true;
    for (int s : seen) {
        each_once = each_once && s == 1;
    }
    check(iterations == n && each_once, "range-for over tasks(): " + std::to_string(iterations) +
                                            " tasks, each once (the requeued one too)");
    check(held_inside, "inside the loop task() is the loop's task");
    const taskfarm::RunStatus finished = tf.status();
    check(finished.num_done == n && finished.num_waiting == 0 && finished.num_computing == 0 &&
              finished.percent_done == 100.0,
          "status(): 6 done, 100 %");
    check(tf.info("numDone") == "6" && std::stod(tf.info("percentDone")) == 100.0,
          "info(\"numDone\") == 6, info(\"percentDone\") == 100");
    check(!w.task().has_value(), "task() at the end: nullopt");
    int more = 0;
    for (std::int64_t t : w.tasks()) {
        (void)t;
        ++more;
        break;
    }
    check(more == 0, "tasks() of a finished run: no iteration");

    // restart: without everything only unfinished tasks, with everything all.
    tf.restart();
    check(tf.num_done() == n, "restart(): finished tasks stay done");
    tf.restart(true);
    const taskfarm::RunStatus restarted = tf.status();
    check(restarted.num_done == 0 && restarted.num_waiting == n && restarted.percent_done == 0.0 &&
              tf.task_percent_completed(0) == 0.0,
          "restart(true): every task waiting at 0 %");

    // done() without 100 % forgets the task without marking it done.
    Worker w2(user, password, url, uuid);
    check(w2.uuid() != worker_uuid, "Worker(user, password, url, uuid): a second worker");
    const std::optional<std::int64_t> a = w2.task();
    w2.update(40.0);
    w2.done();
    check(a && tf.task_state(*a) == TF_TASK_COMPUTING && tf.task_percent_completed(*a) == 40.0,
          "done() after update(40): task " + show(a) + " not marked done, still computing");
    const std::optional<std::int64_t> b = w2.task();
    check(b && b != a, "task() after done() gives a new task " + show(b));
    w2.update(100.0);
    w2.done();
    check(tf.task_state(*b) == TF_TASK_DONE, "update(100), done(): task marked done");

    // Without done() the range-for gives the held task again.
    int rounds = 0;
    std::optional<std::int64_t> held;
    bool same = true;
    for (std::int64_t t : w2.tasks()) {
        if (!held) {
            held = t;
        }
        same = same && t == *held;
        if (++rounds == 3) {
            break;
        }
    }
    check(rounds == 3 && same, "range-for without done(): task " + show(held) + " three times");
    w2.requeue();
    check(tf.task_state(*held) == TF_TASK_WAITING, "requeue() after the loop: waiting");

    tf.restart();
    check(tf.task_state(*a) == TF_TASK_WAITING && tf.task_percent_completed(*a) == 40.0 &&
              tf.task_state(*b) == TF_TASK_DONE,
          "restart(): the unfinished task waits again at 40 %, the done one stays done");

    // Task information, JSON and typed, through the owner and the borrowed run.
    tf.set_task_info(*a, "percentCompleted", "100");
    tf.set_task_info(*a, "status", "\"done\"");
    check(tf.get_task_info(*a, "status") == "\"done\"" &&
              std::stod(tf.get_task_info(*a, "percentCompleted")) == 100.0,
          "set_task_info(percentCompleted 100, status \"done\") read back");
    const std::string task_json = tf.get_task_info(*a);
    check(contains(task_json, "\"task\"") && contains(task_json, "\"done\""),
          "get_task_info(task) is the whole task: " + task_json);
    expect_error("set_task_info(status \"bogus\")", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { tf.set_task_info(*a, "status", "\"bogus\""); });
    std::int64_t c = 0;
    while (c == *a || c == *b) {
        ++c;
    }
    TaskFarmRef w2_run = w2.taskfarm();
    w2_run.set_task_percent_completed(c, 25.0);
    w2_run.set_task_state(c, TF_TASK_COMPUTING);
    check(tf.task_percent_completed(c) == 25.0 && tf.task_state(c) == TF_TASK_COMPUTING,
          "set_task_percent_completed(25), set_task_state(computing) through worker.taskfarm()");
    expect_error("set_task_percent_completed(101)", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { w2_run.set_task_percent_completed(c, 101.0); });
    expect_error("set_task_state(7)", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { w2_run.set_task_state(c, static_cast<taskfarm::TaskState>(7)); });
    w2_run.set_task_state(c, TF_TASK_WAITING);

    // Finish the run with the second worker.
    int rest = 0;
    for (std::int64_t t : w2.tasks()) {
        (void)t;
        if (++rest > 3 * n) {
            break;
        }
        w2.update(100.0);
        w2.done();
    }
    check(rest == n - 2 && w2_run.num_done() == n && w2_run.percent_done() == 100.0,
          "the second worker finished the " + std::to_string(rest) + " other tasks: 6 done");

    // The list of runs.
    const std::vector<taskfarm::RunInfo> listed = taskfarm::runs();
    bool found = false;
    for (const taskfarm::RunInfo &r : listed) {
        found = found || (r.uuid == uuid && r.num_tasks == n && r.id > 0);
    }
    check(found, "runs(): the run is listed with 6 tasks (" + std::to_string(listed.size()) + " runs)");
    check(taskfarm::runs(user, password, url).size() == listed.size(), "runs(user, password, url)");
    check(contains(taskfarm::runs_json(), uuid) && contains(taskfarm::runs_json(user, password, url), "numTasks"),
          "runs_json() lists the run");
    const taskfarm::RunList list = taskfarm::RunList::fetch(user, password, url);
    bool same_list = list.size() == listed.size();
    for (std::size_t i = 0; same_list && i < list.size(); ++i) {
        const taskfarm::RunInfo r = list.at(i);
        same_list = r.id == listed[i].id && r.uuid == listed[i].uuid && r.num_tasks == listed[i].num_tasks &&
                    list.uuid(i) == r.uuid && list.id(i) == r.id && list.num_tasks(i) == r.num_tasks;
    }
    check(same_list, "RunList::fetch(): size(), at(), id(), uuid(), num_tasks()");
    expect_error("RunList::id(size())", TF_ERR_INVALID_ARGUMENT, 0, [&] { (void)list.id(list.size()); });

    // Failures.
    const std::string bad_password = "not-the-password-7f3a";
    try {
        (void)TaskFarm::open(user, bad_password, url, uuid);
        check(false, "wrong password: no exception");
    } catch (const Error &e) {
        check(e.status() == TF_ERR_AUTH && e.http_status() == 401 && !contains(e.what(), bad_password),
              "wrong password: Error TF_ERR_AUTH http " + std::to_string(e.http_status()) +
                  ", message without the password: " + e.what());
    }
    expect_error("Worker with a wrong password", TF_ERR_AUTH, 401,
                 [&] { Worker bad(user, bad_password, url, uuid); });
    expect_error("runs() with a wrong password", TF_ERR_AUTH, 401,
                 [&] { (void)taskfarm::runs(user, bad_password, url); });
    expect_error("open(unknown uuid)", TF_ERR_NOT_FOUND, 404,
                 [&] { (void)TaskFarm::open("0123456789abcdef0123456789abcdef"); });
    expect_error("Worker(unknown uuid)", TF_ERR_NOT_FOUND, 404,
                 [&] { Worker unknown("0123456789abcdef0123456789abcdef"); });
    expect_error("open(\"../runs\"): a bad uuid", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { (void)TaskFarm::open("../runs"); });

    // The message is copied when the Error is thrown.
    try {
        (void)tf.info("first-bad-key");
    } catch (const Error &e1) {
        try {
            (void)tf.task_state(-1);
        } catch (const Error &e2) {
            check(contains(e1.what(), "first-bad-key") && std::string(e1.what()) != e2.what() &&
                      std::string(e2.what()) == taskfarm::last_error() &&
                      e2.http_status() == taskfarm::last_http_status(),
                  "Error keeps its own message after a later failure");
        }
    }

    // remove(): the run is gone, the handle stays valid.
    tf.remove();
    check(tf.uuid() == uuid && tf.num_tasks() == n, "remove(): uuid() and num_tasks() still answer");
    expect_error("num_done() after remove()", TF_ERR_NOT_FOUND, 404, [&] { (void)tf.num_done(); });
    expect_error("status() after remove()", TF_ERR_NOT_FOUND, 404, [&] { (void)tf.status(); });
    expect_error("open() after remove()", TF_ERR_NOT_FOUND, 404, [&] { (void)TaskFarm::open(uuid); });
    bool listed_after = false;
    for (const taskfarm::RunInfo &r : taskfarm::runs()) {
        listed_after = listed_after || r.uuid == uuid;
    }
    check(!listed_after, "runs() no longer lists the removed run");
}

// A token instead of the password: open_with_token, Worker::with_token,
// from_env (TASKFARM_TOKEN), malformed tokens, a refused token with and
// without credentials in the environment.
void check_token(const std::string &password, const std::string &url) {
    TaskFarm tf = TaskFarm::create(3);
    const std::string uuid = tf.uuid();
    const std::string token = tf.token();
    TaskFarm by_token = TaskFarm::open_with_token(token, url, uuid);
    check(by_token.uuid() == uuid && by_token.num_tasks() == 3 && by_token.token() == token,
          "TaskFarm::open_with_token(token, url, uuid) uses the token given");
    {
        Worker w = Worker::with_token(token, taskfarm::from_env, uuid);
        int done = 0;
        for (std::int64_t t : w.tasks()) {
            (void)t;
            w.update(100.0);
            w.done();
            ++done;
        }
        check(done == 3 && by_token.num_done() == 3, "Worker::with_token(token, from_env, uuid) works through the run");
    }
    setenv("TASKFARM_TOKEN", token.c_str(), 1);
    {
        Worker w = Worker::with_token(taskfarm::from_env, taskfarm::from_env, uuid);
        TaskFarm opened = TaskFarm::open_with_token(taskfarm::from_env, taskfarm::from_env, uuid);
        check(w.taskfarm().token() == token && opened.token() == token,
              "with_token(from_env, ...) and open_with_token(from_env, ...) read TASKFARM_TOKEN");
    }
    unsetenv("TASKFARM_TOKEN");
    expect_error("with_token(from_env) without TASKFARM_TOKEN", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { (void)Worker::with_token(taskfarm::from_env, url, uuid); });
    for (const char *bad : {"", "with space", "with:colon", "tab\there"}) {
        expect_error(std::string("with_token(\"") + bad + "\"): malformed", TF_ERR_INVALID_ARGUMENT, 0,
                     [&] { (void)Worker::with_token(bad, url, uuid); });
    }
    // Well formed, but not a token of this server: 401. With TASKFARM_USER
    // and TASKFARM_PASSWORD in the environment a new token is fetched ...
    const std::string bogus = "not.a-real.token4711";
    TaskFarm recovered = TaskFarm::open_with_token(bogus, url, uuid);
    check(recovered.token() == token, "a refused token is replaced with credentials from the environment");
    // ... without them it is TF_ERR_AUTH, saying why, never quoting the token.
    unsetenv("TASKFARM_PASSWORD");
    try {
        (void)TaskFarm::open_with_token(bogus, url, uuid);
        check(false, "a refused token without credentials: no exception");
    } catch (const Error &e) {
        check(e.status() == TF_ERR_AUTH && e.http_status() == 401 && contains(e.what(), "refused the token") &&
                  !contains(e.what(), bogus),
              std::string("a refused token without credentials: Error TF_ERR_AUTH: ") + e.what());
    }
    setenv("TASKFARM_PASSWORD", password.c_str(), 1);
    tf.remove();
}

void check_connection_error(const std::string &user, const std::string &password) {
    // Port 1 on localhost: refused at once; no retries so that it is quick.
    setenv("TASKFARM_RETRIES", "0", 1);
    expect_error("create() against a closed port", TF_ERR_CONNECTION, 0,
                 [&] { (void)TaskFarm::create(user, password, "http://127.0.0.1:1/api/", 1); });
    unsetenv("TASKFARM_RETRIES");
}

void check_moves() {
    TaskFarm a = TaskFarm::create(2);
    const std::string uuid = a.uuid();
    TaskFarm b(std::move(a));
    check(!a && b && b.uuid() == uuid, "TaskFarm move construction: source empty, target holds the run");
    expect_error("uuid() of a moved-from TaskFarm", TF_ERR_INVALID_ARGUMENT, 0, [&] { (void)a.uuid(); });
    expect_error("num_done() of a moved-from TaskFarm", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { (void)a.num_done(); });
    TaskFarm c = TaskFarm::create(1);
    const std::string other = c.uuid();
    c = std::move(b);  // frees the handle of run `other`
    check(!b && c.uuid() == uuid, "TaskFarm move assignment frees the old handle");
    TaskFarm::open(other).remove();
    a = std::move(c);
    check(a && !c && a.uuid() == uuid, "a moved-from TaskFarm can be assigned to");
    const TaskFarmRef ref = a;
    check(ref.get() == a.get() && ref.uuid() == uuid, "TaskFarm converts to a TaskFarmRef");
    tf_taskfarm *raw = a.release();
    TaskFarm adopted = TaskFarm::adopt(raw);
    check(!a && adopted.get() == raw && adopted.num_tasks() == 2, "release() and TaskFarm::adopt()");

    Worker w1(uuid);
    const std::string worker_uuid = w1.uuid();
    const std::optional<std::int64_t> task = w1.task();
    Worker w2(std::move(w1));
    check(!w1 && w2 && w2.uuid() == worker_uuid && w2.task() == task,
          "Worker move construction keeps the held task " + show(task));
    expect_error("task() of a moved-from Worker", TF_ERR_INVALID_ARGUMENT, 0, [&] { (void)w1.task(); });
    expect_error("update() of a moved-from Worker", TF_ERR_INVALID_ARGUMENT, 0, [&] { w1.update(10.0); });
    expect_error("taskfarm() of a moved-from Worker", TF_ERR_INVALID_ARGUMENT, 0,
                 [&] { (void)w1.taskfarm(); });
    Worker w3;
    check(!w3, "Worker() is empty");
    w3 = std::move(w2);
    check(!w2 && w3.uuid() == worker_uuid, "Worker move assignment");
    std::vector<Worker> workers;
    workers.push_back(std::move(w3));
    workers.emplace_back(uuid);
    check(workers.size() == 2 && workers[0].uuid() == worker_uuid && workers[1].uuid() != worker_uuid,
          "Workers in a std::vector");
    workers[0].update(100.0);
    workers[0].done();
    check(adopted.task_state(*task) == TF_TASK_DONE, "the moved worker marks its task done");
    Worker w4 = Worker::adopt(workers[1].release());
    check(!workers[1] && w4.task().has_value(), "Worker release() and adopt()");
    w4.requeue();
    adopted.remove();
    // a, b, c, w1, w2, w3, workers[1] are moved from: destroyed at the end of this scope.
}

}  // namespace

int main() {
    const std::string url = env("TASKFARM_URL");
    const std::string user = env("TASKFARM_USER");
    const std::string password = env("TASKFARM_PASSWORD");

    section("library", check_library);
    section("C functions", check_c_functions);
    section("arguments", [&] { check_arguments(user, password, url); });
    section("a whole run", [&] { check_run(user, password, url); });
    section("token", [&] { check_token(password, url); });
    section("connection error", [&] { check_connection_error(user, password); });
    section("move semantics", check_moves);

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
