!> Fortran bindings of libtaskfarm_worker, the worker client of the taskfarm
!> server (C header: include/taskfarm_worker.h). Fortran 2008, iso_c_binding.
!>
!> Two layers, as in netcdf-fortran and json-fortran:
!>  - private bind(c) interfaces, one per C function (named c_<C name>);
!>  - public derived types `tf_taskfarm` and `tf_worker` whose type-bound
!>    procedures are named as in C without the prefix, plus module
!>    procedures (`tf_runs`, `tf_last_error`, ...).
!>
!> One source of truth: the comment of each procedure names the C function it
!> calls ("See tf_worker_update."), whose comment in the C header gives the
!> semantics, the ranges and the defaults; here only what differs in Fortran
!> is said.
!>
!> Conventions (those of the C library, in Fortran terms):
!>  - Every fallible procedure is an integer function returning a status:
!>    TF_OK (0), TF_NO_MORE_TASKS, or a TF_ERR_* error; `tf_last_error()`
!>    says what went wrong on the calling thread.
!>  - Arguments keep the C order: `stat = tf%create(user, password, url, n)`.
!>    `user`, `password` and `url` are OPTIONAL: an absent one is passed as
!>    C NULL (the C function says what NULL means). Leave them out with
!>    keywords: `stat = tf%create(num_tasks=8_int64)`,
!>    `stat = w%new(uuid=run_uuid)`. A blank string is not absent.
!>  - character(*) arguments are passed without their trailing blanks, so
!>    fixed-length variables work as they are.
!>  - Outputs (the intent(inout) arguments) are written only on TF_OK, as in
!>    C: on failure they keep their value (an allocatable stays as it was).
!>  - Strings come back as character(:), allocatable copies; the library's
!>    own strings are freed inside the module, never by the caller.
!>  - Task numbers and counts are integer(int64), percentages real(real64).
!>  - Call a status function in a statement of its own (`stat = w%done()`):
!>    in `a .and. w%done() == TF_OK` Fortran may skip the call.
!>  - The C run list (tf_run_list_*) arrives as an array of tf_run_info from
!>    `tf_runs`; tf_string_free is called inside the module.
!>
!> Handles: `call tf%free()` / `call w%free()` release them (and make the
!> variable empty, so a second free does nothing); a `final` procedure frees
!> them when a variable goes out of scope or is deallocated. `w%taskfarm()`
!> lends the worker's run, valid while the worker lives: its `free` only
!> empties the view. An assignment `b = a` (also of arrays) makes `b` such a
!> borrowed view of `a`'s handle (only `a` frees it): hand handles to
!> procedures as arguments rather than returning them from functions.
!>
!> Threads: the rules of the C handles (a tf_taskfarm variable is a C
!> tf_taskfarm, a tf_worker variable a C tf_worker).
module taskfarm_worker
   use, intrinsic :: iso_c_binding, only: c_associated, c_bool, c_char, &
      c_double, c_f_pointer, c_int, c_int32_t, c_int64_t, c_loc, &
      c_null_char, c_null_ptr, c_ptr, c_size_t
   use, intrinsic :: iso_fortran_env, only: int64, real64
   implicit none
   private

   ! ------------------------------------------------------------------
   ! Public constants: the numbers of the C enums (part of the ABI).

   !> Status codes (`tf_status`).
   integer, parameter, public :: TF_OK = 0
   integer, parameter, public :: TF_NO_MORE_TASKS = 1
   integer, parameter, public :: TF_ERR_INVALID_ARGUMENT = 2
   integer, parameter, public :: TF_ERR_CONNECTION = 3
   integer, parameter, public :: TF_ERR_AUTH = 4
   integer, parameter, public :: TF_ERR_NOT_FOUND = 5
   integer, parameter, public :: TF_ERR_HTTP = 6
   integer, parameter, public :: TF_ERR_PROTOCOL = 7
   integer, parameter, public :: TF_ERR_INTERNAL = 8
   integer, parameter, public :: TF_STOPPED = 9
   integer, parameter, public :: TF_NOT_DONE = 10

   !> Stop modes (`tf_stop_mode`), for `tf_stop_on_signals`.
   integer, parameter, public :: TF_STOP_EXIT = 0
   integer, parameter, public :: TF_STOP_CONTINUE = 1

   !> Task states (`tf_task_state`).
   integer, parameter, public :: TF_TASK_WAITING = 0
   integer, parameter, public :: TF_TASK_COMPUTING = 1
   integer, parameter, public :: TF_TASK_DONE = 2

   !> The version of the C header these bindings follow; compare with
   !> tf_version() at run time.
   integer, parameter, public :: TF_VERSION_MAJOR = 0
   integer, parameter, public :: TF_VERSION_MINOR = 1
   integer, parameter, public :: TF_VERSION_PATCH = 0

   ! ------------------------------------------------------------------
   ! Public types.

   !> See tf_run_status (`stat = tf%status(st)`): the same layout.
   type, bind(c), public :: tf_run_status
      integer(c_int64_t) :: num_tasks = 0
      integer(c_int64_t) :: num_waiting = 0
      integer(c_int64_t) :: num_computing = 0
      integer(c_int64_t) :: num_done = 0
      real(c_double) :: percent_done = 0
   end type tf_run_status

   !> One run of the server's run list (`tf_runs`).
   type, public :: tf_run_info
      integer(int64) :: id = -1
      character(:), allocatable :: uuid
      integer(int64) :: num_tasks = -1
   end type tf_run_info

   !> A C tf_taskfarm (the Python `TaskFarm`).
   type, public :: tf_taskfarm
      private
      type(c_ptr) :: handle = c_null_ptr
      !> .false. for an empty variable and for a borrowed view.
      logical :: owned = .false.
   contains
      procedure :: create => taskfarm_create
      procedure :: open => taskfarm_open
      procedure :: open_with_token => taskfarm_open_with_token
      procedure :: uuid => taskfarm_uuid
      procedure :: num_tasks => taskfarm_num_tasks
      procedure :: percent_done => taskfarm_percent_done
      procedure :: num_done => taskfarm_num_done
      procedure :: num_waiting => taskfarm_num_waiting
      procedure :: num_computing => taskfarm_num_computing
      procedure :: status => taskfarm_status
      procedure :: info => taskfarm_info
      procedure :: get_task_info => taskfarm_get_task_info
      procedure :: set_task_info => taskfarm_set_task_info
      procedure :: task_percent_completed => taskfarm_task_percent_completed
      procedure :: task_state => taskfarm_task_state
      procedure :: set_task_percent_completed => taskfarm_set_task_percent_completed
      procedure :: set_task_state => taskfarm_set_task_state
      procedure :: restart => taskfarm_restart
      procedure :: delete => taskfarm_delete
      procedure :: url => taskfarm_url
      procedure :: token => taskfarm_token
      procedure :: set_timeout => taskfarm_set_timeout
      procedure :: set_retries => taskfarm_set_retries
      procedure :: free => taskfarm_free
      procedure, private :: taskfarm_assign
      generic :: assignment(=) => taskfarm_assign
      final :: taskfarm_final
   end type tf_taskfarm

   !> A C tf_worker (the Python `TaskFarmWorker`).
   type, public :: tf_worker
      private
      type(c_ptr) :: handle = c_null_ptr
      logical :: owned = .false.
   contains
      procedure :: new => worker_new
      procedure :: new_with_token => worker_new_with_token
      procedure :: uuid => worker_uuid
      procedure :: taskfarm => worker_taskfarm
      procedure :: task => worker_task
      procedure :: update => worker_update
      procedure :: done => worker_done
      procedure :: requeue => worker_requeue
      procedure :: fail => worker_fail
      procedure :: attempt => worker_attempt
      procedure :: held_percent => worker_held_percent
      procedure :: set_deadline => worker_set_deadline
      procedure :: set_journal => worker_set_journal
      procedure :: set_update_interval => worker_set_update_interval
      procedure :: flush => worker_flush
      procedure :: free => worker_free
      procedure, private :: worker_assign
      generic :: assignment(=) => worker_assign
      final :: worker_final
   end type tf_worker

   public :: tf_runs, tf_runs_json
   public :: tf_last_error, tf_last_http_status, tf_status_name, tf_version
   public :: tf_stop_on_signals, tf_stop_requested

   ! ------------------------------------------------------------------
   ! The C functions, one interface each (private). Out-arguments are
   ! intent(inout): the library writes them only on TF_OK.

   interface
      function c_tf_last_error() bind(c, name='tf_last_error')
         import :: c_ptr
         type(c_ptr) :: c_tf_last_error
      end function c_tf_last_error

      function c_tf_last_http_status() bind(c, name='tf_last_http_status')
         import :: c_int
         integer(c_int) :: c_tf_last_http_status
      end function c_tf_last_http_status

      function c_tf_runs(username, password, url_base, out_list) &
         bind(c, name='tf_runs')
         import :: c_int, c_ptr
         type(c_ptr), value :: username, password, url_base
         type(c_ptr), intent(inout) :: out_list
         integer(c_int) :: c_tf_runs
      end function c_tf_runs

      function c_tf_runs_json(username, password, url_base, out_json) &
         bind(c, name='tf_runs_json')
         import :: c_int, c_ptr
         type(c_ptr), value :: username, password, url_base
         type(c_ptr), intent(inout) :: out_json
         integer(c_int) :: c_tf_runs_json
      end function c_tf_runs_json

      function c_tf_run_list_len(list) bind(c, name='tf_run_list_len')
         import :: c_ptr, c_size_t
         type(c_ptr), value :: list
         integer(c_size_t) :: c_tf_run_list_len
      end function c_tf_run_list_len

      function c_tf_run_list_id(list, index) bind(c, name='tf_run_list_id')
         import :: c_int64_t, c_ptr, c_size_t
         type(c_ptr), value :: list
         integer(c_size_t), value :: index
         integer(c_int64_t) :: c_tf_run_list_id
      end function c_tf_run_list_id

      function c_tf_run_list_uuid(list, index) bind(c, name='tf_run_list_uuid')
         import :: c_ptr, c_size_t
         type(c_ptr), value :: list
         integer(c_size_t), value :: index
         type(c_ptr) :: c_tf_run_list_uuid
      end function c_tf_run_list_uuid

      function c_tf_run_list_num_tasks(list, index) &
         bind(c, name='tf_run_list_num_tasks')
         import :: c_int64_t, c_ptr, c_size_t
         type(c_ptr), value :: list
         integer(c_size_t), value :: index
         integer(c_int64_t) :: c_tf_run_list_num_tasks
      end function c_tf_run_list_num_tasks

      subroutine c_tf_run_list_free(list) bind(c, name='tf_run_list_free')
         import :: c_ptr
         type(c_ptr), value :: list
      end subroutine c_tf_run_list_free

      function c_tf_status_name(status) bind(c, name='tf_status_name')
         import :: c_int, c_ptr
         integer(c_int), value :: status
         type(c_ptr) :: c_tf_status_name
      end function c_tf_status_name

      subroutine c_tf_string_free(string) bind(c, name='tf_string_free')
         import :: c_ptr
         type(c_ptr), value :: string
      end subroutine c_tf_string_free

      function c_tf_taskfarm_create(username, password, url_base, num_tasks, &
                                    out_taskfarm) bind(c, name='tf_taskfarm_create')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: username, password, url_base
         integer(c_int64_t), value :: num_tasks
         type(c_ptr), intent(inout) :: out_taskfarm
         integer(c_int) :: c_tf_taskfarm_create
      end function c_tf_taskfarm_create

      function c_tf_taskfarm_open(username, password, url_base, uuid, &
                                  out_taskfarm) bind(c, name='tf_taskfarm_open')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: username, password, url_base
         character(kind=c_char), intent(in) :: uuid(*)
         type(c_ptr), intent(inout) :: out_taskfarm
         integer(c_int) :: c_tf_taskfarm_open
      end function c_tf_taskfarm_open

      function c_tf_taskfarm_open_with_token(token, url_base, uuid, out_taskfarm) &
         bind(c, name='tf_taskfarm_open_with_token')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: token, url_base
         character(kind=c_char), intent(in) :: uuid(*)
         type(c_ptr), intent(inout) :: out_taskfarm
         integer(c_int) :: c_tf_taskfarm_open_with_token
      end function c_tf_taskfarm_open_with_token

      subroutine c_tf_taskfarm_free(taskfarm) bind(c, name='tf_taskfarm_free')
         import :: c_ptr
         type(c_ptr), value :: taskfarm
      end subroutine c_tf_taskfarm_free

      function c_tf_taskfarm_uuid(taskfarm) bind(c, name='tf_taskfarm_uuid')
         import :: c_ptr
         type(c_ptr), value :: taskfarm
         type(c_ptr) :: c_tf_taskfarm_uuid
      end function c_tf_taskfarm_uuid

      function c_tf_taskfarm_num_tasks(taskfarm) bind(c, name='tf_taskfarm_num_tasks')
         import :: c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t) :: c_tf_taskfarm_num_tasks
      end function c_tf_taskfarm_num_tasks

      function c_tf_taskfarm_percent_done(taskfarm, out_percent) &
         bind(c, name='tf_taskfarm_percent_done')
         import :: c_double, c_int, c_ptr
         type(c_ptr), value :: taskfarm
         real(c_double), intent(inout) :: out_percent
         integer(c_int) :: c_tf_taskfarm_percent_done
      end function c_tf_taskfarm_percent_done

      function c_tf_taskfarm_num_done(taskfarm, out_count) &
         bind(c, name='tf_taskfarm_num_done')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), intent(inout) :: out_count
         integer(c_int) :: c_tf_taskfarm_num_done
      end function c_tf_taskfarm_num_done

      function c_tf_taskfarm_num_waiting(taskfarm, out_count) &
         bind(c, name='tf_taskfarm_num_waiting')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), intent(inout) :: out_count
         integer(c_int) :: c_tf_taskfarm_num_waiting
      end function c_tf_taskfarm_num_waiting

      function c_tf_taskfarm_num_computing(taskfarm, out_count) &
         bind(c, name='tf_taskfarm_num_computing')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), intent(inout) :: out_count
         integer(c_int) :: c_tf_taskfarm_num_computing
      end function c_tf_taskfarm_num_computing

      function c_tf_taskfarm_status(taskfarm, out_status) &
         bind(c, name='tf_taskfarm_status')
         import :: c_int, c_ptr, tf_run_status
         type(c_ptr), value :: taskfarm
         type(tf_run_status), intent(inout) :: out_status
         integer(c_int) :: c_tf_taskfarm_status
      end function c_tf_taskfarm_status

      function c_tf_taskfarm_info(taskfarm, info, out_json) &
         bind(c, name='tf_taskfarm_info')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: taskfarm
         character(kind=c_char), intent(in) :: info(*)
         type(c_ptr), intent(inout) :: out_json
         integer(c_int) :: c_tf_taskfarm_info
      end function c_tf_taskfarm_info

      function c_tf_taskfarm_get_task_info(taskfarm, task, info, out_json) &
         bind(c, name='tf_taskfarm_get_task_info')
         import :: c_char, c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), value :: task
         character(kind=c_char), intent(in) :: info(*)
         type(c_ptr), intent(inout) :: out_json
         integer(c_int) :: c_tf_taskfarm_get_task_info
      end function c_tf_taskfarm_get_task_info

      function c_tf_taskfarm_set_task_info(taskfarm, task, info, json_value) &
         bind(c, name='tf_taskfarm_set_task_info')
         import :: c_char, c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), value :: task
         character(kind=c_char), intent(in) :: info(*), json_value(*)
         integer(c_int) :: c_tf_taskfarm_set_task_info
      end function c_tf_taskfarm_set_task_info

      function c_tf_taskfarm_task_percent_completed(taskfarm, task, out_percent) &
         bind(c, name='tf_taskfarm_task_percent_completed')
         import :: c_double, c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), value :: task
         real(c_double), intent(inout) :: out_percent
         integer(c_int) :: c_tf_taskfarm_task_percent_completed
      end function c_tf_taskfarm_task_percent_completed

      function c_tf_taskfarm_task_state(taskfarm, task, out_state) &
         bind(c, name='tf_taskfarm_task_state')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), value :: task
         integer(c_int), intent(inout) :: out_state
         integer(c_int) :: c_tf_taskfarm_task_state
      end function c_tf_taskfarm_task_state

      function c_tf_taskfarm_set_task_percent_completed(taskfarm, task, percent) &
         bind(c, name='tf_taskfarm_set_task_percent_completed')
         import :: c_double, c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), value :: task
         real(c_double), value :: percent
         integer(c_int) :: c_tf_taskfarm_set_task_percent_completed
      end function c_tf_taskfarm_set_task_percent_completed

      function c_tf_taskfarm_set_task_state(taskfarm, task, state) &
         bind(c, name='tf_taskfarm_set_task_state')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int64_t), value :: task
         integer(c_int), value :: state
         integer(c_int) :: c_tf_taskfarm_set_task_state
      end function c_tf_taskfarm_set_task_state

      function c_tf_taskfarm_restart(taskfarm, everything) &
         bind(c, name='tf_taskfarm_restart')
         import :: c_bool, c_int, c_ptr
         type(c_ptr), value :: taskfarm
         logical(c_bool), value :: everything
         integer(c_int) :: c_tf_taskfarm_restart
      end function c_tf_taskfarm_restart

      function c_tf_taskfarm_delete(taskfarm) bind(c, name='tf_taskfarm_delete')
         import :: c_int, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int) :: c_tf_taskfarm_delete
      end function c_tf_taskfarm_delete

      function c_tf_taskfarm_url(taskfarm, endpoint, out_url) &
         bind(c, name='tf_taskfarm_url')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: taskfarm
         character(kind=c_char), intent(in) :: endpoint(*)
         type(c_ptr), intent(inout) :: out_url
         integer(c_int) :: c_tf_taskfarm_url
      end function c_tf_taskfarm_url

      function c_tf_taskfarm_token(taskfarm) bind(c, name='tf_taskfarm_token')
         import :: c_ptr
         type(c_ptr), value :: taskfarm
         type(c_ptr) :: c_tf_taskfarm_token
      end function c_tf_taskfarm_token

      function c_tf_taskfarm_set_timeout(taskfarm, seconds) &
         bind(c, name='tf_taskfarm_set_timeout')
         import :: c_double, c_int, c_ptr
         type(c_ptr), value :: taskfarm
         real(c_double), value :: seconds
         integer(c_int) :: c_tf_taskfarm_set_timeout
      end function c_tf_taskfarm_set_timeout

      ! uint32_t in C: passed as the same 32 bits.
      function c_tf_taskfarm_set_retries(taskfarm, retries) &
         bind(c, name='tf_taskfarm_set_retries')
         import :: c_int, c_int32_t, c_ptr
         type(c_ptr), value :: taskfarm
         integer(c_int32_t), value :: retries
         integer(c_int) :: c_tf_taskfarm_set_retries
      end function c_tf_taskfarm_set_retries

      function c_tf_version() bind(c, name='tf_version')
         import :: c_ptr
         type(c_ptr) :: c_tf_version
      end function c_tf_version

      function c_tf_worker_new(username, password, url_base, uuid, out_worker) &
         bind(c, name='tf_worker_new')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: username, password, url_base
         character(kind=c_char), intent(in) :: uuid(*)
         type(c_ptr), intent(inout) :: out_worker
         integer(c_int) :: c_tf_worker_new
      end function c_tf_worker_new

      function c_tf_worker_new_with_token(token, url_base, uuid, out_worker) &
         bind(c, name='tf_worker_new_with_token')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: token, url_base
         character(kind=c_char), intent(in) :: uuid(*)
         type(c_ptr), intent(inout) :: out_worker
         integer(c_int) :: c_tf_worker_new_with_token
      end function c_tf_worker_new_with_token

      subroutine c_tf_worker_free(worker) bind(c, name='tf_worker_free')
         import :: c_ptr
         type(c_ptr), value :: worker
      end subroutine c_tf_worker_free

      function c_tf_worker_uuid(worker) bind(c, name='tf_worker_uuid')
         import :: c_ptr
         type(c_ptr), value :: worker
         type(c_ptr) :: c_tf_worker_uuid
      end function c_tf_worker_uuid

      function c_tf_worker_taskfarm(worker) bind(c, name='tf_worker_taskfarm')
         import :: c_ptr
         type(c_ptr), value :: worker
         type(c_ptr) :: c_tf_worker_taskfarm
      end function c_tf_worker_taskfarm

      function c_tf_worker_task(worker, out_task) bind(c, name='tf_worker_task')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: worker
         integer(c_int64_t), intent(inout) :: out_task
         integer(c_int) :: c_tf_worker_task
      end function c_tf_worker_task

      function c_tf_worker_update(worker, percentage) bind(c, name='tf_worker_update')
         import :: c_double, c_int, c_ptr
         type(c_ptr), value :: worker
         real(c_double), value :: percentage
         integer(c_int) :: c_tf_worker_update
      end function c_tf_worker_update

      function c_tf_worker_done(worker) bind(c, name='tf_worker_done')
         import :: c_int, c_ptr
         type(c_ptr), value :: worker
         integer(c_int) :: c_tf_worker_done
      end function c_tf_worker_done

      function c_tf_worker_requeue(worker) bind(c, name='tf_worker_requeue')
         import :: c_int, c_ptr
         type(c_ptr), value :: worker
         integer(c_int) :: c_tf_worker_requeue
      end function c_tf_worker_requeue

      function c_tf_worker_fail(worker, message) bind(c, name='tf_worker_fail')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: worker
         character(kind=c_char), intent(in) :: message(*)
         integer(c_int) :: c_tf_worker_fail
      end function c_tf_worker_fail

      function c_tf_worker_attempt(worker, out_attempt) bind(c, name='tf_worker_attempt')
         import :: c_int, c_int64_t, c_ptr
         type(c_ptr), value :: worker
         integer(c_int64_t), intent(inout) :: out_attempt
         integer(c_int) :: c_tf_worker_attempt
      end function c_tf_worker_attempt

      function c_tf_worker_held_percent(worker, out_percent) &
         bind(c, name='tf_worker_held_percent')
         import :: c_double, c_int, c_ptr
         type(c_ptr), value :: worker
         real(c_double), intent(inout) :: out_percent
         integer(c_int) :: c_tf_worker_held_percent
      end function c_tf_worker_held_percent

      function c_tf_worker_set_deadline(worker, unix_time, task_seconds) &
         bind(c, name='tf_worker_set_deadline')
         import :: c_double, c_int, c_ptr
         type(c_ptr), value :: worker
         real(c_double), value :: unix_time, task_seconds
         integer(c_int) :: c_tf_worker_set_deadline
      end function c_tf_worker_set_deadline

      function c_tf_stop_on_signals(signals, count, mode) bind(c, name='tf_stop_on_signals')
         import :: c_int, c_ptr, c_size_t
         type(c_ptr), value :: signals
         integer(c_size_t), value :: count
         integer(c_int), value :: mode
         integer(c_int) :: c_tf_stop_on_signals
      end function c_tf_stop_on_signals

      function c_tf_stop_requested() bind(c, name='tf_stop_requested')
         import :: c_int
         integer(c_int) :: c_tf_stop_requested
      end function c_tf_stop_requested

      function c_tf_worker_set_journal(worker, dir) bind(c, name='tf_worker_set_journal')
         import :: c_char, c_int, c_ptr
         type(c_ptr), value :: worker
         character(kind=c_char), intent(in) :: dir(*)
         integer(c_int) :: c_tf_worker_set_journal
      end function c_tf_worker_set_journal

      function c_tf_worker_set_update_interval(worker, seconds) &
         bind(c, name='tf_worker_set_update_interval')
         import :: c_double, c_int, c_ptr
         type(c_ptr), value :: worker
         real(c_double), value :: seconds
         integer(c_int) :: c_tf_worker_set_update_interval
      end function c_tf_worker_set_update_interval

      function c_tf_worker_flush(worker) bind(c, name='tf_worker_flush')
         import :: c_int, c_ptr
         type(c_ptr), value :: worker
         integer(c_int) :: c_tf_worker_flush
      end function c_tf_worker_flush

      ! From the C library, for copying C strings.
      function c_strlen(string) bind(c, name='strlen')
         import :: c_ptr, c_size_t
         type(c_ptr), value :: string
         integer(c_size_t) :: c_strlen
      end function c_strlen
   end interface

contains

   ! ------------------------------------------------------------------
   ! Strings across the boundary.

   !> trim(s) as a NUL-terminated C string.
   pure function c_string(s) result(chars)
      character(*), intent(in) :: s
      character(kind=c_char, len=len_trim(s) + 1) :: chars
      chars = trim(s)//c_null_char
   end function c_string

   !> A C pointer to trim(s) NUL-terminated, kept in `buffer` (which must
   !> outlive the call it is passed to); C NULL when `s` is absent.
   function c_string_or_null(s, buffer) result(p)
      character(*), intent(in), optional :: s
      character(kind=c_char, len=:), allocatable, target, intent(inout) :: buffer
      type(c_ptr) :: p
      p = c_null_ptr
      if (present(s)) then
         buffer = c_string(s)
         p = c_loc(buffer)
      end if
   end function c_string_or_null

   !> A copy of a NUL-terminated C string; '' for NULL.
   function copy_c_string(p) result(s)
      type(c_ptr), intent(in) :: p
      character(:), allocatable :: s
      character(kind=c_char), pointer :: chars(:)
      integer(c_size_t) :: n, i
      if (.not. c_associated(p)) then
         s = ''
         return
      end if
      n = c_strlen(p)
      call c_f_pointer(p, chars, [n])
      allocate (character(len=n) :: s)
      do i = 1, n
         s(i:i) = chars(i)
      end do
   end function copy_c_string

   !> A copy of a `char*` the library allocated, which is then freed with
   !> tf_string_free.
   function take_c_string(p) result(s)
      type(c_ptr), intent(in) :: p
      character(:), allocatable :: s
      s = copy_c_string(p)
      call c_tf_string_free(p)
   end function take_c_string

   ! ------------------------------------------------------------------
   ! Module procedures.

   !> See tf_last_error; a copy ('' when it is empty).
   function tf_last_error() result(message)
      character(:), allocatable :: message
      message = copy_c_string(c_tf_last_error())
   end function tf_last_error

   !> See tf_last_http_status.
   function tf_last_http_status() result(http_status)
      integer :: http_status
      http_status = int(c_tf_last_http_status())
   end function tf_last_http_status

   !> See tf_status_name; a copy.
   function tf_status_name(stat) result(name)
      integer, intent(in) :: stat
      character(:), allocatable :: name
      name = copy_c_string(c_tf_status_name(int(stat, c_int)))
   end function tf_status_name

   !> See tf_version; a copy.
   function tf_version() result(version)
      character(:), allocatable :: version
      version = copy_c_string(c_tf_version())
   end function tf_version

   !> See tf_runs. On TF_OK, `runs` is (re)allocated to one tf_run_info per
   !> run (the C list is read with tf_run_list_* and freed here).
   function tf_runs(user, password, url, runs) result(stat)
      character(*), intent(in), optional :: user, password, url
      type(tf_run_info), allocatable, intent(inout) :: runs(:)
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_user, c_password, c_url
      type(c_ptr) :: list
      integer(c_size_t) :: n, i
      list = c_null_ptr
      stat = int(c_tf_runs(c_string_or_null(user, c_user), &
                           c_string_or_null(password, c_password), &
                           c_string_or_null(url, c_url), list))
      if (stat /= TF_OK) return
      n = c_tf_run_list_len(list)
      if (allocated(runs)) deallocate (runs)
      allocate (runs(n))
      do i = 1, n
         runs(i)%id = c_tf_run_list_id(list, i - 1)
         runs(i)%uuid = copy_c_string(c_tf_run_list_uuid(list, i - 1))
         runs(i)%num_tasks = c_tf_run_list_num_tasks(list, i - 1)
      end do
      call c_tf_run_list_free(list)
   end function tf_runs

   !> See tf_runs_json; the JSON text copied.
   function tf_runs_json(user, password, url, json) result(stat)
      character(*), intent(in), optional :: user, password, url
      character(:), allocatable, intent(inout) :: json
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_user, c_password, c_url
      type(c_ptr) :: text
      text = c_null_ptr
      stat = int(c_tf_runs_json(c_string_or_null(user, c_user), &
                                c_string_or_null(password, c_password), &
                                c_string_or_null(url, c_url), text))
      if (stat == TF_OK) json = take_c_string(text)
   end function tf_runs_json

   ! ------------------------------------------------------------------
   ! tf_taskfarm

   !> See tf_taskfarm_create; `self` becomes the handle. A handle `self` held
   !> before is freed on success only.
   function taskfarm_create(self, user, password, url, num_tasks) result(stat)
      class(tf_taskfarm), intent(inout) :: self
      character(*), intent(in), optional :: user, password, url
      integer(int64), intent(in) :: num_tasks
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_user, c_password, c_url
      type(c_ptr) :: handle
      handle = c_null_ptr
      stat = int(c_tf_taskfarm_create(c_string_or_null(user, c_user), &
                                      c_string_or_null(password, c_password), &
                                      c_string_or_null(url, c_url), num_tasks, handle))
      if (stat == TF_OK) call taskfarm_own(self, handle)
   end function taskfarm_create

   !> See tf_taskfarm_open; `self` becomes the handle. A handle `self` held
   !> before is freed on success only.
   function taskfarm_open(self, user, password, url, uuid) result(stat)
      class(tf_taskfarm), intent(inout) :: self
      character(*), intent(in), optional :: user, password, url
      character(*), intent(in) :: uuid
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_user, c_password, c_url
      type(c_ptr) :: handle
      handle = c_null_ptr
      stat = int(c_tf_taskfarm_open(c_string_or_null(user, c_user), &
                                    c_string_or_null(password, c_password), &
                                    c_string_or_null(url, c_url), c_string(uuid), handle))
      if (stat == TF_OK) call taskfarm_own(self, handle)
   end function taskfarm_open

   !> See tf_taskfarm_open_with_token; `self` becomes the handle. An absent
   !> `token` or `url` is NULL. A handle `self` held before is freed on success
   !> only.
   function taskfarm_open_with_token(self, token, url, uuid) result(stat)
      class(tf_taskfarm), intent(inout) :: self
      character(*), intent(in), optional :: token, url
      character(*), intent(in) :: uuid
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_token, c_url
      type(c_ptr) :: handle
      handle = c_null_ptr
      stat = int(c_tf_taskfarm_open_with_token(c_string_or_null(token, c_token), &
                                               c_string_or_null(url, c_url), c_string(uuid), handle))
      if (stat == TF_OK) call taskfarm_own(self, handle)
   end function taskfarm_open_with_token

   !> Frees what `self` held, then makes it the owner of `handle`.
   subroutine taskfarm_own(self, handle)
      class(tf_taskfarm), intent(inout) :: self
      type(c_ptr), intent(in) :: handle
      call self%free()
      self%handle = handle
      self%owned = .true.
   end subroutine taskfarm_own

   !> See tf_taskfarm_uuid; a copy, '' for an empty handle.
   function taskfarm_uuid(self) result(uuid)
      class(tf_taskfarm), intent(in) :: self
      character(:), allocatable :: uuid
      uuid = copy_c_string(c_tf_taskfarm_uuid(self%handle))
   end function taskfarm_uuid

   !> See tf_taskfarm_num_tasks (-1 for an empty handle).
   function taskfarm_num_tasks(self) result(num_tasks)
      class(tf_taskfarm), intent(in) :: self
      integer(int64) :: num_tasks
      num_tasks = c_tf_taskfarm_num_tasks(self%handle)
   end function taskfarm_num_tasks

   !> See tf_taskfarm_percent_done.
   function taskfarm_percent_done(self, percent) result(stat)
      class(tf_taskfarm), intent(in) :: self
      real(real64), intent(inout) :: percent
      integer :: stat
      stat = int(c_tf_taskfarm_percent_done(self%handle, percent))
   end function taskfarm_percent_done

   !> See tf_taskfarm_num_done.
   function taskfarm_num_done(self, count) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(inout) :: count
      integer :: stat
      stat = int(c_tf_taskfarm_num_done(self%handle, count))
   end function taskfarm_num_done

   !> See tf_taskfarm_num_waiting.
   function taskfarm_num_waiting(self, count) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(inout) :: count
      integer :: stat
      stat = int(c_tf_taskfarm_num_waiting(self%handle, count))
   end function taskfarm_num_waiting

   !> See tf_taskfarm_num_computing.
   function taskfarm_num_computing(self, count) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(inout) :: count
      integer :: stat
      stat = int(c_tf_taskfarm_num_computing(self%handle, count))
   end function taskfarm_num_computing

   !> See tf_taskfarm_status.
   function taskfarm_status(self, run_status) result(stat)
      class(tf_taskfarm), intent(in) :: self
      type(tf_run_status), intent(inout) :: run_status
      integer :: stat
      stat = int(c_tf_taskfarm_status(self%handle, run_status))
   end function taskfarm_status

   !> See tf_taskfarm_info; `info` '' stands for NULL; on TF_OK `json` is
   !> the JSON text, copied.
   function taskfarm_info(self, info, json) result(stat)
      class(tf_taskfarm), intent(in) :: self
      character(*), intent(in) :: info
      character(:), allocatable, intent(inout) :: json
      integer :: stat
      type(c_ptr) :: text
      text = c_null_ptr
      stat = int(c_tf_taskfarm_info(self%handle, c_string(info), text))
      if (stat == TF_OK) json = take_c_string(text)
   end function taskfarm_info

   !> See tf_taskfarm_get_task_info; `info` '' stands for NULL; on TF_OK
   !> `json` is the JSON text, copied.
   function taskfarm_get_task_info(self, task, info, json) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(in) :: task
      character(*), intent(in) :: info
      character(:), allocatable, intent(inout) :: json
      integer :: stat
      type(c_ptr) :: text
      text = c_null_ptr
      stat = int(c_tf_taskfarm_get_task_info(self%handle, task, c_string(info), text))
      if (stat == TF_OK) json = take_c_string(text)
   end function taskfarm_get_task_info

   !> See tf_taskfarm_set_task_info; `value` without its trailing blanks.
   function taskfarm_set_task_info(self, task, info, value) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(in) :: task
      character(*), intent(in) :: info, value
      integer :: stat
      stat = int(c_tf_taskfarm_set_task_info(self%handle, task, c_string(info), &
                                             c_string(value)))
   end function taskfarm_set_task_info

   !> See tf_taskfarm_task_percent_completed.
   function taskfarm_task_percent_completed(self, task, percent) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(in) :: task
      real(real64), intent(inout) :: percent
      integer :: stat
      stat = int(c_tf_taskfarm_task_percent_completed(self%handle, task, percent))
   end function taskfarm_task_percent_completed

   !> See tf_taskfarm_task_state; `state` is a default integer
   !> (TF_TASK_WAITING, TF_TASK_COMPUTING, TF_TASK_DONE).
   function taskfarm_task_state(self, task, state) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(in) :: task
      integer, intent(inout) :: state
      integer :: stat
      integer(c_int) :: c_state
      c_state = -1
      stat = int(c_tf_taskfarm_task_state(self%handle, task, c_state))
      if (stat == TF_OK) state = int(c_state)
   end function taskfarm_task_state

   !> See tf_taskfarm_set_task_percent_completed.
   function taskfarm_set_task_percent_completed(self, task, percent) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(in) :: task
      real(real64), intent(in) :: percent
      integer :: stat
      stat = int(c_tf_taskfarm_set_task_percent_completed(self%handle, task, percent))
   end function taskfarm_set_task_percent_completed

   !> See tf_taskfarm_set_task_state; `state` is a default integer.
   function taskfarm_set_task_state(self, task, state) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer(int64), intent(in) :: task
      integer, intent(in) :: state
      integer :: stat
      stat = int(c_tf_taskfarm_set_task_state(self%handle, task, int(state, c_int)))
   end function taskfarm_set_task_state

   !> See tf_taskfarm_restart; `everything` is a logical.
   function taskfarm_restart(self, everything) result(stat)
      class(tf_taskfarm), intent(in) :: self
      logical, intent(in) :: everything
      integer :: stat
      stat = int(c_tf_taskfarm_restart(self%handle, logical(everything, c_bool)))
   end function taskfarm_restart

   !> See tf_taskfarm_delete. `self` must still be freed.
   function taskfarm_delete(self) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer :: stat
      stat = int(c_tf_taskfarm_delete(self%handle))
   end function taskfarm_delete

   !> See tf_taskfarm_url; on TF_OK `url` is the URL, copied.
   function taskfarm_url(self, endpoint, url) result(stat)
      class(tf_taskfarm), intent(in) :: self
      character(*), intent(in) :: endpoint
      character(:), allocatable, intent(inout) :: url
      integer :: stat
      type(c_ptr) :: text
      text = c_null_ptr
      stat = int(c_tf_taskfarm_url(self%handle, c_string(endpoint), text))
      if (stat == TF_OK) url = take_c_string(text)
   end function taskfarm_url

   !> See tf_taskfarm_token; a copy (still a secret), '' for an empty handle.
   function taskfarm_token(self) result(token)
      class(tf_taskfarm), intent(in) :: self
      character(:), allocatable :: token
      token = copy_c_string(c_tf_taskfarm_token(self%handle))
   end function taskfarm_token

   !> See tf_taskfarm_set_timeout.
   function taskfarm_set_timeout(self, seconds) result(stat)
      class(tf_taskfarm), intent(in) :: self
      real(real64), intent(in) :: seconds
      integer :: stat
      stat = int(c_tf_taskfarm_set_timeout(self%handle, seconds))
   end function taskfarm_set_timeout

   !> See tf_taskfarm_set_retries; `retries` is a default integer: a
   !> negative one is refused like a number past the C range.
   function taskfarm_set_retries(self, retries) result(stat)
      class(tf_taskfarm), intent(in) :: self
      integer, intent(in) :: retries
      integer :: stat
      ! A negative number goes out as a uint32_t above 1000, which the
      ! library refuses (TF_ERR_INVALID_ARGUMENT, with a message).
      stat = int(c_tf_taskfarm_set_retries(self%handle, &
                                           int(max(-1, min(retries, 2147483647)), c_int32_t)))
   end function taskfarm_set_retries

   !> tf_taskfarm_free, and `self` is emptied; a borrowed view (from
   !> w%taskfarm() or an assignment) is only emptied. Freeing an empty handle
   !> does nothing.
   subroutine taskfarm_free(self)
      class(tf_taskfarm), intent(inout) :: self
      if (self%owned) call c_tf_taskfarm_free(self%handle)
      self%handle = c_null_ptr
      self%owned = .false.
   end subroutine taskfarm_free

   !> `lhs = rhs` (also element by element for arrays): lhs frees what it
   !> owned and becomes a borrowed view of rhs's handle (rhs keeps ownership).
   impure elemental subroutine taskfarm_assign(lhs, rhs)
      class(tf_taskfarm), intent(inout) :: lhs
      class(tf_taskfarm), intent(in) :: rhs
      if (c_associated(lhs%handle, rhs%handle)) return
      call lhs%free()
      lhs%handle = rhs%handle
      lhs%owned = .false.
   end subroutine taskfarm_assign

   impure elemental subroutine taskfarm_final(self)
      type(tf_taskfarm), intent(inout) :: self
      call self%free()
   end subroutine taskfarm_final

   ! ------------------------------------------------------------------
   ! tf_worker

   !> See tf_worker_new; `self` becomes the worker. A worker `self` held
   !> before is freed on success only.
   function worker_new(self, user, password, url, uuid) result(stat)
      class(tf_worker), intent(inout) :: self
      character(*), intent(in), optional :: user, password, url
      character(*), intent(in) :: uuid
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_user, c_password, c_url
      type(c_ptr) :: handle
      handle = c_null_ptr
      stat = int(c_tf_worker_new(c_string_or_null(user, c_user), &
                                 c_string_or_null(password, c_password), &
                                 c_string_or_null(url, c_url), c_string(uuid), handle))
      if (stat == TF_OK) then
         call self%free()
         self%handle = handle
         self%owned = .true.
      end if
   end function worker_new

   !> See tf_worker_new_with_token; `self` becomes the worker. An absent
   !> `token` or `url` is NULL. The token to broadcast: `tf%token()` or
   !> `w%taskfarm()` then its `token()`. A worker `self` held before is freed on
   !> success only.
   function worker_new_with_token(self, token, url, uuid) result(stat)
      class(tf_worker), intent(inout) :: self
      character(*), intent(in), optional :: token, url
      character(*), intent(in) :: uuid
      integer :: stat
      character(kind=c_char, len=:), allocatable, target :: c_token, c_url
      type(c_ptr) :: handle
      handle = c_null_ptr
      stat = int(c_tf_worker_new_with_token(c_string_or_null(token, c_token), &
                                            c_string_or_null(url, c_url), c_string(uuid), handle))
      if (stat == TF_OK) then
         call self%free()
         self%handle = handle
         self%owned = .true.
      end if
   end function worker_new_with_token

   !> See tf_worker_uuid; a copy, '' for an empty worker.
   function worker_uuid(self) result(uuid)
      class(tf_worker), intent(in) :: self
      character(:), allocatable :: uuid
      uuid = copy_c_string(c_tf_worker_uuid(self%handle))
   end function worker_uuid

   !> See tf_worker_taskfarm: a borrowed tf_taskfarm view, valid while the
   !> worker lives; its `free` only empties the view.
   function worker_taskfarm(self) result(run)
      class(tf_worker), intent(in) :: self
      type(tf_taskfarm) :: run
      run%handle = c_tf_worker_taskfarm(self%handle)
      run%owned = .false.
   end function worker_taskfarm

   !> See tf_worker_task. The loop:
   !>    do while (w%task(t) == TF_OK) ... ; stat = w%done() ; end do
   function worker_task(self, task) result(stat)
      class(tf_worker), intent(inout) :: self
      integer(int64), intent(inout) :: task
      integer :: stat
      stat = int(c_tf_worker_task(self%handle, task))
   end function worker_task

   !> See tf_worker_update.
   function worker_update(self, percentage) result(stat)
      class(tf_worker), intent(inout) :: self
      real(real64), intent(in) :: percentage
      integer :: stat
      stat = int(c_tf_worker_update(self%handle, percentage))
   end function worker_update

   !> See tf_worker_done.
   function worker_done(self) result(stat)
      class(tf_worker), intent(inout) :: self
      integer :: stat
      stat = int(c_tf_worker_done(self%handle))
   end function worker_done

   !> See tf_worker_requeue.
   function worker_requeue(self) result(stat)
      class(tf_worker), intent(inout) :: self
      integer :: stat
      stat = int(c_tf_worker_requeue(self%handle))
   end function worker_requeue

   !> See tf_worker_fail.
   function worker_fail(self, message) result(stat)
      class(tf_worker), intent(inout) :: self
      character(*), intent(in) :: message
      integer :: stat
      stat = int(c_tf_worker_fail(self%handle, c_string(message)))
   end function worker_fail

   !> See tf_worker_attempt; `n` is left alone unless the result is TF_OK.
   function worker_attempt(self, n) result(stat)
      class(tf_worker), intent(in) :: self
      integer(int64), intent(inout) :: n
      integer :: stat
      integer(c_int64_t) :: a
      a = n
      stat = int(c_tf_worker_attempt(self%handle, a))
      if (stat == TF_OK) n = a
   end function worker_attempt

   !> See tf_worker_held_percent.
   function worker_held_percent(self, percent) result(stat)
      class(tf_worker), intent(in) :: self
      real(real64), intent(inout) :: percent
      integer :: stat
      real(c_double) :: p
      p = percent
      stat = int(c_tf_worker_held_percent(self%handle, p))
      if (stat == TF_OK) percent = p
   end function worker_held_percent

   !> See tf_worker_set_deadline; an absent `task_seconds` is 0.
   function worker_set_deadline(self, unix_time, task_seconds) result(stat)
      class(tf_worker), intent(inout) :: self
      real(real64), intent(in) :: unix_time
      real(real64), intent(in), optional :: task_seconds
      integer :: stat
      real(c_double) :: seconds
      seconds = 0
      if (present(task_seconds)) seconds = task_seconds
      stat = int(c_tf_worker_set_deadline(self%handle, unix_time, seconds))
   end function worker_set_deadline

   !> See tf_stop_on_signals; absent or empty `signals` stands for NULL, an
   !> absent `mode` is TF_STOP_EXIT. Linux numbers: HUP 1, INT 2, QUIT 3,
   !> USR1 10, USR2 12, ALRM 14, TERM 15, XCPU 24.
   function tf_stop_on_signals(signals, mode) result(stat)
      integer, intent(in), optional :: signals(:)
      integer, intent(in), optional :: mode
      integer :: stat
      integer(c_int), allocatable, target :: c_signals(:)
      integer(c_int) :: c_mode
      c_mode = TF_STOP_EXIT
      if (present(mode)) c_mode = int(mode, c_int)
      if (present(signals)) then
         allocate (c_signals(size(signals)))
         c_signals = int(signals, c_int)
      else
         allocate (c_signals(0))
      end if
      if (size(c_signals) == 0) then
         stat = int(c_tf_stop_on_signals(c_null_ptr, 0_c_size_t, c_mode))
      else
         stat = int(c_tf_stop_on_signals(c_loc(c_signals), &
                                         int(size(c_signals), c_size_t), c_mode))
      end if
   end function tf_stop_on_signals

   !> See tf_stop_requested.
   function tf_stop_requested() result(signal)
      integer :: signal
      signal = int(c_tf_stop_requested())
   end function tf_stop_requested

   !> See tf_worker_set_journal; `dir` '' stands for NULL.
   function worker_set_journal(self, dir) result(stat)
      class(tf_worker), intent(inout) :: self
      character(*), intent(in) :: dir
      integer :: stat
      stat = int(c_tf_worker_set_journal(self%handle, c_string(dir)))
   end function worker_set_journal

   !> See tf_worker_set_update_interval.
   function worker_set_update_interval(self, seconds) result(stat)
      class(tf_worker), intent(inout) :: self
      real(real64), intent(in) :: seconds
      integer :: stat
      stat = int(c_tf_worker_set_update_interval(self%handle, seconds))
   end function worker_set_update_interval

   !> See tf_worker_flush (`free` is tf_worker_free).
   function worker_flush(self) result(stat)
      class(tf_worker), intent(inout) :: self
      integer :: stat
      stat = int(c_tf_worker_flush(self%handle))
   end function worker_flush

   !> tf_worker_free, and `self` is emptied (borrowed views of the worker or
   !> its run become invalid). Freeing an empty worker does nothing.
   subroutine worker_free(self)
      class(tf_worker), intent(inout) :: self
      if (self%owned) call c_tf_worker_free(self%handle)
      self%handle = c_null_ptr
      self%owned = .false.
   end subroutine worker_free

   !> `lhs = rhs`: lhs frees what it owned and becomes a borrowed view of
   !> rhs's worker (rhs keeps ownership).
   impure elemental subroutine worker_assign(lhs, rhs)
      class(tf_worker), intent(inout) :: lhs
      class(tf_worker), intent(in) :: rhs
      if (c_associated(lhs%handle, rhs%handle)) return
      call lhs%free()
      lhs%handle = rhs%handle
      lhs%owned = .false.
   end subroutine worker_assign

   impure elemental subroutine worker_final(self)
      type(tf_worker), intent(inout) :: self
      call self%free()
   end subroutine worker_final

end module taskfarm_worker
