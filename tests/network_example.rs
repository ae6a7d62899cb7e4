//! The README's "run a ClicLavoro network on one machine", as a new user follows it: up.sh,
//! send-first-cv.sh, then LAZIO's read API, then down.sh — run on a copy of the example files
//! with the built binary (the scripts use the fixed ports 8701–8713).

mod common;

use std::path::Path;
use std::process::Command;

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[test]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
fn the_example_network_starts_disseminates_and_stops() {
    common::require(common::Peer::Curl);
    let root = common::TempDir::new("example-network");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in [
        "up.sh",
        "down.sh",
        "send-first-cv.sh",
        "ncn.toml",
        "emilia.toml",
        "lazio.toml",
    ] {
        copy(
            &repo.join("examples/network").join(f),
            &root.0.join("examples/network").join(f),
        );
    }
    copy(
        &repo.join("examples/moduli/candidatura-rev038.xml"),
        &root.0.join("examples/moduli/candidatura-rev038.xml"),
    );
    let run = |script: &str| {
        let out = Command::new("bash")
            .arg(root.0.join("examples/network").join(script))
            .env("PDD", env!("CARGO_BIN_EXE_pdd"))
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let up = run("up.sh");
    let sent = if up.0 {
        Some(run("send-first-cv.sh"))
    } else {
        None
    };
    let down = run("down.sh");
    assert!(up.0, "up.sh failed: {}\n{}", up.1, up.2);
    let sent = sent.unwrap();
    assert!(sent.0, "send-first-cv.sh failed: {}\n{}", sent.1, sent.2);
    assert!(sent.1.contains("NCN answered OK"), "{}", sent.1);
    assert!(sent.1.contains("inoltrata a SPC/LAZIO"), "{}", sent.1);
    assert!(sent.1.contains("LAZIO publishes it"), "{}", sent.1);
    // The anonymous view: the CV's profession is there, the worker is not.
    assert!(sent.1.contains("\"risultati\""), "{}", sent.1);
    assert!(
        !sent.1.contains("MARINELLI") && !sent.1.contains("MRNTMS91C14Z133A"),
        "{}",
        sent.1
    );
    assert!(down.0, "down.sh failed: {}\n{}", down.1, down.2);
    assert_eq!(down.1.matches("stopped").count(), 3, "{}", down.1);
    // The stores were left consistent: a second start finds the CV again at LAZIO.
    let data = root.0.join("examples/network/data");
    for n in ["ncn", "emilia", "lazio"] {
        assert!(data.join(n).is_dir(), "{n}'s store");
        assert!(data.join(format!("pki/{n}.crt")).is_file());
    }
}
