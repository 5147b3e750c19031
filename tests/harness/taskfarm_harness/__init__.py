"""The test harness's real taskfarm server, Slurm cluster and Grid Engine
cell, one concern per module.

- errors.py          HarnessError: a failure reported on stderr with exit 1
- loopback.py        the host the servers listen on, free ports
- process_groups.py  processes and process groups through /proc
- state.py           the state directory: server.json, server.log
- database.py        the database mode and the tables and user of taskfarm
- postgres_cluster.py  a private PostgreSQL cluster (--db postgresql)
- server.py          the server process: start, wait until ready, stop
- slurm_config.py    the Slurm cluster's state directory: paths,
                     cluster.json, slurm.conf, munge key; its programs
- slurm_processes.py the processes of a Slurm cluster
- slurm_teardown.py  jobs cancelled, daemons stopped, leftovers killed
- slurm_supervisor.py  the daemons' parent: start, watch, stop
- gridengine_config.py  the Grid Engine cell's state directory: paths,
                     cluster.json, the private SGE_ROOT and cell, the queue
- gridengine_teardown.py  the cell's processes; daemons and jobs stopped
- gridengine_supervisor.py  the daemons' parent: start, configure, watch, stop

tests/harness/taskfarm_server.py, tests/harness/slurm_cluster.py and
tests/harness/gridengine_cluster.py are the command lines over them (the
benchmark, bench/, imports them too).
"""
