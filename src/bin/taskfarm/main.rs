//! `taskfarm`: the command-line tool for the runs of a taskfarm server, built
//! on the library's protocol client. It replaces the Python `manageTF` (same
//! options, same output) and adds subcommands, JSON output and `watch`.
//!
//! - `cli`: the command line (clap);
//! - `login`: URL, user and password from options, environment or a prompt;
//! - `password_prompt`: the no-echo prompt on the terminal (termios);
//! - `session`: the commands' retry budget and their retry lines on stderr;
//! - `commands`: list, info, reset, delete, create, task;
//! - `watch`: the live progress of a run;
//! - `docs`: the shell completions and the man page;
//! - `reap`: the tasks of dead workers given back (worker journals);
//! - `failed`: the tasks with failed attempts (the journal directory);
//! - `run`: a worker for any command (a folder of its own);
//! - `report`: what the job logs of `taskfarm run` say;
//! - `format`, `output`: text and JSON on stdout;
//! - `failure`: exit statuses and the one-line error messages.
//!
//! The modules live beside this file in `src/bin/taskfarm/`; `reap/` and
//! `run/` are folders of their own (each `mod.rs` maps its folder).

mod cli;
mod commands;
mod docs;
mod failed;
mod failure;
mod format;
mod login;
mod output;
mod password_prompt;
mod reap;
mod report;
mod run;
mod session;
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
            if let Some(message) = unknown_command(&error) {
                exit_with(error.exit_code(), &message)
            }
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

/// A word that clap took for the manageTF UUID because it is no command
/// (`taskfarm lst`): "unknown command 'lst' (did you mean 'list'?)"; also
/// when more words follow it (`taskfarm infoo UUID`, which clap reports as an
/// unexpected argument: the UUID). A word with a digit in it is taken for a
/// mistyped UUID and left to clap.
fn unknown_command(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let word = match error.kind() {
        ClapErrorKind::ValueValidation => {
            match error.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(arg)) if arg == "[UUID]" => {}
                _ => return None,
            }
            match error.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(word)) => word.clone(),
                _ => return None,
            }
        }
        ClapErrorKind::UnknownArgument => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            cli::first_word(&args)?.to_owned()
        }
        _ => return None,
    };
    let names = cli::command_names();
    if word.chars().any(|c| c.is_ascii_digit()) || word.starts_with('-') || names.contains(&word) {
        return None;
    }
    let word = &word;
    let hint = match cli::closest(word, &names) {
        Some(name) => format!("did you mean '{name}'?"),
        None => format!("the commands are {}", names.join(", ")),
    };
    Some(format!(
        "unknown command '{word}' ({hint}) (see 'taskfarm --help')"
    ))
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
            // The server's settings (and maybe the password prompt) only for
            // the commands that talk to it.
            let settings = || session::settings(&cli.global);
            match command {
                Command::List => commands::list(&settings()?, style),
                Command::Info { uuid } => commands::info(&settings()?, uuid, style),
                Command::Reset { uuid, all } => commands::reset(&settings()?, uuid, *all, style),
                Command::Delete { uuid } => commands::delete(&settings()?, uuid, style),
                Command::Create { num_tasks } => commands::create(&settings()?, *num_tasks, style),
                Command::Task { uuid, id } => commands::task(&settings()?, uuid, *id, style),
                Command::Token => commands::token(&session::credentials(&cli.global)?, style),
                Command::Watch { uuid, interval } => {
                    watch::watch(&settings()?, uuid, *interval, cli.global.json)
                }
                Command::Reap(args) => reap::reap(&settings()?, &args.request(cli.global.json)),
                Command::Run(args) => run::run(&settings()?, &args.request()),
                Command::Report { joblogs, tasks } => report::report(
                    &report::Request {
                        joblogs: joblogs.clone(),
                        tasks: *tasks,
                        json: cli.global.json,
                    },
                    settings,
                ),
                Command::Failed { uuid, journal } => failed::failed(uuid, journal, cli.global.json),
                Command::Completions { shell } => docs::completions(*shell),
                Command::Manpage => docs::manpage(),
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
        let settings = session::settings(&cli.global)?;
        return commands::list(&settings, style);
    }
    let Some(uuid) = cli.uuid.as_deref() else {
        return Err(Failure::usage(
            "no run UUID given, and no command (see 'taskfarm --help')",
        ));
    };
    if !(cli.info || cli.reset_all || cli.reset || cli.delete) {
        // manageTF opens the run and prints nothing: a slip, not a request.
        return Err(Failure::usage(format!(
            "run UUID {uuid} given without an action: add -i (info), -r (reset), \
             -R (reset all) or -d (delete), or use a command such as 'taskfarm info {uuid}' \
             (see 'taskfarm --help')"
        )));
    }
    let settings = session::settings(&cli.global)?;
    if cli.info {
        commands::info(&settings, uuid, style)
    } else if cli.reset_all {
        commands::reset(&settings, uuid, true, style)
    } else if cli.reset {
        commands::reset(&settings, uuid, false, style)
    } else {
        commands::delete(&settings, uuid, style)
    }
}
