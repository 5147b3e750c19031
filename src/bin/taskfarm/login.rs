//! Where the URL, user name and password come from: the options, then the
//! environment (through the library's `Settings::resolve`), and for the
//! password a no-echo prompt when stdin is a terminal. With `TASKFARM_TOKEN`
//! set the commands use the token, and the credentials are optional.

use std::io::IsTerminal;

use taskfarm_worker::internal::Settings;

use crate::cli::GlobalArgs;
use crate::failure::{register_secret, Failure, EXIT_INTERRUPTED};
use crate::password_prompt::{read_password, PromptError};

/// The settings for the server: with `TASKFARM_TOKEN` set, the token and
/// whatever credentials are given (no prompt); otherwise as [`credentials`].
pub fn settings(args: &GlobalArgs) -> Result<Settings, Failure> {
    if std::env::var_os("TASKFARM_TOKEN").is_none() {
        return credentials(args);
    }
    let password = args
        .password
        .clone()
        .or_else(|| std::env::var("TASKFARM_PASSWORD").ok());
    if let Some(password) = &password {
        register_secret(password);
    }
    Ok(Settings::resolve(
        args.user.as_deref(),
        password.as_deref(),
        args.baseurl.as_deref(),
    )?)
}

/// The settings with the user name and password (`TASKFARM_TOKEN` is not
/// used), asking for the password when it is needed and neither `-p` nor
/// `TASKFARM_PASSWORD` gives it.
pub fn credentials(args: &GlobalArgs) -> Result<Settings, Failure> {
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
            Settings::resolve_credentials(Some(&user), Some(""), args.baseurl.as_deref())?;
            prompt(&user)?
        }
    };
    register_secret(&password);
    Ok(Settings::resolve_credentials(
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
