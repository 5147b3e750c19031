//! `taskfarm`: the command-line tool for the runs of a taskfarm server, built
//! on the library's protocol client. It replaces the Python `manageTF` (same
//! options, same output) and adds subcommands, JSON output and `watch`.
//!
//! - `cli`: the command line (clap);
//! - `login`: URL, user and password from options, environment or a prompt;
//! - `password_prompt`: the no-echo prompt on the terminal (termios);
//! - `commands`: list, info, reset, delete, create, task;
//! - `watch`: the live progress of a run;
//! - `reap`: the tasks of dead workers given back (worker journals);
//! - `format`, `output`: text and JSON on stdout;
//! - `failure`: exit statuses and the one-line error messages.
//!
//! The modules live in `src/bin/taskfarm/` (hence the `#[path]`s: a crate
//! root in `src/bin/` looks for its modules beside itself).

#[path = "taskfarm/cli.rs"]
mod cli;
#[path = "taskfarm/commands.rs"]
mod commands;
#[path = "taskfarm/failure.rs"]
mod failure;
#[path = "taskfarm/format.rs"]
mod format;
#[path = "taskfarm/login.rs"]
mod login;
#[path = "taskfarm/output.rs"]
mod output;
#[path = "taskfarm/password_prompt.rs"]
mod password_prompt;
#[path = "taskfarm/reap.rs"]
mod reap;
#[path = "taskfarm/watch.rs"]
mod watch;

use clap::error::ErrorKind as ClapErrorKind;
use clap::Parser;

use cli::{Cli, Command};
use commands::Style;
use failure::{exit_with, Failure};

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "taskfarm: internal error (a bug): {}",
            failure::one_line(&info.to_string())
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => usage_error(error),
    };
    if let Err(failure) = run(&cli) {
        exit_with(failure.code, &failure.message);
    }
}

/// Help and version as clap prints them; any other parse error as one line
/// with clap's exit status (2).
fn usage_error(error: clap::Error) -> ! {
    match error.kind() {
        ClapErrorKind::DisplayHelp | ClapErrorKind::DisplayVersion => error.exit(),
        _ => {
            // clap's message up to the first blank line ("error: ...", maybe
            // an indented list), without the "Usage:" and tips after it.
            let text = error.to_string();
            let first = text.split("\n\n").next().unwrap_or("");
            let message = first.strip_prefix("error: ").unwrap_or(first);
            exit_with(
                error.exit_code(),
                &format!("{message} (see 'taskfarm --help')"),
            )
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let style = if cli.global.json {
        Style::Json
    } else {
        Style::Human
    };
    match &cli.command {
        Some(_) if cli.uses_manage_tf_spelling() => Err(Failure::usage(
            "the manageTF spellings (UUID, -l, -i, -r, -R, -d) do not go with a command \
             (see 'taskfarm --help')",
        )),
        Some(command) => {
            let settings = login::settings(&cli.global)?;
            match command {
                Command::List => commands::list(&settings, style),
                Command::Info { uuid } => commands::info(&settings, uuid, style),
                Command::Reset { uuid, all } => commands::reset(&settings, uuid, *all, style),
                Command::Delete { uuid } => commands::delete(&settings, uuid, style),
                Command::Create { num_tasks } => commands::create(&settings, *num_tasks, style),
                Command::Task { uuid, id } => commands::task(&settings, uuid, *id, style),
                Command::Watch { uuid, interval } => {
                    watch::watch(&settings, uuid, *interval, cli.global.json)
                }
                Command::Reap(args) => reap::reap(&settings, &args.request(cli.global.json)),
            }
        }
        None => manage_tf(cli),
    }
}

/// The flags of the Python `manageTF`, with its exact output.
fn manage_tf(cli: &Cli) -> Result<(), Failure> {
    let style = if cli.global.json {
        Style::Json
    } else {
        Style::ManageTf
    };
    if cli.list {
        let settings = login::settings(&cli.global)?;
        return commands::list(&settings, style);
    }
    let Some(uuid) = cli.uuid.as_deref() else {
        return Err(Failure::usage(
            "no run UUID given, and no command (see 'taskfarm --help')",
        ));
    };
    let settings = login::settings(&cli.global)?;
    if cli.info {
        commands::info(&settings, uuid, style)
    } else if cli.reset_all {
        commands::reset(&settings, uuid, true, style)
    } else if cli.reset {
        commands::reset(&settings, uuid, false, style)
    } else if cli.delete {
        commands::delete(&settings, uuid, style)
    } else {
        // manageTF with a UUID and no flag only opens the run.
        commands::open(&settings, uuid).map(drop)
    }
}
