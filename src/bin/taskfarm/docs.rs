//! `taskfarm completions SHELL` and `taskfarm manpage`: the shell completion
//! scripts (clap_complete) and the man page taskfarm(1) (clap_mangen), both
//! made from the command line of `cli`, so they never drift from it.
//! `make install` writes them where bash-completion, zsh, fish and man look.

use clap::CommandFactory;
use clap_complete::Shell as Generator;
use clap_mangen::Man;

use crate::cli::{Cli, Shell};
use crate::failure::Failure;
use crate::output;

/// The completion script for `shell`, on stdout.
pub fn completions(shell: Shell) -> Result<(), Failure> {
    let generator = match shell {
        Shell::Bash => Generator::Bash,
        Shell::Zsh => Generator::Zsh,
        Shell::Fish => Generator::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "taskfarm", &mut script);
    output::print(&String::from_utf8_lossy(&script))
}

/// The man page taskfarm(1) in roff, on stdout.
pub fn manpage() -> Result<(), Failure> {
    let page = render().map_err(|e| Failure::local(format!("cannot render the man page: {e}")))?;
    output::print(&page)
}

/// One page for the whole tool: clap_mangen's sections for `taskfarm`
/// itself, then a COMMANDS section with each command's synopsis and options
/// as a subsection (clap_mangen's own list of commands would point at pages
/// taskfarm-COMMAND(1), which are not installed), then the notes of `--help`
/// (environment, retries, counts, exit status).
fn render() -> std::io::Result<String> {
    let command = Cli::command().bin_name("taskfarm");
    let man = Man::new(command.clone());
    // The title line by hand: clap_mangen drops an empty date, which moves
    // the source into the date's place. No date: the page is the same for
    // every build of one version.
    let mut page = format!(
        "{PREAMBLE}.TH TASKFARM 1 \"\" \"taskfarm {}\" \"User Commands\"\n",
        env!("CARGO_PKG_VERSION")
    );
    page += &section(&man, Man::render_name_section, Header::Keep)?;
    page += &section(&man, Man::render_synopsis_section, Header::Keep)?;
    page += &section(&man, Man::render_description_section, Header::Keep)?;
    page += &section(&man, Man::render_options_section, Header::Keep)?;

    page += ".SH COMMANDS\n";
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("taskfarm {}", sub.get_name());
        let sub = sub.clone().bin_name(&name).disable_help_flag(true);
        let sub_man = Man::new(sub.clone());
        page += &format!(".SS \"{name}\"\n");
        page += &section(&sub_man, Man::render_synopsis_section, Header::Drop)?;
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            for paragraph in about.to_string().split("\n\n") {
                page += ".PP\n";
                page += &roff_text(paragraph);
            }
        }
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page += &section(&sub_man, Man::render_options_section, Header::Drop)?;
        }
        if let Some(after) = sub.get_after_help() {
            page += ".PP\n";
            page += &roff_text(&after.to_string());
        }
    }

    page += ".SH NOTES\n";
    if let Some(after) = command.get_after_help() {
        page += ".nf\n";
        page += &roff_text(&after.to_string());
        page += ".fi\n";
    }
    page += &section(&man, Man::render_version_section, Header::Keep)?;
    Ok(page)
}

/// What every clap_mangen rendering starts with (the string `Aq`, an
/// apostrophe, that its text uses): written once, at the top of the page.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Whether a section keeps its `.SH` line (or becomes part of a subsection
/// of COMMANDS).
#[derive(PartialEq)]
enum Header {
    Keep,
    Drop,
}

/// A section as clap_mangen renders it, without the preamble.
fn section(
    man: &Man,
    render: fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>,
    header: Header,
) -> std::io::Result<String> {
    let mut text = Vec::new();
    render(man, &mut text)?;
    let text = String::from_utf8_lossy(&text);
    let text = text.strip_prefix(PREAMBLE).unwrap_or(&text);
    Ok(text
        .lines()
        .filter(|line| header == Header::Keep || !line.starts_with(".SH "))
        .flat_map(|line| [line, "\n"])
        .collect())
}

/// Plain text as roff text lines: backslashes and minus signs escaped (so
/// that `--json` stays two ASCII minus signs), and a line that starts with
/// `.` or `'` (a roff request) protected with `\&`.
fn roff_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.trim_end().lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_has_every_command_and_its_options() {
        let page = render().unwrap();
        assert!(
            page.starts_with(&format!("{PREAMBLE}.TH TASKFARM 1 \"\" \"taskfarm 0.")),
            "{page}"
        );
        assert_eq!(page.matches(PREAMBLE).count(), 1, "{page}");
        for name in crate::cli::command_names() {
            assert!(page.contains(&format!(".SS \"taskfarm {name}\"")), "{name}");
        }
        for option in [
            "\\-\\-baseurl",
            "\\-\\-interval",
            "\\-\\-all",
            "\\-\\-journal",
        ] {
            assert!(page.contains(option), "{option}");
        }
        assert!(
            page.contains("130  watch stopped by Ctrl\\-C")
                || page.contains("130  watch stopped by Ctrl-C")
        );
    }

    #[test]
    fn roff_requests_in_text_are_protected() {
        assert_eq!(
            roff_text(".x\n'y\na\\b --json"),
            "\\&.x\n\\&'y\na\\eb \\-\\-json\n"
        );
    }
}
