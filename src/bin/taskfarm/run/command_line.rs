//! The command line of one attempt: `{}` in the command or an argument
//! becomes the task number; the environment tells the command its task,
//! attempt, run and progress file.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// `argv` with every `{}` replaced by `task`.
pub fn substitute(argv: &[OsString], task: i64) -> Vec<OsString> {
    let number = task.to_string();
    argv.iter()
        .map(|arg| replace(arg, number.as_bytes()))
        .collect()
}

fn replace(arg: &OsStr, with: &[u8]) -> OsString {
    let bytes = arg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{}") {
            out.extend_from_slice(with);
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// The variables added to the command's environment.
pub fn environment(run: &str, task: i64, attempt: u32, progress: &Path) -> Vec<(String, OsString)> {
    vec![
        ("TASKFARM_TASK".into(), task.to_string().into()),
        ("TASKFARM_ATTEMPT".into(), attempt.to_string().into()),
        ("TASKFARM_RUN".into(), run.into()),
        ("TASKFARM_PROGRESS".into(), progress.as_os_str().to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_become_the_task_number_everywhere() {
        let argv: Vec<OsString> = ["sim{}", "--in=data/{}.h5", "{}{}", "{", "}", "plain"]
            .iter()
            .map(OsString::from)
            .collect();
        let got: Vec<String> = substitute(&argv, 42)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(got, ["sim42", "--in=data/42.h5", "4242", "{", "}", "plain"]);
    }
}
