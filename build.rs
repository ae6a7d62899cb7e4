//! Records the git revision the binary is built from, for `pdd --version` and the log line at
//! `pdd serve` start: `PDD_GIT_REVISION` is the 12-hex-digit commit, with `-dirty` when the work
//! tree has changes, or `unknown` when git or the repository is absent (a build from a tarball,
//! whose packager may set `PDD_GIT_REVISION` in the environment instead); `PDD_GIT_DATE` is the
//! commit's day (yyyy-mm-dd, for the man page), empty without git.
//!
//! The script runs again only when HEAD, the branch it points to or the index changes (a commit,
//! a checkout, `git add`), so ordinary builds stay incremental. Editing a tracked file without
//! `git add` does not rerun it: such a build keeps the `-dirty` state of the last run.
//!
//! It also probes the tests' peers (tests/common/peers.rs): each missing one sets the cfg
//! `pdd_no_<peer>`, so that its tests are reported as ignored with the reason, unless
//! `PDD_REQUIRE_PEERS` is set and the peer is a required one, when they run and fail. The probe runs again when `PATH`,
//! `PDD_PYTHON`, `PDD_SHARED`, `PDD_GOVWAY_TESTFILES` or `PDD_REQUIRE_PEERS` change, or a
//! probed file that was there changes or goes; a peer installed since is seen after
//! `touch build.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(dead_code, reason = "the tests use more of it")]
#[path = "tests/common/peers.rs"]
mod peers;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    probe_peers();
    println!("cargo:rerun-if-env-changed=PDD_GIT_REVISION");
    let revision = match std::env::var("PDD_GIT_REVISION") {
        // A packager building from a tarball may say which revision it is.
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => git_revision().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=PDD_GIT_REVISION={revision}");
    // The day of the commit, for the man page's date; empty without git.
    let date = git_revision_date().unwrap_or_default();
    println!("cargo:rustc-env=PDD_GIT_DATE={date}");
}

fn probe_peers() {
    println!("cargo:rerun-if-changed=tests/common/peers.rs");
    for v in [
        "PATH",
        "PDD_PYTHON",
        "PDD_SHARED",
        "PDD_GOVWAY_TESTFILES",
        "PDD_REQUIRE_PEERS",
        "PDD_PG_BIN",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let required = peers::required();
    for peer in peers::Peer::ALL {
        let cfg = peer.cfg();
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        // Under PDD_REQUIRE_PEERS a required peer's tests run, and fail when it is missing.
        let runs_anyway = peer.required() && required;
        if !runs_anyway && !peer.present() {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
    // Cargo reruns the script at every build for a missing path: only existing ones are watched.
    for p in [peers::python(), peers::xsd(), peers::govway_testfiles()] {
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Runs git in the package's directory; None when git fails or is absent.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(manifest_dir())
        // `git status` would otherwise refresh the index, which would make this script run
        // again at every build (the index is one of the files it watches).
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Watches a file inside the git directory (`git rev-parse --git-path` handles worktrees and
/// submodules, where `.git` is a file). Cargo reruns the script at every build for a missing
/// path, so only existing ones are named.
fn watch(git_path: &str) {
    if let Some(p) = git(&["rev-parse", "--git-path", git_path]) {
        let p = manifest_dir().join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

/// The committer date of HEAD, yyyy-mm-dd (in the same repository as the revision).
fn git_revision_date() -> Option<String> {
    git_is_ours()?;
    git(&["log", "-1", "--format=%cs", "HEAD"]).filter(|d| d.len() == 10)
}

/// Some when the package is the top of a git work tree: not when a repository merely encloses
/// it (a tarball unpacked inside someone else's checkout).
fn git_is_ours() -> Option<()> {
    let top = git(&["rev-parse", "--show-toplevel"])?;
    (Path::new(&top).canonicalize().ok()? == manifest_dir().canonicalize().ok()?).then_some(())
}

fn git_revision() -> Option<String> {
    git_is_ours()?;
    watch("HEAD");
    watch("index");
    match git(&["symbolic-ref", "-q", "HEAD"]) {
        Some(branch) if !branch.is_empty() => {
            watch(&branch);
            // A branch whose loose ref was packed (`git gc`) lives in packed-refs.
            watch("packed-refs");
        }
        _ => {} // a detached HEAD holds the commit itself
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    if commit.is_empty() {
        return None;
    }
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}
