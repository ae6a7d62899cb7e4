//! What is installed beside the binary: `pdd --version` (with the git revision of the build),
//! `pdd completions SHELL`, `pdd man`, and the systemd unit in examples/systemd/.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{Peer, TempDir};

fn pdd() -> Command {
    common::pdd_bin()
}

/// Commands of `pdd --help` that completions and the man page must name.
const COMMANDS: &[&str] = &[
    "serve",
    "check",
    "trace",
    "validate",
    "certs",
    "partner",
    "sign",
    "verify",
    "outbox",
    "eures",
    "import",
    "users",
    "completions",
    "man",
];

fn stdout_of(args: &[&str]) -> String {
    let out = pdd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "pdd {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn version_names_the_git_revision() {
    let re =
        regex::Regex::new(r"^pdd \d+\.\d+\.\d+ \(git ([0-9a-f]{12}(-dirty)?|unknown)\)$").unwrap();
    for flag in ["--version", "-V"] {
        let text = stdout_of(&[flag]);
        let line = text.trim_end_matches('\n');
        assert!(re.is_match(line), "pdd {flag} printed {line:?}");
        assert!(
            line.starts_with(&format!("pdd {} ", env!("CARGO_PKG_VERSION"))),
            "{line}"
        );
    }
}

#[test]
fn serve_logs_its_version_at_start() {
    let dir = TempDir::new("cli-shell-serve");
    let data = dir.0.join("data");
    let gw = common::PddProcess::serve_data(&data);
    let version = stdout_of(&["--version"]);
    let version = version.trim();
    let (status, log) = gw.terminate();
    assert!(status.success(), "{status}\n{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(version)).collect();
    assert_eq!(lines.len(), 1, "one line with '{version}' in:\n{log}");
    assert!(lines[0].contains("starting"), "{}", lines[0]);
}

#[test]
fn bash_completions_name_the_commands_and_parse() {
    let script = stdout_of(&["completions", "bash"]);
    for c in COMMANDS {
        assert!(
            script.contains(&format!("pdd__{c}")) || script.contains(&format!("pdd__subcmd__{c}")),
            "the bash completions lack {c}"
        );
    }
    for w in [
        "complete -F",
        "--config",
        "--data",
        "--log-format",
        "list",
        "retry",
    ] {
        assert!(script.contains(w), "the bash completions lack {w}");
    }
    let dir = TempDir::new("cli-shell-bash");
    let f = dir.0.join("pdd.bash");
    std::fs::write(&f, &script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n refuses the completions: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sourced in an interactive-like shell, it registers a completion for pdd that offers the
    // commands after `pdd `.
    let probe = format!(
        "source {f}; COMP_WORDS=(pdd ''); COMP_CWORD=1; COMP_LINE='pdd '; COMP_POINT=4; \
         _pdd pdd '' pdd; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        f = f.display()
    );
    let out = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    let offered = String::from_utf8_lossy(&out.stdout);
    for c in ["serve", "trace", "partner", "outbox"] {
        assert!(
            offered.lines().any(|l| l == c),
            "`pdd <TAB>` does not offer {c}: {offered}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn zsh_and_fish_completions() {
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef pdd"),
        "{}",
        &zsh[..zsh.len().min(200)]
    );
    let fish = stdout_of(&["completions", "fish"]);
    for c in ["serve", "trace", "partner", "outbox"] {
        assert!(zsh.contains(&format!("'{c}:")), "zsh lacks {c}");
        assert!(fish.contains(&format!("-a \"{c}\"")), "fish lacks {c}");
    }
    // An unknown shell is a usage error.
    let out = pdd().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `shell -n` accepts pdd's completions for it.
fn shell_accepts_the_completions(shell: &str) {
    let script = stdout_of(&["completions", shell]);
    let dir = TempDir::new("cli-shell-completions");
    let f = dir.0.join(format!("pdd.{shell}"));
    std::fs::write(&f, script).unwrap();
    let out = Command::new(shell).arg("-n").arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{shell} -n refuses the completions: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[cfg_attr(pdd_no_zsh, ignore = "zsh is not installed")]
fn zsh_accepts_the_completions() {
    common::require(Peer::Zsh);
    shell_accepts_the_completions("zsh");
}

#[test]
#[cfg_attr(pdd_no_fish, ignore = "fish is not installed")]
fn fish_accepts_the_completions() {
    common::require(Peer::Fish);
    shell_accepts_the_completions("fish");
}

#[test]
fn completions_and_man_need_no_configuration() {
    // A packager generates them at build time, where no configuration exists.
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let out = pdd()
            .args(args)
            .env("PDD_CONFIG", "/nonexistent/pdd.toml")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pdd {args:?} with a missing PDD_CONFIG: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn man_page_names_the_commands() {
    let page = stdout_of(&["man"]);
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("a .TH line");
    assert!(th.starts_with(".TH PDD 1 "), "{th}");
    let version = stdout_of(&["--version"]);
    assert!(th.contains(version.trim()), "{th}");
    for s in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        ".SH ENVIRONMENT",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(s), "the man page lacks {s}");
    }
    for c in COMMANDS {
        assert!(
            page.contains(&format!("pdd\\-{c}(1)")),
            "the man page lacks {c}"
        );
    }
}

#[test]
#[cfg_attr(pdd_no_groff, ignore = "groff is not installed")]
fn groff_renders_the_man_page_without_warnings() {
    common::require(Peer::Groff);
    let page = stdout_of(&["man"]);
    let dir = TempDir::new("cli-shell-man");
    let f = dir.0.join("pdd.1");
    std::fs::write(&f, &page).unwrap();
    // -ww: every warning; the page must render without any.
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(&f)
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "groff: {}\n{errors}",
        out.status
    );
    let text = plain(&String::from_utf8_lossy(&out.stdout));
    for w in [
        "NAME",
        "SYNOPSIS",
        "pdd-serve(1)",
        "PDD_CONFIG",
        "EXIT STATUS",
    ] {
        assert!(text.contains(w), "the rendered page lacks {w}:\n{text}");
    }
}

/// groff's terminal text as read: without the `c\bc` overstriking of bold and `_\bc` of
/// underline, its hyphens and minus signs as `-`.
fn plain(s: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    for c in s.chars() {
        match c {
            '\u{8}' => {
                out.pop();
            }
            '\u{2010}' | '\u{2212}' => out.push('-'),
            c => out.push(c),
        }
    }
    out.into_iter().collect()
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = TempDir::new("cli-shell-mandir");
    let listed = stdout_of(&["man", "--dir", dir.0.to_str().unwrap()]);
    for name in [
        "pdd.1",
        "pdd-serve.1",
        "pdd-partner-add.1",
        "pdd-outbox-retry.1",
    ] {
        let path = dir.0.join(name);
        let page = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{listed}", path.display()));
        let title = name.trim_end_matches(".1").to_uppercase();
        assert!(
            page.contains(&format!(".TH {title} 1 ")),
            "{name} has no .TH {title}"
        );
        assert!(listed.contains(name), "{listed}");
    }
    let serve = std::fs::read_to_string(dir.0.join("pdd-serve.1")).unwrap();
    assert!(serve.contains("\\-\\-listen"), "{serve}");
}

/// The unit's settings, by section, each key with every value it is given.
fn parse_unit(text: &str) -> HashMap<String, HashMap<String, Vec<String>>> {
    let mut sections: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        sections
            .entry(current.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    sections
}

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/systemd/pdd.service");

#[test]
fn systemd_unit_is_hardened() {
    let text = std::fs::read_to_string(UNIT).unwrap();
    let unit = parse_unit(&text);
    let service = &unit["Service"];
    let one = |k: &str| -> &str {
        let v = service
            .get(k)
            .unwrap_or_else(|| panic!("[Service] lacks {k}"));
        v.last().unwrap()
    };
    for (k, v) in [
        ("User", "pdd"),
        ("StateDirectory", "pdd"),
        ("ConfigurationDirectory", "pdd"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(one(k), v, "[Service] {k}");
    }
    assert_eq!(
        service["SystemCallFilter"].first().map(String::as_str),
        Some("@system-service")
    );
    // The store, the configuration: the paths the unit's directories give.
    let exec = one("ExecStart");
    assert!(exec.contains("--config /etc/pdd/pdd.toml"), "{exec}");
    assert!(exec.contains("--data /var/lib/pdd"), "{exec}");
    assert!(exec.ends_with(" serve"), "{exec}");
    // Longer than the default shutdown_grace_secs (30), so in-flight exchanges can finish and
    // the store be flushed before SIGKILL.
    let grace = pdd::config::Config::default().limits.shutdown_grace_secs;
    let stop: u64 = one("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop > grace,
        "TimeoutStopSec {stop} <= shutdown_grace_secs {grace}"
    );
    let nofile: u64 = one("LimitNOFILE").parse().unwrap();
    assert!(nofile >= 4096, "LimitNOFILE {nofile}");
    assert!(unit["Install"]["WantedBy"].contains(&"multi-user.target".to_string()));
}

#[test]
#[cfg_attr(
    pdd_no_systemd_analyze,
    ignore = "systemd-analyze is not installed (Debian systemd)"
)]
fn systemd_analyze_verifies_the_unit() {
    common::require(Peer::SystemdAnalyze);
    // Verify checks that ExecStart exists and that Documentation=man:pdd(1) opens: point the
    // first at this build and give the second our man page.
    let dir = TempDir::new("cli-shell-systemd");
    let man1 = dir.0.join("man/man1");
    std::fs::create_dir_all(&man1).unwrap();
    std::fs::write(man1.join("pdd.1"), stdout_of(&["man"])).unwrap();
    let unit = std::fs::read_to_string(UNIT)
        .unwrap()
        .replace("/usr/local/bin/pdd", env!("CARGO_BIN_EXE_pdd"));
    let path = dir.0.join("pdd.service");
    std::fs::write(&path, unit).unwrap();
    let man_ok = common::have(Peer::Man);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(if man_ok { "--man=yes" } else { "--man=no" })
        .arg(&path)
        .env("MANPATH", dir.0.join("man"))
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        out.status
    );
}
