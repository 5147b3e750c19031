//! Where the URL, user name and password come from: the options, then the
//! environment (through the library's `Settings::resolve`), and for the
//! password a no-echo prompt when stdin is a terminal.

use std::io::IsTerminal;

use taskfarm_worker::client::Settings;

use crate::cli::GlobalArgs;
use crate::failure::{register_secret, Failure, EXIT_INTERRUPTED};
use crate::password_prompt::{read_password, PromptError};

/// The settings for the server, asking for the password when it is needed
/// and neither `-p` nor `TASKFARM_PASSWORD` gives it.
pub fn settings(args: &GlobalArgs) -> Result<Settings, Failure> {
    let user = match &args.user {
        Some(user) => user.clone(),
        None => std::env::var("TASKFARM_USER")
            .map_err(|_| Failure::usage("no user name: pass -u/--user or set TASKFARM_USER"))?,
    };
    let password = match args
        .password
        .clone()
        .or_else(|| std::env::var("TASKFARM_PASSWORD").ok())
    {
        Some(password) => password,
        None => {
            // Check the rest first, so that nobody types a password for nothing.
            Settings::resolve(Some(&user), Some(""), args.baseurl.as_deref())?;
            prompt(&user)?
        }
    };
    register_secret(&password);
    Ok(Settings::resolve(
        Some(&user),
        Some(&password),
        args.baseurl.as_deref(),
    )?)
}

/// Asks for the password on the terminal, without echo.
fn prompt(user: &str) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no password: set TASKFARM_PASSWORD (or pass -p/--password, or run \
             on a terminal to be asked for it)",
        ));
    }
    read_password(&format!("taskfarm password for {user}: ")).map_err(|e| match e {
        PromptError::Interrupted => Failure::new(EXIT_INTERRUPTED, "interrupted"),
        PromptError::EndOfInput => Failure::local("no password: the input ended at the prompt"),
        PromptError::NotUtf8 => Failure::local("the password typed is not valid UTF-8"),
        PromptError::Io(e) => Failure::local(format!("cannot read the password: {e}")),
    })
}
