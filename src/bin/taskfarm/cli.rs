//! The command line: options, subcommands and help text (clap derive).
//!
//! Two spellings reach the same actions: the subcommands (`taskfarm info
//! UUID`) and the flags of the Python `manageTF` (`taskfarm UUID -i`), so that
//! `manageTF -b URL -u U -p P -l` works as `taskfarm -b URL -u U -p P -l`.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use taskfarm_worker::internal::run::{check_run_uuid, MAX_TASKS};

use crate::reap::{Options, DEFAULT_MAX_ATTEMPTS, DEFAULT_STALE_SECS};

const AFTER_HELP: &str = "\
Credentials and server (as in the library):
  TASKFARM_URL        base URL of the API when -b is not given
                      (default http://localhost:5000/api/)
  TASKFARM_USER       user name when -u is not given
  TASKFARM_PASSWORD   password when -p is not given; without it the password
                      is asked for (no echo) when stdin is a terminal
  TASKFARM_TOKEN      a token from `taskfarm token`: used instead of the
                      password (no password check on the server), which is
                      then needed only if the server refuses the token

Many workers on one run (a Slurm array, MPI ranks): each password check costs
the server about 0.25 s of CPU, so get a token once and give it to them all:
  export TASKFARM_TOKEN=$(taskfarm token)
  TASKFARM_TIMEOUT, TASKFARM_RETRIES, TASKFARM_BACKOFF, TASKFARM_CA_FILE,
  TASKFARM_LOG=debug  timeout per attempt, retries, backoff, extra CAs,
                      one line per request on stderr

Retries: an unreachable server is retried 4 times (about 4 s) by the
commands, each retry said on stderr (\"cannot reach URL ...: retry 2 of 4
in 0.6 s\"); workers built on the library keep its budget of 10 retries
(about 4.5 minutes). TASKFARM_RETRIES sets both. watch opens the run with
the short budget, then polls with the workers' one, saying
\"connection lost, retrying\".

Counts: the server counts a task as waiting, computing or done only once it
has been handed out to a worker, so a fresh run shows 0 for all three.
info and watch show the rest as \"not started\" (numNotStarted in the JSON):
numTasks minus waiting, computing and done. Counts that no run can have
(negative, more than numTasks, over 100 %) are a protocol error (exit 6).

Exit status:
  0    success (watch: the run is complete)
  1    local failure (cannot read the password or write the output)
  2    usage error
  3    cannot reach the server (after retries)
  4    authentication failed (wrong user name or password, refused token)
  5    not found (no such run or task)
  6    other server or protocol error
  130  watch stopped by Ctrl-C

manageTF spellings: taskfarm -l, taskfarm UUID -i|-r|-R|-d print exactly
what manageTF prints.";

/// `taskfarm --version`: the tool's version and the version of the library
/// it is built on, as the library's C ABI reports it (`tf_version`).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let library = taskfarm_worker::ffi::version::tf_version();
    // SAFETY: tf_version returns a static NUL-terminated string.
    let library = unsafe { std::ffi::CStr::from_ptr(library) }.to_string_lossy();
    format!(
        "{} (library taskfarm_worker {library})",
        env!("CARGO_PKG_VERSION")
    )
});

/// `taskfarm`: manage the runs of a taskfarm server.
#[derive(Debug, Parser)]
#[command(
    name = "taskfarm",
    version = VERSION.as_str(),
    about = "Manage the runs of a taskfarm server: list, inspect, reset, delete, create, watch",
    after_help = AFTER_HELP,
    group(ArgGroup::new("mode").multiple(false))
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Run UUID, for the manageTF flags -i, -r, -R, -d
    #[arg(value_name = "UUID", value_parser = parse_uuid)]
    pub uuid: Option<String>,

    /// List all runs (manageTF)
    #[arg(short = 'l', long = "list", group = "mode")]
    pub list: bool,

    /// Print information about run UUID (manageTF)
    #[arg(short = 'i', long = "info", group = "mode")]
    pub info: bool,

    /// Reset the unfinished tasks of run UUID (manageTF)
    #[arg(short = 'r', long = "reset", group = "mode")]
    pub reset: bool,

    /// Reset all tasks of run UUID (manageTF)
    #[arg(short = 'R', long = "reset-all", group = "mode")]
    pub reset_all: bool,

    /// Delete run UUID (manageTF)
    #[arg(short = 'd', long = "delete", group = "mode")]
    pub delete: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options that every command takes, before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Base URL of the API [default: $TASKFARM_URL, else http://localhost:5000/api/]
    #[arg(short = 'b', long = "baseurl", value_name = "URL", global = true)]
    pub baseurl: Option<String>,

    /// The taskfarm user [default: $TASKFARM_USER]
    #[arg(short = 'u', long = "user", value_name = "USER", global = true)]
    pub user: Option<String>,

    /// The user's password [default: $TASKFARM_PASSWORD, else asked for on a terminal]
    #[arg(short = 'p', long = "password", value_name = "PASSWORD", global = true)]
    pub password: Option<String>,

    /// Machine-readable output: JSON on stdout
    #[arg(long = "json", global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List all runs: id, UUID, number of tasks
    List,
    /// Show a run: id, UUID, tasks, not started, waiting, computing, done, percent done
    Info {
        /// Run UUID
        #[arg(value_parser = parse_uuid)]
        uuid: String,
    },
    /// Set the unfinished tasks back to waiting (keeping their percentage)
    Reset {
        /// Run UUID
        #[arg(value_parser = parse_uuid)]
        uuid: String,
        /// Set every task back to waiting at 0 %, the finished ones too
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Delete a run and its tasks
    Delete {
        /// Run UUID
        #[arg(value_parser = parse_uuid)]
        uuid: String,
    },
    /// Create a run of N tasks and print its UUID
    Create {
        /// Number of tasks
        #[arg(value_parser = clap::value_parser!(i64).range(1..=MAX_TASKS))]
        num_tasks: i64,
    },
    /// Show one task's status and percentage
    Task {
        /// Run UUID
        #[arg(value_parser = parse_uuid)]
        uuid: String,
        /// Task number (0-based)
        #[arg(value_parser = clap::value_parser!(i64).range(0..MAX_TASKS))]
        id: i64,
    },
    /// Print a new token alone on stdout, for `export TASKFARM_TOKEN=$(taskfarm token)`
    ///
    /// One password check on the server; workers started with TASKFARM_TOKEN
    /// need none. The token is a secret: it gives the user's access to the
    /// server, and it does not expire (until the server's SECRET_KEY changes).
    /// `TASKFARM_TOKEN` itself is not used here. With --json: {"token": "..."}.
    Token,
    /// Follow a run's progress until it is complete (or Ctrl-C)
    Watch {
        /// Run UUID
        #[arg(value_parser = parse_uuid)]
        uuid: String,
        /// Seconds between two polls
        #[arg(
            short = 'n',
            long = "interval",
            value_name = "SECONDS",
            default_value = "1",
            value_parser = parse_interval
        )]
        interval: Duration,
    },
    /// Give back the tasks of workers that died (from their journals, TASKFARM_JOURNAL)
    #[command(after_help = REAP_HELP)]
    Reap(ReapArgs),
    /// Run a command once per task: a worker for any program
    #[command(after_help = RUN_HELP.as_str())]
    Run(RunArgs),
    /// Summarise the job logs of taskfarm run: durations, failures, attempts, projected end
    ///
    /// Per-task durations of the attempts that finished (median, p95, the
    /// slowest), every failed attempt with its message, the attempts, CPU
    /// and memory, the rate and the run's projected end (the tasks left
    /// from --tasks, else asked of the server).
    Report {
        /// A job log of taskfarm run --joblog (several: one per job)
        #[arg(long = "joblog", value_name = "FILE", required = true, num_args = 1..)]
        joblogs: Vec<PathBuf>,
        /// The number of tasks of the run (else asked of the server)
        #[arg(long = "tasks", value_name = "N",
              value_parser = clap::value_parser!(i64).range(1..=MAX_TASKS))]
        tasks: Option<i64>,
    },
    /// List the tasks with failed or crashed attempts (from the journal directory)
    ///
    /// Each task with its failed attempts (tf_worker_fail, a command of
    /// `taskfarm run` that failed, a release below 100 %, a worker that died),
    /// the last message, and whether it is set aside (left computing once its
    /// attempts reached TASKFARM_MAX_ATTEMPTS or reap's --max-attempts).
    /// Reads files only. `taskfarm reap UUID --journal DIR --release TASK`
    /// gives a task set aside back.
    Failed {
        /// Run UUID
        #[arg(value_parser = parse_uuid)]
        uuid: String,
        /// The journal directory of the run's workers (their TASKFARM_JOURNAL)
        #[arg(long = "journal", value_name = "DIR")]
        journal: PathBuf,
    },
    /// Print the completion script for a shell (make install puts them where the shells look)
    ///
    /// For example: taskfarm completions bash > ~/.local/share/bash-completion/completions/taskfarm
    Completions {
        /// The shell
        shell: Shell,
    },
    /// Print the man page taskfarm(1) in roff (make install puts it in share/man/man1)
    ///
    /// For example: taskfarm manpage > ~/.local/share/man/man1/taskfarm.1
    Manpage,
}

/// The shells `taskfarm completions` writes a script for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

const REAP_HELP: &str = "\
A worker is gone when that is proved: on the same machine (boot id) and in the
same PID namespace, its process ended or its pid now belongs to a later
process; under Slurm, squeue no longer shows its job or step (a suspended job
is alive); its program freed it with a task held; or its heartbeat stood still
between this reaper's own looks for longer than --stale and than 3 of the
worker's heartbeat intervals (the first look at a heartbeat proves nothing).
For a gone worker: its kept dones are delivered, its task is given back
(waiting, percentage kept) if the server still shows it computing, an attempt
is counted for that task (once per worker), and its journal file is removed.
A task that was held by --max-attempts workers that died is set aside instead
(left computing, so no worker takes it) until released with --release TASK.
Only journal files owned by your own user are acted on (--owner for others).
Attempts, set-aside tasks and the looks at heartbeats are kept in
DIR/reap-<run>.json; DIR/reap-<run>.lock lets one reaper per run work at a
time: run it beside the job (--watch), or as a Slurm job of its own.";

/// `taskfarm run --help`'s text after the options: the command's
/// environment, then the exit statuses (`run/exit_status.rs`).
static RUN_HELP: LazyLock<String> =
    LazyLock::new(|| format!("{RUN_ENVIRONMENT}\n\n{}", crate::run::exit_status::HELP));

const RUN_ENVIRONMENT: &str = "\
`{}` in COMMAND or an ARG becomes the task number. The command's environment
has TASKFARM_TASK (the task), TASKFARM_ATTEMPT (1 + its failed attempts known
to the journal directory), TASKFARM_RUN (the run's UUID) and TASKFARM_PROGRESS,
a file: `echo 40 > \"$TASKFARM_PROGRESS\"` reports 40 %. Exit status 0: the
task is done. Any other, or a signal: a failed attempt (handed back; with a
journal, counted across workers and set aside at TASKFARM_MAX_ATTEMPTS,
default 3), whose message ends with the last lines of its stderr.

Each command runs in a process group of its own, stdin from /dev/null; what
it leaves running in that group is killed when it ends, and it is killed if
taskfarm run dies. The wall time (TASKFARM_DEADLINE, a Slurm job's end) is
honoured: no task is started that the time left cannot fit.";

/// `taskfarm run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run UUID
    #[arg(value_parser = parse_uuid)]
    pub uuid: String,
    /// Run N tasks at once (N workers in this process)
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: u32,
    /// A command still running after SECONDS gets SIGTERM (a failed attempt, "timed out")
    #[arg(long = "timeout", value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// SIGKILL this many seconds after SIGTERM (a timeout, a stop signal)
    #[arg(long = "kill-after", value_name = "SECONDS", default_value_t = 5.0,
          value_parser = parse_seconds)]
    pub kill_after: f64,
    /// Each attempt's stdout and stderr to DIR/task-T-attempt-A.{stdout,stderr}
    /// [default: passed through]
    #[arg(long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Append one JSON line per attempt to FILE (taskfarm report reads it)
    #[arg(long = "joblog", value_name = "FILE")]
    pub joblog: Option<PathBuf>,
    /// Keep the workers' journals (and attempts) in DIR [default: $TASKFARM_JOURNAL]
    #[arg(long = "journal", value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

impl RunArgs {
    /// The request for the `run` module.
    pub fn request(&self) -> crate::run::Request {
        crate::run::Request {
            uuid: self.uuid.clone(),
            jobs: self.jobs as usize,
            timeout: self.timeout.map(Duration::from_secs_f64),
            kill_after: Duration::from_secs_f64(self.kill_after),
            output: self.output.clone(),
            joblog: self.joblog.clone(),
            journal: self.journal.clone(),
            command: self.command.clone(),
        }
    }
}

/// `taskfarm reap` options.
#[derive(Debug, Args)]
pub struct ReapArgs {
    /// Run UUID
    #[arg(value_parser = parse_uuid)]
    pub uuid: String,
    /// The journal directory of the run's workers (their TASKFARM_JOURNAL)
    #[arg(long = "journal", value_name = "DIR")]
    pub journal: PathBuf,
    /// A heartbeat that stood still this long (and 3 of its worker's intervals) means the worker is gone
    #[arg(long = "stale", value_name = "SECONDS", default_value_t = DEFAULT_STALE_SECS,
          value_parser = parse_seconds)]
    pub stale: f64,
    /// Also act on journal files owned by this user (a name or uid; repeatable): only your own by default
    #[arg(long = "owner", value_name = "USER", value_parser = parse_user)]
    pub owners: Vec<u32>,
    /// Set a task aside once this many workers died holding it
    #[arg(long = "max-attempts", value_name = "N", default_value_t = DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_attempts: u32,
    /// Repeat every SECONDS until every task is done (or set aside)
    #[arg(long = "watch", value_name = "SECONDS", value_parser = parse_interval)]
    pub watch: Option<Duration>,
    /// Say what would be done, change nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// When no live worker is left, restart the tasks computing that no live worker holds (seen in two passes)
    #[arg(long = "restart-orphans")]
    pub restart_orphans: bool,
    /// Release a task set aside: forget its attempts and give it back
    #[arg(long = "release", value_name = "TASK",
          value_parser = clap::value_parser!(i64).range(0..MAX_TASKS),
          conflicts_with_all = ["watch", "restart_orphans"])]
    pub release: Option<i64>,
}

impl ReapArgs {
    /// The request for the `reap` module.
    pub fn request(&self, json: bool) -> crate::reap::Request<'_> {
        crate::reap::Request {
            uuid: &self.uuid,
            journal: &self.journal,
            options: Options {
                stale_secs: self.stale,
                max_attempts: self.max_attempts,
                dry_run: self.dry_run,
                restart_orphans: self.restart_orphans,
                owners: self.owners.clone(),
            },
            watch: self.watch,
            release: self.release,
            json,
        }
    }
}

/// A user name or uid, as the uid.
fn parse_user(text: &str) -> Result<u32, String> {
    if let Ok(uid) = text.trim().parse::<u32>() {
        return Ok(uid);
    }
    let name =
        std::ffi::CString::new(text.trim()).map_err(|_| format!("{text:?} is not a user"))?;
    // SAFETY: getpwnam takes a valid NUL-terminated name; the entry it
    // returns is read at once, before any other call could reuse it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(format!("no user {text:?} (give a name or a uid)"));
    }
    // SAFETY: not null: a valid passwd entry.
    Ok(unsafe { (*entry).pw_uid })
}

/// A number of seconds, more than 0 and at most ten years.
fn parse_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3.2e8) {
        return Err(format!("{text} s is outside 0..3.2e8 seconds"));
    }
    Ok(seconds)
}

/// A run UUID, checked as the library checks it before it goes into a URL.
fn parse_uuid(text: &str) -> Result<String, String> {
    check_run_uuid(text)
        .map(str::to_owned)
        .map_err(|e| e.message().to_owned())
}

/// The longest poll interval accepted: one day.
const MAX_INTERVAL_SECS: f64 = 86_400.0;

fn parse_interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !seconds.is_finite() || !(0.05..=MAX_INTERVAL_SECS).contains(&seconds) {
        return Err(format!(
            "{text} s is outside 0.05..{MAX_INTERVAL_SECS} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The names of the subcommands, as `--help` lists them.
pub fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|name| name != "help")
        .collect()
}

/// The first word of `args` (the arguments after the program's name) that
/// is neither an option nor an option's value: where a command goes.
pub fn first_word(args: &[String]) -> Option<&str> {
    use clap::CommandFactory;
    let command = Cli::command();
    let takes_value = |flag: &str| {
        command.get_arguments().any(|a| {
            !a.is_positional()
                && a.get_action().takes_values()
                && match flag.strip_prefix("--") {
                    Some(long) => a.get_long() == Some(long),
                    None => flag.len() == 2 && a.get_short() == flag.chars().nth(1),
                }
        })
    };
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        if arg == "--" {
            return words.next().map(String::as_str);
        }
        if arg.starts_with('-') && arg.len() > 1 {
            if takes_value(arg) {
                words.next();
            }
            continue;
        }
        return Some(arg);
    }
    None
}

/// The name nearest to `word`, when a slip of at most two letters (or a
/// prefix) away.
pub fn closest<'a>(word: &str, names: &'a [String]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    names
        .iter()
        .map(|name| {
            let distance = if name.starts_with(&word) {
                0
            } else {
                edit_distance(&word, name)
            };
            (distance, name)
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.as_str())
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl Cli {
    /// True when a manageTF flag or the top-level UUID was given.
    pub fn uses_manage_tf_spelling(&self) -> bool {
        self.uuid.is_some() || self.list || self.info || self.reset || self.reset_all || self.delete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn slips_find_the_command_meant() {
        let names = command_names();
        assert_eq!(
            names,
            [
                "list",
                "info",
                "reset",
                "delete",
                "create",
                "task",
                "token",
                "watch",
                "reap",
                "run",
                "report",
                "failed",
                "completions",
                "manpage"
            ]
        );
        for (slip, meant) in [
            ("lst", "list"),
            ("lsit", "list"),
            ("inf", "info"),
            ("Info", "info"),
            ("wach", "watch"),
            ("delte", "delete"),
            ("reste", "reset"),
        ] {
            assert_eq!(closest(slip, &names), Some(meant), "{slip}");
        }
        assert_eq!(closest("frobnicate", &names), None);
    }

    #[test]
    fn intervals_are_checked() {
        assert_eq!(parse_interval("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("0.25").unwrap(), Duration::from_millis(250));
        for bad in ["0", "-1", "nan", "inf", "x", "1e9"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
