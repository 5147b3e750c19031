"""The test harness's real taskfarm server, one concern per module.

- errors.py          HarnessError: a failure reported on stderr with exit 1
- loopback.py        the host the servers listen on, free ports
- process_groups.py  processes and process groups through /proc
- state.py           the state directory: server.json, server.log
- database.py        the database mode and the tables and user of taskfarm
- postgres_cluster.py  a private PostgreSQL cluster (--db postgresql)
- server.py          the server process: start, wait until ready, stop

tests/harness/taskfarm_server.py is the command line over them (the
benchmark, bench/, imports them too).
"""
