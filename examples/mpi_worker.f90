!> examples/mpi_worker.f90: one taskfarm worker per MPI rank, all on one run
!> (the Fortran twin of examples/mpi_worker.c: read that file's comment).
!>
!>    mpirun -n 64 mpi_worker_f UUID        (or TASKFARM_RUN=UUID in the environment)
!>    srun --mpi=pmix mpi_worker_f UUID     (inside a Slurm job)
!>
!> Rank 0 opens the run with the credentials from the environment (the job's
!> one password check) and broadcasts the run's token; every rank registers
!> its worker with it (`w%new_with_token`) and takes tasks until none is
!> left. At the end rank 0 prints the tasks of every rank; the exit status is
!> 1 when any rank failed (MPI_Allreduce of a failure flag), else 0.
!>
!> Build against the tree (`make mpi-examples` does it for Open MPI and MPICH):
!>    mpif90 -c fortran/taskfarm_worker.f90
!>    mpif90 examples/mpi_worker.f90 taskfarm_worker.o -Ltarget/release \
!>        -ltaskfarm_worker -Wl,-rpath,$PWD/target/release -o mpi_worker_f
!> The taskfarm_worker module must be compiled by the gfortran behind mpif90.
program mpi_worker
   use, intrinsic :: iso_fortran_env, only: error_unit, int64, real64
   use mpi_f08
   use taskfarm_worker
   implicit none

   integer, parameter :: num_steps = 2
   integer :: rank, nranks, failed, any_failed, num_done
   integer(int64), allocatable :: done(:)
   character(:), allocatable :: uuid, token
   type(tf_worker) :: w

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nranks)

   uuid = run_uuid()
   if (len(uuid) == 0) then
      if (rank == 0) write (error_unit, '(a)') &
         'usage: mpirun mpi_worker_f UUID   (or TASKFARM_RUN=UUID)'
      call MPI_Finalize()
      stop 2
   end if

   failed = 0
   num_done = 0
   allocate (done(64))
   call share_token(uuid, token)
   if (len(token) == 0) then
      failed = 1 ! rank 0 said why
   else
      if (w%new_with_token(token=token, uuid=uuid) /= TF_OK) then
         call complain('registering the worker')
         failed = 1
      else
         failed = work(w)
         call w%free()
      end if
   end if
   token = repeat(' ', len(token)) ! a secret: overwrite it

   call MPI_Allreduce(failed, any_failed, 1, MPI_INTEGER, MPI_MAX, MPI_COMM_WORLD)
   call report()
   if (rank == 0 .and. any_failed /= 0) &
      write (error_unit, '(a)') 'mpi_worker_f: at least one rank failed'
   call MPI_Finalize()
   if (any_failed /= 0) stop 1

contains

   !> The run's UUID: the first argument, else $TASKFARM_RUN, else ''.
   function run_uuid() result(value)
      character(:), allocatable :: value
      integer :: length
      if (command_argument_count() >= 1) then
         call get_command_argument(1, length=length)
         allocate (character(length) :: value)
         call get_command_argument(1, value)
      else
         call get_environment_variable('TASKFARM_RUN', length=length)
         allocate (character(length) :: value)
         if (length > 0) call get_environment_variable('TASKFARM_RUN', value)
      end if
   end function run_uuid

   !> Rank 0 opens the run (one password check) and broadcasts its token;
   !> token is '' on every rank when rank 0 could not get one.
   subroutine share_token(uuid, token)
      character(*), intent(in) :: uuid
      character(:), allocatable, intent(out) :: token
      type(tf_taskfarm) :: run
      integer :: length
      token = ''
      length = 0
      if (rank == 0) then
         if (run%open(uuid=uuid) /= TF_OK) then
            call complain('opening the run')
         else
            token = run%token()
            length = len(token)
            call run%free()
         end if
      end if
      call MPI_Bcast(length, 1, MPI_INTEGER, 0, MPI_COMM_WORLD)
      if (length == 0) return
      if (rank /= 0) token = repeat(' ', length)
      call MPI_Bcast(token, length, MPI_CHARACTER, 0, MPI_COMM_WORLD)
   end subroutine share_token

   !> Takes tasks until none is left, keeping the numbers of those done.
   !> Returns 0, or 1 after saying what failed.
   integer function work(w) result(status)
      type(tf_worker), intent(inout) :: w
      integer(int64) :: task
      integer(int64), allocatable :: grown(:)
      integer :: stat, step
      double precision :: result
      status = 0
      do
         stat = w%task(task)
         if (stat /= TF_OK) exit
         result = 0.0d0
         do step = 1, num_steps
            call simulate(task, step, result)
            stat = w%update(100.0_real64*step/num_steps)
            if (stat /= TF_OK) exit
         end do
         ! Marks the task done: its last reported progress was 100 %.
         if (stat == TF_OK) stat = w%done()
         if (stat /= TF_OK) then
            call complain('reporting on a task')
            if (w%requeue() /= TF_OK) call complain('giving the task back')
            status = 1
            return
         end if
         if (num_done == size(done)) then
            allocate (grown(2*size(done)))
            grown(1:num_done) = done(1:num_done)
            call move_alloc(grown, done)
         end if
         num_done = num_done + 1
         done(num_done) = task
      end do
      if (stat /= TF_NO_MORE_TASKS) then
         call complain('asking for a task')
         status = 1
      end if
   end function work

   !> Stands for one step of the real computation of a task.
   subroutine simulate(task, step, x)
      integer(int64), intent(in) :: task
      integer, intent(in) :: step
      double precision, intent(inout) :: x
      integer :: i
      do i = 1, 1000
         x = x + sin(dble(task*num_steps + step + i))/dble(i)
      end do
   end subroutine simulate

   !> Rank 0 prints the tasks of every rank (gathered), then the total.
   subroutine report()
      integer, allocatable :: counts(:), offsets(:)
      integer(int64), allocatable :: all(:)
      integer :: r, total
      allocate (counts(nranks), offsets(nranks))
      call MPI_Gather(num_done, 1, MPI_INTEGER, counts, 1, MPI_INTEGER, 0, MPI_COMM_WORLD)
      total = 0
      if (rank == 0) then
         do r = 1, nranks
            offsets(r) = total
            total = total + counts(r)
         end do
      end if
      allocate (all(max(total, 1)))
      call MPI_Gatherv(done, num_done, MPI_INTEGER8, all, counts, offsets, MPI_INTEGER8, &
                       0, MPI_COMM_WORLD)
      if (rank /= 0) return
      do r = 1, nranks
         write (*, '(a, i0, a, i0, a)', advance='no') 'rank ', r - 1, ': ', counts(r), ' tasks:'
         if (counts(r) > 0) write (*, '(*(1x, i0))', advance='no') all(offsets(r) + 1:offsets(r) + counts(r))
         write (*, '(a)') ''
      end do
      write (*, '(i0, a, i0, a)') nranks, ' ranks: ', total, ' tasks done'
   end subroutine report

   !> Says on stderr what failed on this rank and why.
   subroutine complain(what)
      character(*), intent(in) :: what
      write (error_unit, '(a, i0, 4a)') 'mpi_worker_f rank ', rank, ': ', what, ' failed: ', &
         tf_last_error()
   end subroutine complain

end program mpi_worker
