/**
 * @file taskfarm_worker.hpp
 * @brief C++17 wrapper of taskfarm_worker.h, header only.
 *
 * A thin layer over the C ABI: owning handles are move-only RAII classes
 * (`std::unique_ptr` with the C free function as deleter), every failure
 * throws taskfarm::Error (the C status, the HTTP status and the text of
 * tf_last_error(), copied when it is thrown), and strings the library
 * allocates are copied into `std::string` and freed with tf_string_free().
 *
 * @code
 * #include <taskfarm_worker.hpp>
 *
 * taskfarm::Worker worker(run_uuid);      // credentials and URL from TASKFARM_*
 * for (std::int64_t task : worker.tasks()) {
 *     // ... compute task `task`, reporting progress ...
 *     worker.update(50.0);
 *     worker.update(100.0);
 *     worker.done();                       // marked done: the last update was 100
 * }
 * @endcode
 *
 * One source of truth: the comment of each member names the C function it
 * calls ("See tf_worker_update."), whose comment in taskfarm_worker.h gives
 * the semantics, the ranges and the defaults; here only what differs in
 * C++ is said. Throughout: a member throws taskfarm::Error where the C
 * function returns an error status, and returns what the C function writes
 * through its out-pointer.
 *
 * Credentials and URL: every `user`, `password` and `url` parameter is a
 * taskfarm::OptionalString. Pass a string to use it, or taskfarm::from_env
 * (equivalently `std::nullopt`, `nullptr`, or a `const char*` that is NULL)
 * for "not given", passed to C as NULL. The overloads without credentials
 * (`TaskFarm::create(n)`, `TaskFarm::open(uuid)`, `Worker(uuid)`, `runs()`)
 * pass NULL for all three.
 *
 * Threads: the rules of the C handles (TaskFarm is a tf_taskfarm, Worker a
 * tf_worker). Error messages are read on the throwing thread.
 *
 * Link with `-ltaskfarm_worker`.
 */

#ifndef TASKFARM_WORKER_HPP
#define TASKFARM_WORKER_HPP

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "taskfarm_worker.h"

/** The C++ API of the taskfarm worker client. */
namespace taskfarm {

/** The result code of the C functions (`TF_OK`, `TF_ERR_AUTH`, ...). */
using Status = tf_status;

/** The state of a task on the server (`TF_TASK_WAITING`, `TF_TASK_COMPUTING`, `TF_TASK_DONE`). */
using TaskState = tf_task_state;

/** See tf_run_status (TaskFarm::status()). */
using RunStatus = tf_run_status;

/**
 * A failure of the library: every C++ function throws it where the C
 * function returns an error status. `what()` is the text of
 * tf_last_error() at the time of the failure.
 */
class Error : public std::runtime_error {
public:
    /**
     * An error with the given status, HTTP status (0 when there was no
     * answer) and message.
     */
    Error(Status status, int http_status, const std::string &message)
        : std::runtime_error(message), status_(status), http_status_(http_status) {}

    /**
     * The error of the last failure on the calling thread: `status` with
     * the message of tf_last_error() (tf_status_name() when it is empty) and
     * the status of tf_last_http_status().
     */
    [[nodiscard]] static Error from_last(Status status) {
        const char *message = tf_last_error();
        std::string text = (message != nullptr && *message != '\0')
                               ? std::string(message)
                               : std::string(tf_status_name(static_cast<int>(status)));
        return Error(status, tf_last_http_status(), text);
    }

    /** The C status code of the failure (never `TF_OK`, `TF_NO_MORE_TASKS` nor `TF_STOPPED`). */
    [[nodiscard]] Status status() const noexcept { return status_; }

    /** The HTTP status of the answer behind the failure; 0 when there was none. */
    [[nodiscard]] int http_status() const noexcept { return http_status_; }

private:
    Status status_;
    int http_status_;
};

/** Implementation details; not part of the API. */
namespace detail {

/** Throws the Error of the last failure when `status` is not `TF_OK`. */
inline void check(Status status) {
    if (status != TF_OK) {
        throw Error::from_last(status);
    }
}

/** Throws an Error of status `TF_ERR_INVALID_ARGUMENT` with `message`. */
[[noreturn]] inline void invalid_argument(const std::string &message) {
    throw Error(TF_ERR_INVALID_ARGUMENT, 0, "taskfarm: " + message);
}

/** A NUL-terminated copy of `text`; a NUL inside it is refused (C would cut the string there). */
inline std::string c_string(std::string_view text) {
    if (text.find('\0') != std::string_view::npos) {
        invalid_argument("a string argument contains a NUL character");
    }
    return std::string(text);
}

/** The deleter of the strings the library returns as `char*`. */
struct StringFree {
    /** Frees `string` with tf_string_free (NULL does nothing). */
    void operator()(char *string) const noexcept { tf_string_free(string); }
};

/** Frees the library's `char*` strings with tf_string_free, also on exceptions. */
using OwnedString = std::unique_ptr<char, StringFree>;

/** Copies a library-owned `char*` into a std::string and frees it (NULL gives ""). */
inline std::string take_string(char *string) {
    OwnedString owned(string);
    return owned ? std::string(owned.get()) : std::string();
}

/** The deleter of owned tf_taskfarm handles. */
struct TaskFarmFree {
    /** Frees `taskfarm` with tf_taskfarm_free (NULL does nothing). */
    void operator()(tf_taskfarm *taskfarm) const noexcept { tf_taskfarm_free(taskfarm); }
};

/** The deleter of tf_worker handles. */
struct WorkerFree {
    /** Frees `worker` with tf_worker_free (NULL does nothing). */
    void operator()(tf_worker *worker) const noexcept { tf_worker_free(worker); }
};

/** The deleter of tf_run_list lists. */
struct RunListFree {
    /** Frees `list` with tf_run_list_free (NULL does nothing). */
    void operator()(tf_run_list *list) const noexcept { tf_run_list_free(list); }
};

}  // namespace detail

/** The tag for "not given: read it from the environment" (`std::nullopt`). */
inline constexpr std::nullopt_t from_env = std::nullopt;

/**
 * A string argument that may be left out, passed to C as NULL: the user
 * name, the password, the base URL, the token, the journal directory.
 *
 * Converts implicitly from a string literal, `std::string`,
 * `std::string_view`, `std::optional<std::string>` and
 * `std::optional<std::string_view>`; from_env, `std::nullopt`, `nullptr`
 * and a NULL `const char*` mean "not given". A string holding a NUL
 * character throws Error (`TF_ERR_INVALID_ARGUMENT`).
 */
class OptionalString {
public:
    /** Not given. */
    OptionalString() noexcept = default;
    /** Not given (from_env, `std::nullopt`). */
    OptionalString(std::nullopt_t) noexcept {}
    /** Not given. */
    OptionalString(std::nullptr_t) noexcept {}
    /** `text`, or not given when `text` is NULL. */
    OptionalString(const char *text) {
        if (text != nullptr) {
            value_ = std::string(text);
        }
    }
    /** `text`. */
    OptionalString(std::string_view text) : value_(detail::c_string(text)) {}
    /** `text`. */
    OptionalString(const std::string &text) : value_(detail::c_string(text)) {}
    /** The value of `text`, or not given when it is empty. */
    OptionalString(const std::optional<std::string> &text) {
        if (text) {
            value_ = detail::c_string(*text);
        }
    }
    /** The value of `text`, or not given when it is empty. */
    OptionalString(const std::optional<std::string_view> &text) {
        if (text) {
            value_ = detail::c_string(*text);
        }
    }

    /** Whether a value was given. */
    [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }

    /** The value as a C string, or NULL when not given; valid while this object lives. */
    [[nodiscard]] const char *c_str() const noexcept {
        return value_ ? value_->c_str() : nullptr;
    }

private:
    std::optional<std::string> value_{};
};

/** See tf_version. */
[[nodiscard]] inline std::string_view version() noexcept { return tf_version(); }

/** The `TF_VERSION_*` macros of the header the program was compiled with, `"MAJOR.MINOR.PATCH"`. */
[[nodiscard]] inline std::string header_version() {
    return std::to_string(TF_VERSION_MAJOR) + "." + std::to_string(TF_VERSION_MINOR) + "." +
           std::to_string(TF_VERSION_PATCH);
}

/** See tf_status_name. */
[[nodiscard]] inline std::string_view status_name(Status status) noexcept {
    return tf_status_name(static_cast<int>(status));
}

/** See tf_last_error; a copy. Error::what() already holds it. */
[[nodiscard]] inline std::string last_error() {
    const char *message = tf_last_error();
    return message != nullptr ? std::string(message) : std::string();
}

/** See tf_last_http_status. Error::http_status() already holds it. */
[[nodiscard]] inline int last_http_status() noexcept { return tf_last_http_status(); }

namespace detail {

/**
 * The members of a run, shared by TaskFarm (owning) and TaskFarmRef
 * (borrowed). `Self::get()` gives the `tf_taskfarm*`.
 */
template <class Self>
class TaskFarmMethods {
public:
    /** See tf_taskfarm_uuid; a copy. */
    [[nodiscard]] std::string uuid() const { return std::string(tf_taskfarm_uuid(handle())); }

    /** See tf_taskfarm_num_tasks. */
    [[nodiscard]] std::int64_t num_tasks() const { return tf_taskfarm_num_tasks(handle()); }

    /** See tf_taskfarm_percent_done. */
    [[nodiscard]] double percent_done() const {
        double percent = 0.0;
        check(tf_taskfarm_percent_done(handle(), &percent));
        return percent;
    }

    /** See tf_taskfarm_num_done. */
    [[nodiscard]] std::int64_t num_done() const {
        std::int64_t count = 0;
        check(tf_taskfarm_num_done(handle(), &count));
        return count;
    }

    /** See tf_taskfarm_num_waiting. */
    [[nodiscard]] std::int64_t num_waiting() const {
        std::int64_t count = 0;
        check(tf_taskfarm_num_waiting(handle(), &count));
        return count;
    }

    /** See tf_taskfarm_num_computing. */
    [[nodiscard]] std::int64_t num_computing() const {
        std::int64_t count = 0;
        check(tf_taskfarm_num_computing(handle(), &count));
        return count;
    }

    /** See tf_taskfarm_status. */
    [[nodiscard]] RunStatus status() const {
        RunStatus result{};
        check(tf_taskfarm_status(handle(), &result));
        return result;
    }

    /** See tf_taskfarm_info; `key` `""` (the default) stands for NULL; the JSON text copied. */
    [[nodiscard]] std::string info(std::string_view key = "") const {
        const std::string c_key = c_string(key);
        char *json = nullptr;
        check(tf_taskfarm_info(handle(), c_key.c_str(), &json));
        return take_string(json);
    }

    /** See tf_taskfarm_get_task_info; `key` `""` (the default) stands for NULL; the JSON text copied. */
    [[nodiscard]] std::string get_task_info(std::int64_t task, std::string_view key = "") const {
        const std::string c_key = c_string(key);
        char *json = nullptr;
        check(tf_taskfarm_get_task_info(handle(), task, c_key.c_str(), &json));
        return take_string(json);
    }

    /** See tf_taskfarm_set_task_info. */
    void set_task_info(std::int64_t task, std::string_view key, std::string_view json_value) const {
        const std::string c_key = c_string(key);
        const std::string c_value = c_string(json_value);
        check(tf_taskfarm_set_task_info(handle(), task, c_key.c_str(), c_value.c_str()));
    }

    /** See tf_taskfarm_task_percent_completed. */
    [[nodiscard]] double task_percent_completed(std::int64_t task) const {
        double percent = 0.0;
        check(tf_taskfarm_task_percent_completed(handle(), task, &percent));
        return percent;
    }

    /** See tf_taskfarm_task_state. */
    [[nodiscard]] TaskState task_state(std::int64_t task) const {
        TaskState result = TF_TASK_WAITING;
        check(tf_taskfarm_task_state(handle(), task, &result));
        return result;
    }

    /** See tf_taskfarm_set_task_percent_completed. */
    void set_task_percent_completed(std::int64_t task, double percent) const {
        check(tf_taskfarm_set_task_percent_completed(handle(), task, percent));
    }

    /** See tf_taskfarm_set_task_state; `state` is a TaskState where C takes an `int`. */
    void set_task_state(std::int64_t task, TaskState state) const {
        check(tf_taskfarm_set_task_state(handle(), task, static_cast<int>(state)));
    }

    /** See tf_taskfarm_restart; `everything` defaults to false. */
    void restart(bool everything = false) const {
        check(tf_taskfarm_restart(handle(), everything));
    }

    /** See tf_taskfarm_delete (named remove: `delete` is a C++ keyword). */
    void remove() const { check(tf_taskfarm_delete(handle())); }

    /** See tf_taskfarm_url; the URL copied. */
    [[nodiscard]] std::string url(std::string_view endpoint) const {
        const std::string c_endpoint = c_string(endpoint);
        char *full = nullptr;
        check(tf_taskfarm_url(handle(), c_endpoint.c_str(), &full));
        return take_string(full);
    }

    /** See tf_taskfarm_token; a copy (still a secret). */
    [[nodiscard]] std::string token() const {
        const char *secret = tf_taskfarm_token(handle());
        return secret != nullptr ? std::string(secret) : std::string();
    }

    /** See tf_taskfarm_set_timeout. */
    void set_timeout(double seconds) const { check(tf_taskfarm_set_timeout(handle(), seconds)); }

    /** See tf_taskfarm_set_retries. */
    void set_retries(std::uint32_t retries) const {
        check(tf_taskfarm_set_retries(handle(), retries));
    }

protected:
    /** Only as a base of TaskFarm and TaskFarmRef. */
    TaskFarmMethods() noexcept = default;
    /** Not virtual: never deleted through the base. */
    ~TaskFarmMethods() = default;
    /** Stateless: copying copies nothing. */
    TaskFarmMethods(const TaskFarmMethods &) noexcept = default;
    /** Stateless: copying copies nothing. */
    TaskFarmMethods &operator=(const TaskFarmMethods &) noexcept = default;

private:
    /** The handle; throws Error on an empty (moved-from) object. */
    const tf_taskfarm *handle() const {
        const tf_taskfarm *taskfarm = static_cast<const Self &>(*this).get();
        if (taskfarm == nullptr) {
            invalid_argument("use of an empty (moved-from) TaskFarm");
        }
        return taskfarm;
    }
};

}  // namespace detail

/**
 * A borrowed run: the members of TaskFarm over a `tf_taskfarm*` that it
 * never frees. Worker::taskfarm() gives one (valid while the worker lives),
 * TaskFarm converts to one (valid while the TaskFarm lives). Copyable;
 * take it by value in functions that accept both.
 */
class TaskFarmRef : public detail::TaskFarmMethods<TaskFarmRef> {
public:
    /** A view of `taskfarm`, which must outlive it and is never freed by it. */
    explicit TaskFarmRef(tf_taskfarm *taskfarm) noexcept : taskfarm_(taskfarm) {}

    /** The C handle (borrowed). */
    [[nodiscard]] tf_taskfarm *get() const noexcept { return taskfarm_; }

    /** Whether it refers to a run. */
    explicit operator bool() const noexcept { return taskfarm_ != nullptr; }

private:
    tf_taskfarm *taskfarm_;
};

/**
 * A tf_taskfarm created or opened by this process (the Python `TaskFarm`),
 * owned: the destructor calls tf_taskfarm_free. Move-only; a moved-from
 * TaskFarm is empty: safe to destroy or assign to, and its members throw
 * Error.
 */
class TaskFarm : public detail::TaskFarmMethods<TaskFarm> {
public:
    /** See tf_taskfarm_create. `user`, `password`, `url`: see OptionalString. */
    [[nodiscard]] static TaskFarm create(const OptionalString &user, const OptionalString &password,
                                         const OptionalString &url, std::int64_t num_tasks) {
        tf_taskfarm *taskfarm = nullptr;
        detail::check(
            tf_taskfarm_create(user.c_str(), password.c_str(), url.c_str(), num_tasks, &taskfarm));
        return TaskFarm(taskfarm);
    }

    /** tf_taskfarm_create with NULL credentials and URL. */
    [[nodiscard]] static TaskFarm create(std::int64_t num_tasks) {
        return create(from_env, from_env, from_env, num_tasks);
    }

    /** See tf_taskfarm_open. `user`, `password`, `url`: see OptionalString. */
    [[nodiscard]] static TaskFarm open(const OptionalString &user, const OptionalString &password,
                                       const OptionalString &url, std::string_view uuid) {
        const std::string c_uuid = detail::c_string(uuid);
        tf_taskfarm *taskfarm = nullptr;
        detail::check(
            tf_taskfarm_open(user.c_str(), password.c_str(), url.c_str(), c_uuid.c_str(), &taskfarm));
        return TaskFarm(taskfarm);
    }

    /** tf_taskfarm_open with NULL credentials and URL. */
    [[nodiscard]] static TaskFarm open(std::string_view uuid) {
        return open(from_env, from_env, from_env, uuid);
    }

    /** See tf_taskfarm_open_with_token. `token`, `url`: see OptionalString. */
    [[nodiscard]] static TaskFarm open_with_token(const OptionalString &token,
                                                  const OptionalString &url, std::string_view uuid) {
        const std::string c_uuid = detail::c_string(uuid);
        tf_taskfarm *taskfarm = nullptr;
        detail::check(
            tf_taskfarm_open_with_token(token.c_str(), url.c_str(), c_uuid.c_str(), &taskfarm));
        return TaskFarm(taskfarm);
    }

    /**
     * Takes ownership of `taskfarm`, a handle from tf_taskfarm_create or
     * tf_taskfarm_open (never the one tf_worker_taskfarm lends).
     */
    [[nodiscard]] static TaskFarm adopt(tf_taskfarm *taskfarm) noexcept { return TaskFarm(taskfarm); }

    /** An empty TaskFarm (as if moved from). */
    TaskFarm() noexcept = default;
    /** Moves the run out of `other`, which becomes empty. */
    TaskFarm(TaskFarm &&other) noexcept = default;
    /** Frees the handle held, then moves the run out of `other`, which becomes empty. */
    TaskFarm &operator=(TaskFarm &&other) noexcept = default;
    /** Not copyable: one owner per handle. */
    TaskFarm(const TaskFarm &) = delete;
    /** Not copyable: one owner per handle. */
    TaskFarm &operator=(const TaskFarm &) = delete;
    /** Frees the handle held (tf_taskfarm_free). */
    ~TaskFarm() = default;

    /** The C handle, still owned by this object; NULL when empty. */
    [[nodiscard]] tf_taskfarm *get() const noexcept { return taskfarm_.get(); }

    /** Gives up ownership: the caller frees the returned handle with tf_taskfarm_free. */
    [[nodiscard]] tf_taskfarm *release() noexcept { return taskfarm_.release(); }

    /**
     * A borrowed view of this run, valid while this object lives and is not
     * moved from. Not on a temporary TaskFarm (the view would dangle).
     */
    [[nodiscard]] TaskFarmRef ref() const & noexcept { return TaskFarmRef(taskfarm_.get()); }
    /** Deleted: a view of a temporary TaskFarm would dangle. */
    TaskFarmRef ref() const && = delete;

    /** A borrowed view of this run (see ref()). */
    operator TaskFarmRef() const & noexcept { return ref(); }
    /** Deleted: a view of a temporary TaskFarm would dangle. */
    operator TaskFarmRef() const && = delete;

    /** Whether it holds a run (false when moved from). */
    explicit operator bool() const noexcept { return taskfarm_ != nullptr; }

private:
    explicit TaskFarm(tf_taskfarm *taskfarm) noexcept : taskfarm_(taskfarm) {}

    std::unique_ptr<tf_taskfarm, detail::TaskFarmFree> taskfarm_{};
};

class Worker;

/**
 * The tasks of a worker, for a range-for (Worker::tasks(), the Python
 * `tasks`): every step calls Worker::task() (tf_worker_task), and the loop
 * ends where that gives `std::nullopt` (Worker::stopped() tells why);
 * failures throw Error.
 */
class TaskRange {
public:
    /** An input iterator over the worker's tasks; each increment asks the worker for its task. */
    class iterator {
    public:
        /** Input iterator. */
        using iterator_category = std::input_iterator_tag;
        /** Task numbers. */
        using value_type = std::int64_t;
        /** Distance type (not meaningful for this iterator). */
        using difference_type = std::ptrdiff_t;
        /** No pointer access: the task comes by value. */
        using pointer = void;
        /** The task comes by value. */
        using reference = std::int64_t;

        /** The end iterator. */
        iterator() noexcept = default;

        /** The current task. */
        [[nodiscard]] std::int64_t operator*() const noexcept { return *task_; }

        /** Asks the worker for its task: the one held, a new one, or the end. */
        iterator &operator++();

        /** Asks the worker for its task; returns the iterator as it was before. */
        iterator operator++(int) {
            iterator before = *this;
            ++*this;
            return before;
        }

        /** Whether both are the end, or the same task of the same worker. */
        friend bool operator==(const iterator &a, const iterator &b) noexcept {
            if (!a.task_ || !b.task_) {
                return !a.task_ && !b.task_;
            }
            return a.worker_ == b.worker_ && *a.task_ == *b.task_;
        }

        /** Negation of ==. */
        friend bool operator!=(const iterator &a, const iterator &b) noexcept { return !(a == b); }

    private:
        friend class TaskRange;
        explicit iterator(Worker *worker) : worker_(worker) { ++*this; }

        Worker *worker_ = nullptr;
        std::optional<std::int64_t> task_{};
    };

    /** Asks the worker for its task (one request unless a task is held). */
    [[nodiscard]] iterator begin() const { return iterator(worker_); }

    /** The end. */
    [[nodiscard]] iterator end() const noexcept { return iterator(); }

private:
    friend class Worker;
    explicit TaskRange(Worker *worker) noexcept : worker_(worker) {}

    Worker *worker_;
};

/**
 * A tf_worker (the Python `TaskFarmWorker`), owned: the destructor calls
 * tf_worker_free. Move-only; a moved-from Worker is empty: safe to destroy
 * or assign to, and its members throw Error.
 */
class Worker {
public:
    /** See tf_worker_new. `user`, `password`, `url`: see OptionalString. */
    Worker(const OptionalString &user, const OptionalString &password, const OptionalString &url,
           std::string_view uuid) {
        const std::string c_uuid = detail::c_string(uuid);
        tf_worker *worker = nullptr;
        detail::check(
            tf_worker_new(user.c_str(), password.c_str(), url.c_str(), c_uuid.c_str(), &worker));
        worker_.reset(worker);
    }

    /** tf_worker_new with NULL credentials and URL. */
    explicit Worker(std::string_view uuid) : Worker(from_env, from_env, from_env, uuid) {}

    /**
     * See tf_worker_new_with_token. `token`, `url`: see OptionalString. The
     * token to broadcast: `TaskFarm::token()` or `worker.taskfarm().token()`.
     */
    [[nodiscard]] static Worker with_token(const OptionalString &token, const OptionalString &url,
                                           std::string_view uuid) {
        const std::string c_uuid = detail::c_string(uuid);
        tf_worker *worker = nullptr;
        detail::check(tf_worker_new_with_token(token.c_str(), url.c_str(), c_uuid.c_str(), &worker));
        return adopt(worker);
    }

    /** Takes ownership of `worker`, a handle from tf_worker_new. */
    [[nodiscard]] static Worker adopt(tf_worker *worker) noexcept {
        Worker adopted;
        adopted.worker_.reset(worker);
        return adopted;
    }

    /** An empty Worker (as if moved from). */
    Worker() noexcept = default;
    /** Moves the worker out of `other`, which becomes empty. */
    Worker(Worker &&other) noexcept = default;
    /** Frees the worker held, then moves the worker out of `other`, which becomes empty. */
    Worker &operator=(Worker &&other) noexcept = default;
    /** Not copyable: one owner per handle. */
    Worker(const Worker &) = delete;
    /** Not copyable: one owner per handle. */
    Worker &operator=(const Worker &) = delete;
    /** Frees the worker held (tf_worker_free). */
    ~Worker() = default;

    /** See tf_worker_uuid; a copy. */
    [[nodiscard]] std::string uuid() const { return std::string(tf_worker_uuid(handle())); }

    /**
     * See tf_worker_taskfarm: a TaskFarmRef with every TaskFarm member,
     * valid while this Worker lives and is not moved from. Not on a
     * temporary Worker (the view would dangle).
     */
    [[nodiscard]] TaskFarmRef taskfarm() const & { return TaskFarmRef(tf_worker_taskfarm(handle())); }
    /** Deleted: the run of a temporary Worker would dangle. */
    TaskFarmRef taskfarm() const && = delete;

    /**
     * See tf_worker_task; `std::nullopt`, without throwing, on
     * `TF_NO_MORE_TASKS` and on `TF_STOPPED` (stopped() tells which).
     */
    [[nodiscard]] std::optional<std::int64_t> task() {
        std::int64_t held = -1;
        const Status result = tf_worker_task(handle(), &held);
        stopped_ = result == TF_STOPPED;
        if (result == TF_NO_MORE_TASKS || result == TF_STOPPED) {
            return std::nullopt;
        }
        detail::check(result);
        return held;
    }

    /**
     * Whether the last task() gave `std::nullopt` for `TF_STOPPED` rather than
     * `TF_NO_MORE_TASKS`: after a range-for, tells a stopped worker from a
     * finished one. No C call.
     */
    [[nodiscard]] bool stopped() const noexcept { return stopped_; }

    /** See tf_worker_held_percent; `std::nullopt` on `TF_NO_MORE_TASKS`. */
    [[nodiscard]] std::optional<double> held_percent() const {
        double percent = 0.0;
        const Status result = tf_worker_held_percent(handle(), &percent);
        if (result == TF_NO_MORE_TASKS) {
            return std::nullopt;
        }
        detail::check(result);
        return percent;
    }

    /** See tf_worker_set_deadline; `task_seconds` defaults to 0. */
    void set_deadline(double unix_time, double task_seconds = 0.0) {
        detail::check(tf_worker_set_deadline(handle(), unix_time, task_seconds));
    }

    /**
     * The tasks, for `for (std::int64_t t : worker.tasks()) { ...; worker.done(); }`
     * (the Python `tasks`): each step calls task() (see TaskRange). Not on a
     * temporary Worker (it would dangle).
     */
    [[nodiscard]] TaskRange tasks() & noexcept { return TaskRange(this); }
    /** Deleted: the tasks of a temporary Worker would dangle. */
    TaskRange tasks() && = delete;

    /** See tf_worker_update; true on `TF_OK`, false, without throwing, on `TF_STOPPED`. */
    bool update(double percentage) {
        const Status result = tf_worker_update(handle(), percentage);
        if (result == TF_STOPPED) {
            return false;
        }
        detail::check(result);
        return true;
    }

    /** See tf_worker_set_update_interval. */
    void set_update_interval(double seconds) {
        detail::check(tf_worker_set_update_interval(handle(), seconds));
    }

    /** See tf_worker_flush (the destructor is tf_worker_free). */
    void flush() { detail::check(tf_worker_flush(handle())); }

    /**
     * See tf_worker_done; true when the task was marked done, false, without
     * throwing, on `TF_NOT_DONE` (released below 100 %).
     */
    bool done() {
        const Status result = tf_worker_done(handle());
        if (result == TF_NOT_DONE) {
            return false;
        }
        detail::check(result);
        return true;
    }

    /** See tf_worker_fail. */
    void fail(const std::string &message) { detail::check(tf_worker_fail(handle(), message.c_str())); }

    /** See tf_worker_attempt; `std::nullopt` on `TF_NO_MORE_TASKS`. */
    [[nodiscard]] std::optional<std::int64_t> attempt() const {
        std::int64_t n = 0;
        const Status result = tf_worker_attempt(handle(), &n);
        if (result == TF_NO_MORE_TASKS) {
            return std::nullopt;
        }
        detail::check(result);
        return n;
    }

    /** See tf_worker_requeue. */
    void requeue() { detail::check(tf_worker_requeue(handle())); }

    /** See tf_worker_set_journal; from_env stands for NULL. */
    void set_journal(const OptionalString &dir) {
        detail::check(tf_worker_set_journal(handle(), dir.c_str()));
    }

    /** The C handle, still owned by this object; NULL when empty. */
    [[nodiscard]] tf_worker *get() const noexcept { return worker_.get(); }

    /** Gives up ownership: the caller frees the returned handle with tf_worker_free. */
    [[nodiscard]] tf_worker *release() noexcept { return worker_.release(); }

    /** Whether it holds a worker (false when moved from). */
    explicit operator bool() const noexcept { return worker_ != nullptr; }

private:
    /** The handle; throws Error on an empty (moved-from) object. */
    tf_worker *handle() const {
        if (!worker_) {
            detail::invalid_argument("use of an empty (moved-from) Worker");
        }
        return worker_.get();
    }

    std::unique_ptr<tf_worker, detail::WorkerFree> worker_{};
    bool stopped_ = false;
};

inline TaskRange::iterator &TaskRange::iterator::operator++() {
    task_ = worker_->task();
    return *this;
}

/** What the library does on a stop signal (`TF_STOP_EXIT`, `TF_STOP_CONTINUE`). */
using StopMode = tf_stop_mode;

/**
 * See tf_stop_on_signals; an empty `signals` (the default) stands for NULL,
 * `mode` defaults to `TF_STOP_EXIT`.
 */
inline void stop_on_signals(const std::vector<int> &signals = {},
                            StopMode mode = TF_STOP_EXIT) {
    detail::check(tf_stop_on_signals(signals.empty() ? nullptr : signals.data(), signals.size(),
                                     static_cast<int>(mode)));
}

/** See tf_stop_requested. */
[[nodiscard]] inline int stop_requested() noexcept { return tf_stop_requested(); }

/** One run on the server, as listed by runs(). */
struct RunInfo {
    /** The database id of the run. */
    std::int64_t id;
    /** The run's UUID. */
    std::string uuid;
    /** The run's number of tasks. */
    std::int64_t num_tasks;
};

/**
 * A tf_run_list as tf_runs gives it, owned (the destructor calls
 * tf_run_list_free); runs() copies it into a vector. Move-only.
 */
class RunList {
public:
    /** See tf_runs. `user`, `password`, `url`: see OptionalString. */
    [[nodiscard]] static RunList fetch(const OptionalString &user = from_env,
                                       const OptionalString &password = from_env,
                                       const OptionalString &url = from_env) {
        tf_run_list *list = nullptr;
        detail::check(tf_runs(user.c_str(), password.c_str(), url.c_str(), &list));
        RunList fetched;
        fetched.list_.reset(list);
        return fetched;
    }

    /** An empty list. */
    RunList() noexcept = default;

    /** See tf_run_list_len. */
    [[nodiscard]] std::size_t size() const noexcept { return tf_run_list_len(list_.get()); }

    /** See tf_run_list_id; an `index` past the end throws Error instead. */
    [[nodiscard]] std::int64_t id(std::size_t index) const {
        check_index(index);
        return tf_run_list_id(list_.get(), index);
    }

    /** See tf_run_list_uuid; a copy; an `index` past the end throws Error instead. */
    [[nodiscard]] std::string uuid(std::size_t index) const {
        check_index(index);
        return std::string(tf_run_list_uuid(list_.get(), index));
    }

    /** See tf_run_list_num_tasks; an `index` past the end throws Error instead. */
    [[nodiscard]] std::int64_t num_tasks(std::size_t index) const {
        check_index(index);
        return tf_run_list_num_tasks(list_.get(), index);
    }

    /** Run `index`; Error when `index` >= size(). */
    [[nodiscard]] RunInfo at(std::size_t index) const {
        return RunInfo{id(index), uuid(index), num_tasks(index)};
    }

    /** Every run, copied. */
    [[nodiscard]] std::vector<RunInfo> to_vector() const {
        std::vector<RunInfo> runs;
        runs.reserve(size());
        for (std::size_t i = 0; i < size(); ++i) {
            runs.push_back(at(i));
        }
        return runs;
    }

    /** The C list, still owned by this object; NULL when empty. */
    [[nodiscard]] const tf_run_list *get() const noexcept { return list_.get(); }

private:
    void check_index(std::size_t index) const {
        if (index >= size()) {
            detail::invalid_argument("run index " + std::to_string(index) + " past the end of a list of " +
                                     std::to_string(size()));
        }
    }

    std::unique_ptr<tf_run_list, detail::RunListFree> list_{};
};

/**
 * tf_runs, the list copied into a vector (RunList::fetch). `user`,
 * `password`, `url`: see OptionalString; from_env by default.
 */
[[nodiscard]] inline std::vector<RunInfo> runs(const OptionalString &user = from_env,
                                               const OptionalString &password = from_env,
                                               const OptionalString &url = from_env) {
    return RunList::fetch(user, password, url).to_vector();
}

/**
 * See tf_runs_json; the JSON text copied. `user`, `password`, `url`: see
 * OptionalString; from_env by default.
 */
[[nodiscard]] inline std::string runs_json(const OptionalString &user = from_env,
                                           const OptionalString &password = from_env,
                                           const OptionalString &url = from_env) {
    char *json = nullptr;
    detail::check(tf_runs_json(user.c_str(), password.c_str(), url.c_str(), &json));
    return detail::take_string(json);
}

}  // namespace taskfarm

#endif  // TASKFARM_WORKER_HPP
