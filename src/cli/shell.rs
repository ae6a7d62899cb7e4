//! `pdd completions SHELL` and `pdd man`: what a package or an operator installs beside the
//! binary, generated from the CLI definition itself so that it never drifts from `--help`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write pdd.1 and one page per command (pdd-serve.1, pdd-partner-add.1, …) into DIR instead
    /// of printing pdd.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script on stdout.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode, String> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "pdd", &mut out);
    out.flush().map_err(|e| format!("cannot write: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints pdd(1) on stdout, or writes every page into a directory.
pub fn man(args: ManArgs) -> Result<ExitCode, String> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match args.dir {
        None => {
            let mut page = Vec::new();
            render(&cmd, true, &mut page).map_err(|e| e.to_string())?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write: {e}"))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            write_pages(&cmd, true, &dir)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_pages(cmd: &clap::Command, top: bool, dir: &std::path::Path) -> Result<(), String> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, false, dir)?;
    }
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    render(cmd, top, &mut page).map_err(|e| e.to_string())?;
    std::fs::write(&path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

/// One page: clap_mangen's, with a `.TH` of our own (clap_mangen leaves an empty date unquoted,
/// which shifts the footer's fields), and for pdd(1) the sections a man page is read for that
/// `--help` has no place for (environment, files, exit status).
fn render(cmd: &clap::Command, top: bool, w: &mut dyn Write) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let extra = if top {
        EXTRA_SECTIONS.to_string()
    } else {
        ".SH \"SEE ALSO\"\n\\fBpdd\\fR(1)\n".to_string()
    };
    let title = format!(
        ".TH {} 1 \"{}\" \"pdd {}\" \"pdd manual\"",
        name.to_uppercase(),
        env!("PDD_GIT_DATE"),
        super::VERSION
    );
    let mut extra_done = false;
    for line in page.lines() {
        if line.starts_with(".TH ") {
            writeln!(w, "{title}")?;
            continue;
        }
        if line == ".SH VERSION" && !extra_done {
            w.write_all(extra.as_bytes())?;
            extra_done = true;
        }
        writeln!(w, "{line}")?;
    }
    if !extra_done {
        w.write_all(extra.as_bytes())?;
    }
    Ok(())
}

/// Sections of pdd(1) written by hand, in roff.
const EXTRA_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBPDD_CONFIG\fR
The configuration file, as \fB\-\-config\fR.
.TP
\fBPDD_DATA\fR
The directory of the store, as \fB\-\-data\fR.
.TP
\fBPDD_LISTEN\fR
The listen address of \fBpdd serve\fR, as \fB\-\-listen\fR.
.TP
\fBRUST_LOG\fR
The log level and filters (default \fBinfo\fR); logs go to standard error.
.SH FILES
.TP
\fBpdd.toml\fR
The configuration, given with \fB\-\-config\fR; every key is documented in
\fIexamples/pdd.toml\fR. Without it, pdd runs on embedded defaults (127.0.0.1:8700, data in
\fI./pdd\-data\fR).
.TP
\fIDATA\fB/listen.addr\fR
The loopback address of the running gateway that holds the store; the other commands go
through it while it runs.
.SH "EXIT STATUS"
\fBpdd serve\fR: 0 after a clean stop (SIGTERM, Ctrl\-C); 2 bad configuration; 3 store
unavailable (held by another pdd) or damaged; 4 cannot listen.
.PP
\fBpdd check\fR, \fBpdd verify\fR, \fBpdd validate\fR, \fBpdd import\fR: 0 accepted, valid or
all imported; 1 refused, invalid or some lines refused; 2 unreadable input or bad configuration.
.PP
Other commands: 0 on success, 2 on error.
.SH "SEE ALSO"
\fBsystemd.exec\fR(5) for the unit in \fIexamples/systemd/pdd.service\fR.
"#;
