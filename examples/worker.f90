!> examples/worker.f90: a taskfarm worker in Fortran.
!>
!>    worker          creates a run of 10 tasks and prints its UUID
!>    worker UUID     works through the run UUID: each task the server hands
!>                    out is computed in steps, with its progress reported
!>
!> The server and the credentials come from the environment: TASKFARM_URL,
!> TASKFARM_USER, TASKFARM_PASSWORD. Start as many workers as you like (Slurm
!> array jobs, MPI ranks): the server hands every task to one of them.
!>
!> The simulation itself is `simulate`, an old-style external subroutine with
!> default INTEGER and DOUBLE PRECISION arguments: existing code stays as it
!> is, only this driver uses the taskfarm_worker module.
!>
!> Build (after `make build`, from the repository):
!>    gfortran -c fortran/taskfarm_worker.f90
!>    gfortran examples/worker.f90 taskfarm_worker.o \
!>        -Ltarget/release -ltaskfarm_worker -Wl,-rpath,$PWD/target/release -o worker
program worker
   use, intrinsic :: iso_fortran_env, only: error_unit, int64, real64
   use taskfarm_worker
   implicit none

   integer(int64), parameter :: num_tasks = 10
   integer, parameter :: num_steps = 4

   interface
      ! The existing simulation code (below, or in its own file or library).
      subroutine simulate(itask, istep, nstep, x)
         integer itask, istep, nstep
         double precision x
      end subroutine simulate
   end interface

   if (command_argument_count() == 0) then
      call create_run()
   else
      call work_through(argument(1))
   end if

contains

   !> Creates a run on the server and prints its UUID for the workers.
   subroutine create_run()
      type(tf_taskfarm) :: run
      ! user, password and url left out: taken from the environment
      if (run%create(num_tasks=num_tasks) /= TF_OK) call fail('creating a run')
      write (*, '(a)') run%uuid()
      call run%free()
   end subroutine create_run

   !> Asks the server for tasks until none is left, and computes them.
   subroutine work_through(uuid)
      character(*), intent(in) :: uuid
      type(tf_worker) :: w
      integer(int64) :: task
      integer :: stat, step, tasks_done
      double precision :: result

      if (w%new(uuid=uuid) /= TF_OK) call fail('registering a worker')
      tasks_done = 0
      do
         stat = w%task(task)
         if (stat /= TF_OK) exit
         result = 0.0d0
         do step = 1, num_steps
            call simulate(int(task), step, num_steps, result)
            if (w%update(100.0_real64*step/num_steps) /= TF_OK) &
               call fail('reporting progress')
         end do
         ! Marks the task done: its last reported progress was 100 %.
         if (w%done() /= TF_OK) call fail('finishing a task')
         write (*, '(a, i0, a)') 'task ', task, ' done'
         tasks_done = tasks_done + 1
      end do
      if (stat /= TF_NO_MORE_TASKS) call fail('asking for a task')
      write (*, '(a, i0, a)') 'no task left (', tasks_done, ' done by this worker)'
      call w%free()
   end subroutine work_through

   !> Command-line argument `i`, without length limit.
   function argument(i) result(value)
      integer, intent(in) :: i
      character(:), allocatable :: value
      integer :: length
      call get_command_argument(i, length=length)
      allocate (character(length) :: value)
      call get_command_argument(i, value)
   end function argument

   !> Says what failed and why, then stops with a non-zero exit status.
   subroutine fail(what)
      character(*), intent(in) :: what
      write (error_unit, '(4a)') 'worker: ', what, ': ', tf_last_error()
      error stop 1
   end subroutine fail

end program worker

!> Stands for the existing simulation code: one step `istep` of `nstep`
!> of task `itask`, accumulating into `x`.
subroutine simulate(itask, istep, nstep, x)
   implicit none
   integer itask, istep, nstep
   double precision x
   integer i
   do i = 1, 100000
      x = x + sin(dble(itask*nstep + istep + i))/dble(i)
   end do
end subroutine simulate
