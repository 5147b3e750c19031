"""The test harness's real taskfarm server and Slurm cluster, one concern
per module.

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

tests/harness/taskfarm_server.py and tests/harness/slurm_cluster.py are the
command lines over them (the benchmark, bench/, imports them too).
"""
