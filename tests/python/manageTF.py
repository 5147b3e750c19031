#!/usr/bin/env python3
"""tests/python/manageTF.py: the Python client's manageTF script, written
afresh from its documented behaviour, with one import line changed to
taskfarm_worker_rs. tests/python/run.sh runs it beside the real manageTF
(the Python client's, in the harness venv) with the same arguments and
compares their output and what they did on the server.

    manageTF.py [-b URL] [-u USER] [-p PASSWORD] -l       id uuid numTasks, one run a line
    manageTF.py [...] UUID -i                             id uuid numTasks (waiting,computing,done) percentDone
    manageTF.py [...] UUID -r | -R | -d                   restart unfinished tasks | every task | delete
"""

import argparse

from taskfarm_worker_rs import TaskFarm, tfRuns


def main():
    parser = argparse.ArgumentParser(description="manage taskfarm runs")
    parser.add_argument("-b", "--baseurl", default="http://localhost:5000/api/", help="the API's base URL")
    parser.add_argument("-u", "--user", help="the taskfarm user")
    parser.add_argument("-p", "--password", help="the user's password")
    parser.add_argument("uuid", nargs="?", help="the run")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-l", "--list", action="store_true", help="list the runs")
    mode.add_argument("-i", "--info", action="store_true", help="the run's counts")
    mode.add_argument("-r", "--reset", action="store_true", help="unfinished tasks back to waiting")
    mode.add_argument("-R", "--reset-all", action="store_true", help="every task back to waiting")
    mode.add_argument("-d", "--delete", action="store_true", help="delete the run")
    args = parser.parse_args()

    if args.list:
        for run in tfRuns(args.user, args.password, url_base=args.baseurl):
            print(run["id"], run["uuid"], run["numTasks"])
        return
    if args.uuid is None:
        parser.error("a run UUID is needed")
    tf = TaskFarm(args.user, args.password, uuid=args.uuid, url_base=args.baseurl)
    if args.info:
        i = tf.info("")
        print(f"{i['id']} {i['uuid']} {i['numTasks']} ({i['numWaiting']},{i['numComputing']},{i['numDone']}) "
              f"{i['percentDone']}")
    elif args.reset_all:
        tf.restart(everything=True)
    elif args.reset:
        tf.restart()
    elif args.delete:
        tf.delete()


if __name__ == "__main__":
    main()
