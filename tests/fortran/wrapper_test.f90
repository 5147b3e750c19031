!> The Fortran module `taskfarm_worker` against a real taskfarm server
!> (tests/fortran/run.sh starts one and exports TASKFARM_URL, TASKFARM_USER
!> and TASKFARM_PASSWORD). Written as a Fortran user writes a worker: one
!> line per check, then "N passed, M failed"; error stop 1 on any failure.
!> Workers run one after the other (SQLite: no concurrent task requests).
program wrapper_test
   use, intrinsic :: iso_fortran_env, only: int64, real64, output_unit
   use taskfarm_worker
   implicit none

   integer :: passed = 0, failed = 0
   character(:), allocatable :: user, password, url

   user = env('TASKFARM_USER')
   password = env('TASKFARM_PASSWORD')
   url = env('TASKFARM_URL')
   call check('environment has TASKFARM_USER, _PASSWORD, _URL', &
              len(user) > 0 .and. len(password) > 0 .and. len(url) > 0)

   call test_version_and_status_names()
   call test_create_and_open()
   call test_worker_semantics()
   call test_two_workers_through_a_whole_run()
   call test_task_information()
   call test_restart()
   call test_delete()
   call test_errors()
   call test_url_token_timeout_retries()
   call test_with_token()
   call test_borrowed_run_of_a_worker()
   call test_free_twice_assignment_and_final()
   ! Main-program variables live in MAIN__'s frame: free them for valgrind.
   deallocate (user, password, url)

   write (output_unit, '(i0, a, i0, a)') passed, ' passed, ', failed, ' failed'
   if (failed /= 0) error stop 1

contains

   ! ------------------------------------------------------------------
   ! Checking.

   subroutine check(name, condition, detail)
      character(*), intent(in) :: name
      logical, intent(in) :: condition
      character(*), intent(in), optional :: detail
      if (condition) then
         passed = passed + 1
         write (output_unit, '(2a)') 'ok   ', name
      else
         failed = failed + 1
         if (present(detail)) then
            write (output_unit, '(4a)') 'FAIL ', name, ': ', detail
         else
            write (output_unit, '(2a)') 'FAIL ', name
         end if
      end if
      flush (output_unit)
   end subroutine check

   !> A status check that explains a surprise with the library's message.
   subroutine check_stat(name, stat, expected)
      character(*), intent(in) :: name
      integer, intent(in) :: stat, expected
      call check(name, stat == expected, 'got '//tf_status_name(stat)//' ('// &
                 tf_last_error()//'), expected '//tf_status_name(expected))
   end subroutine check_stat

   !> Collects the statuses of a sequence of calls (each evaluated in a
   !> statement of its own: Fortran may skip a function in `a .and. f()`).
   subroutine tally(stat, all_ok)
      integer, intent(in) :: stat
      logical, intent(inout) :: all_ok
      if (stat /= TF_OK) all_ok = .false.
   end subroutine tally

   !> Whether `task` of `run` is in `state` at `percent` %.
   logical function task_is(run, task, state, percent)
      type(tf_taskfarm), intent(in) :: run
      integer(int64), intent(in) :: task
      integer, intent(in) :: state
      real(real64), intent(in) :: percent
      integer :: actual_state
      real(real64) :: actual_percent
      actual_state = state_of(run, task)
      actual_percent = percent_of(run, task)
      task_is = actual_state == state .and. near(actual_percent, percent)
   end function task_is

   pure logical function near(a, b)
      real(real64), intent(in) :: a, b
      near = abs(a - b) < 1.0e-9_real64
   end function near

   pure logical function contains_text(text, part)
      character(*), intent(in) :: text, part
      contains_text = index(text, part) > 0
   end function contains_text

   function env(name) result(value)
      character(*), intent(in) :: name
      character(:), allocatable :: value
      integer :: length, stat
      call get_environment_variable(name, length=length, status=stat)
      if (stat /= 0) then
         value = ''
         return
      end if
      allocate (character(length) :: value)
      call get_environment_variable(name, value)
   end function env

   function str(n) result(text)
      integer(int64), intent(in) :: n
      character(:), allocatable :: text
      character(32) :: buffer
      write (buffer, '(i0)') n
      text = trim(buffer)
   end function str

   real(real64) function percent_of(run, task)
      type(tf_taskfarm), intent(in) :: run
      integer(int64), intent(in) :: task
      percent_of = -1.0_real64
      if (run%task_percent_completed(task, percent_of) /= TF_OK) percent_of = -2.0_real64
   end function percent_of

   integer function state_of(run, task)
      type(tf_taskfarm), intent(in) :: run
      integer(int64), intent(in) :: task
      state_of = -1
      if (run%task_state(task, state_of) /= TF_OK) state_of = -2
   end function state_of

   ! ------------------------------------------------------------------
   ! The tests.

   subroutine test_version_and_status_names()
      character(32) :: expected
      character(len=23), parameter :: names(0:8) = [character(len=23) :: &
         'TF_OK', 'TF_NO_MORE_TASKS', 'TF_ERR_INVALID_ARGUMENT', &
         'TF_ERR_CONNECTION', 'TF_ERR_AUTH', 'TF_ERR_NOT_FOUND', 'TF_ERR_HTTP', &
         'TF_ERR_PROTOCOL', 'TF_ERR_INTERNAL']
      integer, parameter :: codes(0:8) = [TF_OK, TF_NO_MORE_TASKS, &
         TF_ERR_INVALID_ARGUMENT, TF_ERR_CONNECTION, TF_ERR_AUTH, TF_ERR_NOT_FOUND, &
         TF_ERR_HTTP, TF_ERR_PROTOCOL, TF_ERR_INTERNAL]
      integer :: i
      logical :: all_named
      character(:), allocatable :: name

      write (expected, '(i0, ".", i0, ".", i0)') TF_VERSION_MAJOR, TF_VERSION_MINOR, &
         TF_VERSION_PATCH
      call check('tf_version() = module TF_VERSION_* ('//trim(expected)//')', &
                 tf_version() == trim(expected), 'library says '//tf_version())

      all_named = .true.
      do i = 0, 8
         name = tf_status_name(codes(i))
         all_named = all_named .and. codes(i) == i .and. name == trim(names(i))
      end do
      call check('TF_* constants are the C numbers and tf_status_name names them', all_named)
      call check('tf_status_name(99) = TF_UNKNOWN_STATUS', &
                 tf_status_name(99) == 'TF_UNKNOWN_STATUS', tf_status_name(99))
      call check('TF_TASK_* are the C numbers', &
                 TF_TASK_WAITING == 0 .and. TF_TASK_COMPUTING == 1 .and. TF_TASK_DONE == 2)
   end subroutine test_version_and_status_names

   subroutine test_create_and_open()
      type(tf_taskfarm) :: run, again, explicit
      type(tf_run_status) :: st
      type(tf_run_info), allocatable :: runs(:)
      character(:), allocatable :: json
      integer :: stat, i, found

      stat = run%create(num_tasks=5_int64)
      call check_stat('create(num_tasks=5) with credentials from the environment', stat, TF_OK)
      call check('uuid() is 32 characters', len(run%uuid()) == 32, run%uuid())
      call check('num_tasks() = 5', run%num_tasks() == 5_int64)

      stat = again%open(uuid=run%uuid())
      call check_stat('open(uuid=...)', stat, TF_OK)
      call check('the opened run has the same uuid', again%uuid() == run%uuid())
      call check('the opened run has 5 tasks', again%num_tasks() == 5_int64)
      st%num_tasks = -9
      stat = again%status(st)
      call check_stat('status(st)', stat, TF_OK)
      call check('a new run: 5 tasks, 0 waiting, 0 computing, 0 done, 0 %', &
                 st%num_tasks == 5 .and. st%num_waiting == 0 .and. st%num_computing == 0 &
                 .and. st%num_done == 0 .and. near(st%percent_done, 0.0_real64))

      stat = explicit%create(user, password, url, 2_int64)
      call check_stat('create(user, password, url, 2) with explicit arguments', stat, TF_OK)
      stat = explicit%open(user, password, url, run%uuid())
      call check_stat('open(user, password, url, uuid) on a handle in use replaces it', stat, TF_OK)
      call check('... and it is now the other run', explicit%uuid() == run%uuid())

      stat = tf_runs(runs=runs)
      call check_stat('tf_runs(runs=runs)', stat, TF_OK)
      found = 0
      if (stat == TF_OK) then
         do i = 1, size(runs)
            if (runs(i)%uuid == run%uuid()) found = i
         end do
      end if
      call check('the run list holds the new run with 5 tasks and an id', found > 0)
      if (found > 0) then
         call check('... num_tasks = 5, id >= 1', &
                    runs(found)%num_tasks == 5 .and. runs(found)%id >= 1)
      end if
      stat = tf_runs(user, password, url, runs)
      call check_stat('tf_runs(user, password, url, runs)', stat, TF_OK)
      stat = tf_runs_json(json=json)
      call check_stat('tf_runs_json(json=json)', stat, TF_OK)
      if (stat == TF_OK) then
         call check('the JSON run list holds the run', contains_text(json, '"'//run%uuid()//'"') &
                    .and. index(json, '[') == 1, json)
      end if

      call run%free()
      call again%free()
      call explicit%free()
   end subroutine test_create_and_open

   subroutine test_worker_semantics()
      type(tf_taskfarm) :: run
      type(tf_worker) :: w
      integer(int64) :: t, first, second, third
      integer :: stat
      type(tf_run_status) :: st
      character(:), allocatable :: worker_uuid
      logical :: exists

      stat = run%create(num_tasks=3_int64)
      call check_stat('create(num_tasks=3)', stat, TF_OK)
      stat = w%new(uuid=run%uuid())
      call check_stat('w%new(uuid=...)', stat, TF_OK)
      worker_uuid = w%uuid()
      call check('w%uuid() is 32 hex digits', len(worker_uuid) == 32 .and. &
                 verify(worker_uuid, '0123456789abcdef') == 0, worker_uuid)

      call check_stat('set_journal(".") keeps a journal in the working directory', &
                      w%set_journal('.'), TF_OK)
      inquire (file='worker-'//run%uuid()//'-'//worker_uuid//'.json', exist=exists)
      call check('... its file exists', exists)
      call check_stat('set_journal("") stops it', w%set_journal(''), TF_OK)
      inquire (file='worker-'//run%uuid()//'-'//worker_uuid//'.json', exist=exists)
      call check('... and removes the file', .not. exists)
      call check_stat('set_journal of a missing directory is TF_ERR_INVALID_ARGUMENT', &
                      w%set_journal('/nonexistent/journal'), TF_ERR_INVALID_ARGUMENT)
      call check_stat('update(10) with no task held does nothing', w%update(10.0_real64), TF_OK)
      call check_stat('done() with no task held does nothing', w%done(), TF_OK)

      first = -1
      call check_stat('task(t) gives a task', w%task(first), TF_OK)
      call check('the first task is 0', first == 0, str(first))
      t = -1
      stat = w%task(t)
      call check('task(t) again gives the held task', stat == TF_OK .and. t == first, str(t))
      call check('the held task is computing', state_of(run, first) == TF_TASK_COMPUTING)

      call check_stat('update(150) is TF_ERR_INVALID_ARGUMENT', w%update(150.0_real64), &
                      TF_ERR_INVALID_ARGUMENT)
      call check('... and tf_last_error() says so', &
                 contains_text(tf_last_error(), 'tf_worker_update'), tf_last_error())
      call check_stat('update(-1) is TF_ERR_INVALID_ARGUMENT', w%update(-1.0_real64), &
                      TF_ERR_INVALID_ARGUMENT)

      call check_stat('update(50)', w%update(50.0_real64), TF_OK)
      call check('the task is at 50 %', near(percent_of(run, first), 50.0_real64))
      call check_stat('done() at 50 %', w%done(), TF_NOT_DONE)
      call check('done at 50 % does not mark the task done', &
                 state_of(run, first) == TF_TASK_COMPUTING)

      second = -1
      stat = w%task(second)
      call check('the next task is 1', stat == TF_OK .and. second == 1, str(second))
      stat = w%update(100.0_real64)
      call check_stat('done() at 100 %', w%done(), TF_OK)
      call check('done at 100 % marks the task done', &
                 task_is(run, second, TF_TASK_DONE, 100.0_real64))

      third = -1
      stat = w%task(third)
      call check('the next task is 2', stat == TF_OK .and. third == 2, str(third))
      stat = w%update(30.0_real64)
      call check_stat('requeue()', w%requeue(), TF_OK)
      call check('a requeued task is waiting at 0 %', &
                 task_is(run, third, TF_TASK_WAITING, 0.0_real64))
      t = -1
      stat = w%task(t)
      call check('the requeued task is handed out again', stat == TF_OK .and. t == third, str(t))
      call check_stat('set_update_interval(-1)', w%set_update_interval(-1.0_real64), &
                      TF_ERR_INVALID_ARGUMENT)
      call check_stat('set_update_interval(3600)', w%set_update_interval(3600.0_real64), TF_OK)
      stat = w%update(40.0_real64)
      call check_stat('flush()', w%flush(), TF_OK)
      call check('flush() sent the update', task_is(run, t, TF_TASK_COMPUTING, 40.0_real64))
      stat = w%update(100.0_real64)
      stat = w%done()

      t = -7
      call check_stat('task(t) with no task left is TF_NO_MORE_TASKS', w%task(t), TF_NO_MORE_TASKS)
      call check('... and leaves t as it was', t == -7, str(t))
      call check_stat('task(t) asked again is TF_NO_MORE_TASKS', w%task(t), TF_NO_MORE_TASKS)
      stat = run%status(st)
      call check('status: 0 waiting, 1 computing, 2 done', stat == TF_OK .and. &
                 st%num_waiting == 0 .and. st%num_computing == 1 .and. st%num_done == 2)
      call w%free()
      call run%free()
   end subroutine test_worker_semantics

   subroutine test_two_workers_through_a_whole_run()
      type(tf_taskfarm) :: run
      type(tf_worker) :: w1, w2
      integer(int64) :: t, n
      integer :: stat, done_by_1, done_by_2
      integer :: times_done(0:4)
      logical :: updates_ok
      real(real64) :: p
      type(tf_run_status) :: st
      character(:), allocatable :: json, uuid

      allocate (character(len=0) :: json)
      stat = run%create(num_tasks=5_int64)
      call check_stat('create(num_tasks=5) for two workers', stat, TF_OK)
      times_done = 0
      updates_ok = .true.

      ! The first worker does two tasks, then stops (as a job at its time limit).
      stat = w1%new(uuid=run%uuid())
      call check_stat('first worker: new', stat, TF_OK)
      done_by_1 = 0
      do while (w1%task(t) == TF_OK)
         call tally(w1%update(50.0_real64), updates_ok)
         call tally(w1%update(100.0_real64), updates_ok)
         call tally(w1%done(), updates_ok)
         times_done(t) = times_done(t) + 1
         done_by_1 = done_by_1 + 1
         if (done_by_1 == 2) exit
      end do
      call w1%free()

      ! The second worker, started after, does the rest.
      stat = w2%new(uuid=run%uuid())
      call check_stat('second worker: new', stat, TF_OK)
      done_by_2 = 0
      do while (w2%task(t) == TF_OK)
         call tally(w2%update(50.0_real64), updates_ok)
         call tally(w2%update(100.0_real64), updates_ok)
         call tally(w2%done(), updates_ok)
         times_done(t) = times_done(t) + 1
         done_by_2 = done_by_2 + 1
      end do
      call w2%free()

      call check('every update and done returned TF_OK', updates_ok, tf_last_error())
      call check('two workers: 2 + 3 tasks, every task done exactly once', &
                 done_by_1 == 2 .and. done_by_2 == 3 .and. all(times_done == 1))

      stat = run%status(st)
      call check('status: 5 tasks, 0 waiting, 0 computing, 5 done, 100 %', stat == TF_OK &
                 .and. st%num_tasks == 5 .and. st%num_waiting == 0 .and. st%num_computing == 0 &
                 .and. st%num_done == 5 .and. near(st%percent_done, 100.0_real64))
      n = -1
      stat = run%num_done(n)
      call check('num_done(n) = 5', stat == TF_OK .and. n == 5, str(n))
      n = -1
      stat = run%num_waiting(n)
      call check('num_waiting(n) = 0', stat == TF_OK .and. n == 0, str(n))
      n = -1
      stat = run%num_computing(n)
      call check('num_computing(n) = 0', stat == TF_OK .and. n == 0, str(n))
      p = -1.0_real64
      stat = run%percent_done(p)
      call check('percent_done(p) = 100', stat == TF_OK .and. near(p, 100.0_real64))

      stat = run%info('numDone', json)
      call check('info(''numDone'') is the bare value 5', stat == TF_OK .and. json == '5', json)
      stat = run%info('percentDone', json)
      p = -1.0_real64
      if (stat == TF_OK) read (json, *) p
      call check('info(''percentDone'') is the bare value 100', &
                 stat == TF_OK .and. near(p, 100.0_real64), json)
      uuid = run%uuid()
      stat = run%info('', json)
      call check('info('''') is the whole object', stat == TF_OK .and. index(json, '{') == 1 &
                 .and. contains_text(json, '"numTasks"') &
                 .and. contains_text(json, '"'//uuid//'"'), json)
      json = 'unchanged'
      stat = run%info('bogus', json)
      call check('info(''bogus'') is TF_ERR_INVALID_ARGUMENT and leaves json as it was', &
                 stat == TF_ERR_INVALID_ARGUMENT .and. json == 'unchanged', json)
      call run%free()
   end subroutine test_two_workers_through_a_whole_run

   subroutine test_task_information()
      type(tf_taskfarm) :: run
      type(tf_worker) :: w
      integer(int64) :: t
      integer :: stat
      real(real64) :: p
      character(:), allocatable :: json, message

      allocate (character(len=0) :: json)
      stat = run%create(num_tasks=3_int64)
      stat = w%new(uuid=run%uuid())
      t = -1
      stat = w%task(t)
      call check_stat('a worker takes a task for task information', stat, TF_OK)

      stat = run%get_task_info(t, 'status', json)
      call check('get_task_info(t, ''status'') = "computing"', &
                 stat == TF_OK .and. json == '"computing"', json)
      stat = run%get_task_info(t, 'percentCompleted', json)
      p = -1.0_real64
      if (stat == TF_OK) read (json, *) p
      call check('get_task_info(t, ''percentCompleted'') = 0', &
                 stat == TF_OK .and. near(p, 0.0_real64), json)
      stat = run%get_task_info(t, '', json)
      call check('get_task_info(t, '''') is the whole task', stat == TF_OK .and. &
                 contains_text(json, '"task"') .and. contains_text(json, '"computing"'), json)

      call check_stat('set_task_info(t, ''percentCompleted'', ''42.5'')', &
                      run%set_task_info(t, 'percentCompleted', '42.5'), TF_OK)
      call check('task_percent_completed = 42.5', near(percent_of(run, t), 42.5_real64))
      call check_stat('set_task_info(t, ''status'', ''"done"'')', &
                      run%set_task_info(t, 'status', '"done"'), TF_OK)
      call check('task_state = TF_TASK_DONE', state_of(run, t) == TF_TASK_DONE)
      call check_stat('set_task_percent_completed(t, 10)', &
                      run%set_task_percent_completed(t, 10.0_real64), TF_OK)
      call check('task_percent_completed = 10', near(percent_of(run, t), 10.0_real64))
      call check_stat('set_task_state(t, TF_TASK_WAITING)', &
                      run%set_task_state(t, TF_TASK_WAITING), TF_OK)
      call check('task_state = TF_TASK_WAITING', state_of(run, t) == TF_TASK_WAITING)

      call check_stat('set_task_state(t, 42) is TF_ERR_INVALID_ARGUMENT', &
                      run%set_task_state(t, 42), TF_ERR_INVALID_ARGUMENT)
      call check_stat('set_task_info(t, ''status'', ''"finished"'') is TF_ERR_INVALID_ARGUMENT', &
                      run%set_task_info(t, 'status', '"finished"'), TF_ERR_INVALID_ARGUMENT)
      call check_stat('set_task_percent_completed(t, 101) is TF_ERR_INVALID_ARGUMENT', &
                      run%set_task_percent_completed(t, 101.0_real64), TF_ERR_INVALID_ARGUMENT)
      json = 'unchanged'
      stat = run%get_task_info(3_int64, 'status', json)
      message = tf_last_error()
      call check('get_task_info(3, ...) of a 3-task run is TF_ERR_INVALID_ARGUMENT', &
                 stat == TF_ERR_INVALID_ARGUMENT .and. json == 'unchanged' .and. &
                 contains_text(message, 'outside 0..2'), message)
      p = -5.0_real64
      stat = run%task_percent_completed(-1_int64, p)
      call check('task_percent_completed(-1, p) is TF_ERR_INVALID_ARGUMENT, p untouched', &
                 stat == TF_ERR_INVALID_ARGUMENT .and. near(p, -5.0_real64))
      call w%free()
      call run%free()
   end subroutine test_task_information

   subroutine test_restart()
      type(tf_taskfarm) :: run
      type(tf_worker) :: w
      integer(int64) :: t
      integer :: stat
      type(tf_run_status) :: st

      ! Task 0 done, task 1 at 40 % computing, task 2 never handed out.
      stat = run%create(num_tasks=3_int64)
      stat = w%new(uuid=run%uuid())
      stat = w%task(t)
      stat = w%update(100.0_real64)
      stat = w%done()
      stat = w%task(t)
      stat = w%update(40.0_real64)
      call check('restart setup: task 1 computing at 40 %', &
                 t == 1 .and. task_is(run, 1_int64, TF_TASK_COMPUTING, 40.0_real64))
      call w%free()

      call check_stat('restart(.false.)', run%restart(.false.), TF_OK)
      call check('restart(.false.) keeps the done task done at 100 %', &
                 task_is(run, 0_int64, TF_TASK_DONE, 100.0_real64))
      call check('restart(.false.) puts task 1 back to waiting at 40 %', &
                 task_is(run, 1_int64, TF_TASK_WAITING, 40.0_real64))

      call check_stat('restart(.true.)', run%restart(.true.), TF_OK)
      call check('restart(.true.) puts task 0 back to waiting at 0 %', &
                 task_is(run, 0_int64, TF_TASK_WAITING, 0.0_real64))
      call check('restart(.true.) puts task 1 back to waiting at 0 %', &
                 task_is(run, 1_int64, TF_TASK_WAITING, 0.0_real64))
      stat = run%status(st)
      call check('after restart(.true.): 2 waiting, 0 computing, 0 done, 0 %', stat == TF_OK &
                 .and. st%num_waiting == 2 .and. st%num_computing == 0 .and. st%num_done == 0 &
                 .and. near(st%percent_done, 0.0_real64))
      call run%free()
   end subroutine test_restart

   subroutine test_delete()
      type(tf_taskfarm) :: run, again
      integer :: stat
      integer(int64) :: n
      integer :: http_status
      character(:), allocatable :: uuid

      stat = run%create(num_tasks=2_int64)
      uuid = run%uuid()
      call check_stat('delete()', run%delete(), TF_OK)
      call check('after delete the handle still knows its uuid', run%uuid() == uuid)
      n = -1
      stat = run%num_done(n)
      http_status = tf_last_http_status()
      call check('num_done after delete is TF_ERR_NOT_FOUND (HTTP 404), n untouched', &
                 stat == TF_ERR_NOT_FOUND .and. http_status == 404 .and. n == -1, &
                 tf_status_name(stat)//' '//tf_last_error())
      call check_stat('delete() again is TF_ERR_NOT_FOUND', run%delete(), TF_ERR_NOT_FOUND)
      call check_stat('open(uuid) of the deleted run is TF_ERR_NOT_FOUND', &
                      again%open(uuid=uuid), TF_ERR_NOT_FOUND)
      call check('... and leaves the handle empty (num_tasks() = -1)', again%num_tasks() == -1)
      call check('... and leaves the handle empty (uuid() = '''')', len(again%uuid()) == 0)
      call run%free()
   end subroutine test_delete

   subroutine test_errors()
      type(tf_taskfarm) :: run
      type(tf_worker) :: w
      integer :: stat
      character(:), allocatable :: message

      stat = run%create(user, 'not-the-password', url, 3_int64)
      message = tf_last_error()
      call check_stat('create with a wrong password is TF_ERR_AUTH', stat, TF_ERR_AUTH)
      call check('... tf_last_error() says what failed, without the password', &
                 len(message) > 0 .and. .not. contains_text(message, 'not-the-password'), message)
      call check('... tf_last_http_status() = 401', tf_last_http_status() == 401)
      call check('... and the handle stays empty', run%num_tasks() == -1)

      stat = w%new(uuid='0123456789abcdef0123456789abcdef')
      call check_stat('w%new for an unknown run is TF_ERR_NOT_FOUND', stat, TF_ERR_NOT_FOUND)
      call check('... tf_last_error() names the request', &
                 contains_text(tf_last_error(), '0123456789abcdef0123456789abcdef'), &
                 tf_last_error())
      call check('... and the worker stays empty', len(w%uuid()) == 0)
      call check_stat('create(num_tasks=0) is TF_ERR_INVALID_ARGUMENT', &
                      run%create(num_tasks=0_int64), TF_ERR_INVALID_ARGUMENT)
      call check('trailing blanks of character(*) arguments are ignored', &
                 run%create(user//'   ', password//'  ', url//' ', 1_int64) == TF_OK, &
                 tf_last_error())
      stat = run%delete()
      call run%free()
   end subroutine test_errors

   subroutine test_url_token_timeout_retries()
      type(tf_taskfarm) :: run
      integer :: stat
      integer(int64) :: n
      character(:), allocatable :: full, token

      allocate (character(len=0) :: full)
      stat = run%create(num_tasks=1_int64)
      stat = run%url('runs', full)
      call check('url(''runs'') is the base URL followed by runs', stat == TF_OK .and. &
                 full == url//'runs', full)
      token = run%token()
      call check('token() is a JWT, not the password', len(token) > 20 .and. &
                 .not. contains_text(token, password))
      call check_stat('set_timeout(5)', run%set_timeout(5.0_real64), TF_OK)
      call check_stat('set_timeout(0) is TF_ERR_INVALID_ARGUMENT', &
                      run%set_timeout(0.0_real64), TF_ERR_INVALID_ARGUMENT)
      call check_stat('set_retries(0)', run%set_retries(0), TF_OK)
      call check_stat('set_retries(-1) is TF_ERR_INVALID_ARGUMENT', &
                      run%set_retries(-1), TF_ERR_INVALID_ARGUMENT)
      call check_stat('set_retries(1000000) is TF_ERR_INVALID_ARGUMENT', &
                      run%set_retries(1000000), TF_ERR_INVALID_ARGUMENT)
      n = -1
      call check_stat('requests still work after the settings', run%num_done(n), TF_OK)
      stat = run%delete()
      call run%free()
   end subroutine test_url_token_timeout_retries

   subroutine test_with_token()
      type(tf_taskfarm) :: run, by_token, recovered
      type(tf_worker) :: w
      integer :: stat
      integer(int64) :: t, n
      character(:), allocatable :: token, message
      character(len=600) :: padded
      logical :: same

      stat = run%create(num_tasks=2_int64)
      token = run%token()
      stat = by_token%open_with_token(token, url, run%uuid())
      call check_stat('open_with_token(token, url, uuid)', stat, TF_OK)
      same = by_token%token() == token
      call check('... opens the run with that token', by_token%uuid() == run%uuid() .and. same)
      padded = token
      stat = w%new_with_token(token=padded, uuid=run%uuid())
      call check_stat('w%new_with_token(token=padded, uuid=...): trailing blanks dropped, '// &
                      'url from the environment', stat, TF_OK)
      do while (w%task(t) == TF_OK)
         stat = w%update(100.0_real64)
         stat = w%done()
      end do
      n = -1
      stat = by_token%num_done(n)
      call check('the worker with the token did both tasks', stat == TF_OK .and. n == 2_int64, str(n))
      call w%free()

      stat = w%new_with_token('bad token', url, run%uuid())
      call check_stat('new_with_token(''bad token'') is TF_ERR_INVALID_ARGUMENT', stat, &
                      TF_ERR_INVALID_ARGUMENT)
      message = tf_last_error()
      call check('... tf_last_error() says why without quoting the token', &
                 contains_text(message, 'white space') .and. &
                 .not. contains_text(message, 'bad token'), message)
      stat = w%new_with_token('', url, run%uuid())
      call check_stat('new_with_token('''') is TF_ERR_INVALID_ARGUMENT', stat, TF_ERR_INVALID_ARGUMENT)
      ! Well formed but not this server's: with TASKFARM_USER and
      ! TASKFARM_PASSWORD in the environment a new token replaces it.
      stat = recovered%open_with_token('not.a-real.token4711', url, run%uuid())
      call check_stat('open_with_token(a refused token) with credentials in the environment', &
                      stat, TF_OK)
      call check('... now holds the server''s token', recovered%token() == token)

      stat = run%delete()
      call recovered%free()
      call by_token%free()
      call run%free()
   end subroutine test_with_token

   subroutine test_borrowed_run_of_a_worker()
      type(tf_taskfarm) :: run, view
      type(tf_worker) :: w
      integer :: stat
      integer(int64) :: t, n

      stat = run%create(num_tasks=2_int64)
      stat = w%new(uuid=run%uuid())
      view = w%taskfarm()
      call check('w%taskfarm() is the worker''s run', view%uuid() == run%uuid())
      call check('... with its number of tasks', view%num_tasks() == 2_int64)
      stat = w%task(t)
      n = -1
      stat = view%num_computing(n)
      call check('requests through the borrowed run work', stat == TF_OK .and. n == 1, str(n))
      call view%free()
      call view%free()
      call check('free() of the borrowed run empties the view only', len(view%uuid()) == 0)
      view = w%taskfarm()
      call check('... the worker''s run is still there', view%uuid() == run%uuid())
      call check_stat('... and the worker still works', w%update(100.0_real64), TF_OK)
      stat = w%done()
      call w%free()
      stat = run%delete()
      call run%free()
   end subroutine test_borrowed_run_of_a_worker

   subroutine test_free_twice_assignment_and_final()
      type(tf_taskfarm) :: run, copy
      type(tf_worker) :: w, w_copy
      integer :: stat
      integer(int64) :: n
      character(:), allocatable :: uuid

      stat = run%create(num_tasks=2_int64)
      uuid = run%uuid()
      copy = run
      call check('an assignment copy = run views the same run', copy%uuid() == uuid)
      call copy%free()
      n = -1
      stat = run%num_done(n)
      call check('freeing the copy leaves run working', stat == TF_OK .and. n == 0)
      copy = run
      call run%free()
      call run%free()
      call check('free() twice: the handle is empty (uuid() = '''')', len(run%uuid()) == 0)
      call check('free() twice: the handle is empty (num_tasks() = -1)', run%num_tasks() == -1)
      call check_stat('a request on a freed handle is TF_ERR_INVALID_ARGUMENT', &
                      run%num_done(n), TF_ERR_INVALID_ARGUMENT)
      call copy%free()  ! a view of a freed handle: must not free it again (valgrind)

      stat = w%new(uuid=uuid)
      w_copy = w
      call check('an assignment w_copy = w views the same worker', w_copy%uuid() == w%uuid())
      call w_copy%free()
      call check('freeing the worker copy leaves w working', len(w%uuid()) == 32)
      call w%free()
      call w%free()
      call check('worker free() twice: the worker is empty', len(w%uuid()) == 0)
      call check_stat('task() on a freed worker is TF_ERR_INVALID_ARGUMENT', w%task(n), &
                      TF_ERR_INVALID_ARGUMENT)

      ! Left to the final procedures (valgrind's leak check proves they ran).
      call handles_going_out_of_scope(uuid)
      call check('final: handles going out of scope are freed (see valgrind)', .true.)
      call handles_in_an_allocatable_array(uuid)
      call check('final: arrays of handles and views are freed once on deallocate (see valgrind)', &
                 .true.)

      stat = copy%open(uuid=uuid)
      stat = copy%delete()
      call copy%free()
   end subroutine test_free_twice_assignment_and_final

   subroutine handles_going_out_of_scope(uuid)
      character(*), intent(in) :: uuid
      type(tf_taskfarm) :: run, view
      type(tf_worker) :: w
      integer :: stat
      stat = run%open(uuid=uuid)
      stat = w%new(uuid=uuid)
      view = w%taskfarm()
      call check('local handles opened', stat == TF_OK)
      call check('... and the borrowed run of the local worker works', view%uuid() == uuid)
   end subroutine handles_going_out_of_scope

   subroutine handles_in_an_allocatable_array(uuid)
      character(*), intent(in) :: uuid
      type(tf_taskfarm), allocatable :: runs(:), views(:)
      type(tf_worker), allocatable :: workers(:)
      integer :: i, stat
      logical :: all_ok
      allocate (runs(3), views(3), workers(2))
      all_ok = .true.
      do i = 1, 3
         stat = runs(i)%open(uuid=uuid)
         all_ok = all_ok .and. stat == TF_OK
      end do
      do i = 1, 2
         stat = workers(i)%new(uuid=uuid)
         all_ok = all_ok .and. stat == TF_OK
      end do
      call check('arrays of handles opened', all_ok)
      views = runs
      call check('an array assignment views = runs gives views', views(3)%uuid() == uuid)
      ! runs and workers are finalized here; views (borrowed) must not free
      ! the runs a second time: valgrind would report an invalid free.
      deallocate (runs, workers)
      deallocate (views)
   end subroutine handles_in_an_allocatable_array

end program wrapper_test
