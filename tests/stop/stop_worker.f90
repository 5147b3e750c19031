! tests/stop/stop_worker.f90: TF_STOP_CONTINUE through the Fortran module,
! for tests/stop_signals.rs.
!
!   stop_worker_f90 UUID
!
! tf_stop_on_signals([15], TF_STOP_CONTINUE) (SIGTERM is 15 on Linux); the
! task loop: update(25), print "computing TASK", wait for the stop (polling
! tf_stop_requested(), 60 s at most), then update(50), which hands the task
! back and gives TF_STOPPED; the next w%task gives TF_STOPPED and ends the
! loop. Prints "stopped SIGNAL tasks N update STATUS task STATUS"; exit
! status 0 when it all held.
program stop_worker_f90
   use taskfarm_worker
   use, intrinsic :: iso_fortran_env, only: int64, real64
   use, intrinsic :: iso_c_binding, only: c_int, c_int32_t
   implicit none
   type(tf_worker) :: w
   character(len=256) :: uuid
   integer :: stat, update_stat, task_stat, seen
   integer(int64) :: t, start, now, rate
   real(real64) :: held
   interface
      function usleep(microseconds) bind(c, name='usleep')
         import :: c_int, c_int32_t
         integer(c_int32_t), value :: microseconds
         integer(c_int) :: usleep
      end function usleep
   end interface

   if (command_argument_count() /= 1) stop 2
   call get_command_argument(1, uuid)
   stat = tf_stop_on_signals([15], TF_STOP_CONTINUE)
   if (stat /= TF_OK) call die('tf_stop_on_signals')
   stat = w%new(uuid=trim(uuid))
   if (stat /= TF_OK) call die('new')
   seen = 0
   update_stat = -1
   do
      task_stat = w%task(t)
      if (task_stat /= TF_OK) exit
      seen = seen + 1
      stat = w%update(25.0_real64)
      if (stat /= TF_OK) call die('update')
      held = -1
      stat = w%held_percent(held)
      print '(a,i0,a,f0.1)', 'computing ', t, ' held ', held
      flush (6)
      call system_clock(start, rate)
      do while (tf_stop_requested() == 0)
         call system_clock(now)
         if (now - start > 60*rate) exit
         stat = usleep(10000_c_int32_t)
      end do
      update_stat = w%update(50.0_real64)
      stat = w%done()
   end do
   print '(a,i0,a,i0,a,a,a,a)', 'stopped ', tf_stop_requested(), ' tasks ', seen, &
      ' update ', tf_status_name(update_stat), ' task ', tf_status_name(task_stat)
   call w%free()
   if (seen /= 1 .or. update_stat /= TF_STOPPED .or. task_stat /= TF_STOPPED) stop 1
contains
   subroutine die(what)
      character(*), intent(in) :: what
      print '(a,a,a,a)', 'FAIL ', what, ': ', tf_last_error()
      stop 1
   end subroutine die
end program stop_worker_f90
