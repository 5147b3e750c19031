"""The Grid Engine cell's state directory: where every file goes,
cluster.json, the private SGE_ROOT and its cell (bootstrap, act_qmaster,
host_aliases, the spooled global configuration), the queue and scheduler
configurations; the programs it needs, and Grid Engine's clients run against
the cell."""

import os
import shutil
import socket
import subprocess

from .errors import HarnessError
from .state import read_json, write_json

CLUSTER_JSON = "cluster.json"
HARNESS_LOG = "harness.log"
CELL = "taskfarm"
QUEUE = "test.q"
# Debian's installation: the binaries (behind /usr/bin's wrapper script) and
# the templates the package's own init_cluster script spools.
LIBEXEC = "/usr/lib/gridengine"
SYSTEM_ROOT = "/var/lib/gridengine"
TEMPLATES = "/usr/share/gridengine"

PROGRAMS = {
    f"{LIBEXEC}/sge_qmaster": "gridengine-master",
    f"{LIBEXEC}/sge_execd": "gridengine-exec",
    f"{LIBEXEC}/sge_shepherd": "gridengine-exec",
    f"{LIBEXEC}/spoolinit": "gridengine-client",
    f"{LIBEXEC}/spooldefaults": "gridengine-client",
    "/usr/bin/qconf": "gridengine-client",
    "/usr/bin/qsub": "gridengine-client",
    "/usr/bin/qstat": "gridengine-client",
    f"{TEMPLATES}/default-configuration": "gridengine-common",
}


def paths(state_dir):
    """Every path of the cell of state_dir, by role."""
    d = os.path.abspath(state_dir)
    root = os.path.join(d, "root")
    common = os.path.join(root, CELL, "common")
    return {
        "dir": d,
        "json": os.path.join(d, CLUSTER_JSON),
        "log": os.path.join(d, HARNESS_LOG),
        "root": root,
        "common": common,
        "bootstrap": os.path.join(common, "bootstrap"),
        "act_qmaster": os.path.join(common, "act_qmaster"),
        "host_aliases": os.path.join(common, "host_aliases"),
        "settings": os.path.join(common, "settings.sh"),
        "qmaster_spool": os.path.join(d, "spool", "qmaster"),
        "execd_spool": os.path.join(d, "spool", "execd"),
        "qmaster_log": os.path.join(d, "spool", "qmaster", "messages"),
        "tmp": os.path.join(d, "tmp"),
        "conf": os.path.join(d, "conf"),
        "run": os.path.join(d, "run"),
        "daemons": os.path.join(d, "run", "daemons.json"),
    }


def execd_log(p, host):
    """The execd's messages (its spool directory is named after the host as
    Grid Engine resolves it, which may be an alias: the first one there)."""
    spool = p["execd_spool"]
    for name in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
        log = os.path.join(spool, name, "messages")
        if os.path.exists(log):
            return log
    return os.path.join(spool, host, "messages")


def read_info(state_dir):
    """The cluster.json of state_dir, None when there is none."""
    return read_json(paths(state_dir)["json"])


def write_info(state_dir, info):
    write_json(paths(state_dir)["json"], info)


def check_programs():
    missing = sorted({pkg for prog, pkg in PROGRAMS.items() if not os.path.exists(prog)})
    if missing:
        raise HarnessError(f"Grid Engine is not installed (missing {', '.join(missing)}): "
                           f"apt-get install -y {' '.join(missing)}")


def client_env(p, ports):
    """The environment of Grid Engine's clients (and daemons) for the cell:
    SGE_ROOT, SGE_CELL and the two ports, no SGE_ND."""
    env = dict(os.environ)
    env.pop("SGE_ND", None)
    env.update({"SGE_ROOT": p["root"], "SGE_CELL": CELL,
                "SGE_QMASTER_PORT": str(ports["qmaster"]),
                "SGE_EXECD_PORT": str(ports["execd"])})
    return env


def client(p, ports, *args, timeout=30):
    """Runs a Grid Engine client against the cell: (exit status, stdout +
    stderr). A client that hangs counts as failed."""
    try:
        out = subprocess.run(list(args), env=client_env(p, ports), cwd=p["dir"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"{args[0]} took more than {timeout} s"
    except OSError as e:
        return 127, str(e)
    return out.returncode, out.stdout.decode("utf-8", "replace")


def host_names():
    """(the node's name, its aliases): this host's short name, and the names
    its addresses resolve back to. Grid Engine compares the name a client
    gives with the name its address resolves to ("client IP resolved to
    host name localhost"), and here the host name resolves to 127.0.0.1,
    which resolves back to localhost: host_aliases makes them one host."""
    node = socket.gethostname().split(".")[0]
    aliases = {"localhost", socket.gethostname(), socket.getfqdn()}
    for name in (node, "localhost"):
        try:
            addr = socket.gethostbyname(name)
            aliases.add(socket.gethostbyaddr(addr)[0])
        except OSError:
            pass
    aliases.discard(node)
    return node, sorted(a for a in aliases if a)


def write_cell(p, node, aliases, ports):
    """A fresh cell: the private SGE_ROOT (links to Debian's bin, lib,
    utilbin and util), bootstrap (classic spooling into the state
    directory, daemons run as the user who starts them), act_qmaster,
    host_aliases, and the global configuration spooled with Debian's
    spoolinit and spooldefaults, as the package's init_cluster does --
    with min_uid and min_gid 0 (Debian's 1000 refuses root's jobs) and the
    execd spool in the state directory."""
    for d in ("root", "qmaster_spool", "execd_spool", "tmp", "run"):
        shutil.rmtree(p[d], ignore_errors=True)
    for d in ("common", "qmaster_spool", "execd_spool", "tmp", "run"):
        os.makedirs(p[d], exist_ok=True)
    os.makedirs(os.path.join(p["qmaster_spool"], "job_scripts"), exist_ok=True)
    # The jobs' TMPDIR: Grid Engine creates it as the job's user.
    os.chmod(p["tmp"], 0o1777)
    for name in ("bin", "lib", "utilbin", "util"):
        os.symlink(os.path.join(SYSTEM_ROOT, name), os.path.join(p["root"], name))
    spooling = f"{p['common']};{p['qmaster_spool']}"
    _write(p["bootstrap"], f"""\
admin_user              none
default_domain          none
ignore_fqdn             true
spooling_method         classic
spooling_lib            libspoolc
spooling_params         {spooling}
binary_path             {LIBEXEC}
qmaster_spool_dir       {p['qmaster_spool']}
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1
""")
    _write(p["act_qmaster"], node + "\n")
    _write(p["host_aliases"], " ".join([node, *aliases]) + "\n")
    _write(p["settings"], f"""\
SGE_ROOT={p['root']}; export SGE_ROOT
SGE_CELL={CELL}; export SGE_CELL
SGE_QMASTER_PORT={ports['qmaster']}; export SGE_QMASTER_PORT
SGE_EXECD_PORT={ports['execd']}; export SGE_EXECD_PORT
""")
    with open(os.path.join(TEMPLATES, "default-configuration"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    changes = {"execd_spool_dir": p["execd_spool"], "min_uid": "0", "min_gid": "0",
               "mailer": "/bin/true", "load_report_time": "00:00:05"}
    conf = []
    for line in lines:
        key = line.split()[0] if line.split() else ""
        conf.append(f"{key} {changes[key]}" if key in changes else line)
    os.makedirs(p["conf"], exist_ok=True)
    global_conf = os.path.join(p["conf"], "global")
    _write(global_conf, "\n".join(conf) + "\n")
    env = client_env(p, ports)
    resources = os.path.join(TEMPLATES, "util", "resources")
    for args in ([f"{LIBEXEC}/spoolinit", "classic", "libspoolc", spooling, "init"],
                 [f"{LIBEXEC}/spooldefaults", "configuration", global_conf],
                 [f"{LIBEXEC}/spooldefaults", "complexes", os.path.join(resources, "centry")],
                 [f"{LIBEXEC}/spooldefaults", "usersets", os.path.join(resources, "usersets")],
                 [f"{LIBEXEC}/spooldefaults", "managers", "root"]):
        out = subprocess.run(args, env=env, cwd=p["dir"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if out.returncode != 0:
            raise HarnessError(f"{' '.join(args)} failed: "
                               f"{out.stdout.decode('utf-8', 'replace')}")


def write_queue(p, node, slots):
    """The queue's and the scheduler's configuration files for qconf: one
    queue on the node with `slots` slots, no parallel environment, no load
    thresholds (a loaded test machine must not stop it), no run-time limit
    of its own; the scheduler runs every second and at every submission,
    so that a job starts at once."""
    queue = os.path.join(p["conf"], "queue")
    _write(queue, f"""\
qname                 {QUEUE}
hostlist              {node}
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               NONE
rerun                 FALSE
slots                 {slots}
tmpdir                {p['tmp']}
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      unix_behavior
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
""" + "".join(f"{limit:<22}INFINITY\n" for limit in (
        "s_rt", "h_rt", "s_cpu", "h_cpu", "s_fsize", "h_fsize", "s_data", "h_data",
        "s_stack", "h_stack", "s_core", "h_core", "s_rss", "h_rss", "s_vmem",
        "h_vmem")))
    return queue


def scheduler_conf(p, current):
    """The scheduler configuration `current` (qconf -ssconf) with
    schedule_interval 0:0:1 and a run at each submission and end."""
    changes = {"schedule_interval": "0:0:1", "flush_submit_sec": "1",
               "flush_finish_sec": "1"}
    lines = []
    for line in current.splitlines():
        key = line.split()[0] if line.split() else ""
        lines.append(f"{key} {changes[key]}" if key in changes else line)
    path = os.path.join(p["conf"], "scheduler")
    _write(path, "\n".join(lines) + "\n")
    return path


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
