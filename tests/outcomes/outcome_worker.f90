! tests/outcomes/outcome_worker.f90: outcome_worker.c in Fortran through
! the module taskfarm_worker (same arguments, same lines; see there).
program outcome_worker
   use taskfarm_worker
   use iso_fortran_env, only: int64, real64
   implicit none
   type(tf_worker) :: w
   character(len=64) :: uuid, arg
   integer(int64) :: task, attempt, fail_task, not_done_task
   integer :: stat, i, bad
   real(real64) :: p

   bad = 0
   call get_command_argument(1, uuid)
   call get_command_argument(2, arg)
   read (arg, *) fail_task
   call get_command_argument(3, arg)
   read (arg, *) not_done_task
   if (w%new(uuid=trim(uuid)) /= TF_OK) then
      write (*, '(2a)') 'unexpected new: ', tf_last_error()
      error stop 1
   end if
   attempt = -1
   call expect(w%attempt(attempt), TF_NO_MORE_TASKS, 'attempt with no task held')
   call expect(w%fail('nothing held'), TF_OK, 'fail with no task held')
   do
      stat = w%task(task)
      if (stat /= TF_OK) exit
      call expect(w%attempt(attempt), TF_OK, 'attempt')
      write (*, '(a,i0,a,i0)') 'task ', task, ' attempt ', attempt
      if (task == fail_task) then
         call expect(w%update(30.0_real64), TF_OK, 'update 30')
         write (arg, '(a,i0,a,i0,a)') 'task ', task, ' fails on purpose (attempt ', attempt, ')'
         call expect(w%fail(trim(arg)), TF_OK, 'fail')
         write (*, '(a,i0)') 'failed ', task
      else if (task == not_done_task .and. attempt == 1) then
         call expect(w%update(50.0_real64), TF_OK, 'update 50')
         call expect(w%done(), TF_NOT_DONE, 'done at 50 %')
         write (*, '(a,i0)') 'not_done ', task
      else
         p = 0
         do i = 1, 7
            p = p + 100.0_real64 / 7
            call expect(w%update(p), TF_OK, 'update by 100/7')
         end do
         call expect(w%done(), TF_OK, 'done after seven steps of 100/7')
         write (*, '(a,i0)') 'done ', task
      end if
      flush (6)
   end do
   if (stat == TF_NO_MORE_TASKS) then
      write (*, '(a)') 'end TF_NO_MORE_TASKS'
   else
      write (*, '(2a)') 'unexpected end: ', tf_last_error()
      bad = 1
   end if
   call w%free()
   if (bad /= 0) error stop 1

contains

   subroutine expect(got, want, what)
      integer, intent(in) :: got, want
      character(*), intent(in) :: what
      if (got /= want) then
         write (*, '(a,a,a,i0,a,i0,a,a)') 'unexpected ', what, ': ', got, ' (want ', want, '): ', &
            tf_last_error()
         bad = 1
      end if
   end subroutine expect
end program outcome_worker
