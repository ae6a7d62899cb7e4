//! The README's "run a ClicLavoro network on one machine", as a new user follows it: up.sh,
//! send-first-cv.sh, then LAZIO's read API, then down.sh — run on a copy of the example files
//! with the built binary, on free ports (`PDD_PORT_BASE`; the scripts' own are 8701–8713).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use common::TempDir;

/// Offsets from `PDD_PORT_BASE` of the nodes' ports (partners, then local systems).
const OFFSETS: [u16; 6] = [1, 2, 3, 11, 12, 13];

/// A port base whose six ports are free now.
fn free_base() -> u16 {
    for _ in 0..200 {
        let Some(base) = common::free_port().checked_sub(1) else {
            continue;
        };
        if base.checked_add(13).is_none() {
            continue;
        }
        if OFFSETS
            .iter()
            .all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok())
        {
            return base;
        }
    }
    panic!("no six free loopback ports found");
}

/// The example's files, copied into a fresh directory laid out as the repository.
fn copy_example() -> TempDir {
    let root = TempDir::new("example-network");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    for f in [
        "lib.sh",
        "up.sh",
        "down.sh",
        "send-first-cv.sh",
        "ncn.toml",
        "emilia.toml",
        "lazio.toml",
        "rapporti.csv",
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
    root
}

/// `pdd ARGS` from the copy's root, as the README runs it: (success, stdout, stderr).
fn pdd(root: &TempDir, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pdd"))
        .args(args)
        .current_dir(&root.0)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs one of the copied scripts: (success, stdout, stderr).
fn run(root: &TempDir, script: &str, base: u16) -> (bool, String, String) {
    run_args(root, script, &[], base)
}

fn run_args(root: &TempDir, script: &str, args: &[&str], base: u16) -> (bool, String, String) {
    let out = Command::new("bash")
        .arg(root.0.join("examples/network").join(script))
        .args(args)
        .env("PDD", env!("CARGO_BIN_EXE_pdd"))
        .env("PDD_PORT_BASE", base.to_string())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
fn the_example_network_starts_disseminates_and_stops() {
    common::require(common::Peer::Curl);
    let root = copy_example();
    let base = free_base();
    let up = run(&root, "up.sh", base);
    let sent = if up.0 {
        Some(run(&root, "send-first-cv.sh", base))
    } else {
        None
    };
    // The README's next steps: a European CV, then the EURES export, the sample rapporti, a
    // registered read with the token of `users add`.
    let eures = root.0.join("examples/network/data/eures");
    let (europeo, export, import, token, registrata, anonima) = if up.0 {
        let europeo = run_args(&root, "send-first-cv.sh", &["03"], base);
        let export = pdd(
            &root,
            &[
                "--config",
                "examples/network/ncn.toml",
                "eures",
                "export",
                eures.to_str().unwrap(),
            ],
        );
        let import = pdd(
            &root,
            &[
                "--config",
                "examples/network/ncn.toml",
                "import",
                "ultimi-rapporti",
                "examples/network/rapporti.csv",
            ],
        );
        let token = pdd(
            &root,
            &[
                "--config",
                "examples/network/lazio.toml",
                "users",
                "add",
                "portale",
            ],
        );
        let url = format!(
            "http://127.0.0.1:{}/api/candidature?regione=03&q=panettiere",
            base + 13
        );
        let bearer = format!("Authorization: Bearer {}", token.1.trim());
        let get = |extra: &[&str]| {
            let out = Command::new("curl")
                .args(["-s", "-f"])
                .args(extra)
                .arg(&url)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let registrata = get(&["-H", &bearer]);
        let anonima = get(&[]);
        (europeo, export, import, token, registrata, anonima)
    } else {
        Default::default()
    };
    let down = run(&root, "down.sh", base);
    assert!(up.0, "up.sh failed: {}\n{}", up.1, up.2);
    assert!(
        up.1.contains(&format!("https://127.0.0.1:{}/pdd/PA", base + 3)),
        "LAZIO on the port asked: {}",
        up.1
    );
    let sent = sent.unwrap();
    assert!(sent.0, "send-first-cv.sh failed: {}\n{}", sent.1, sent.2);
    assert!(sent.1.contains("NCN answered OK"), "{}", sent.1);
    assert!(sent.1.contains("inoltrata a SPC/LAZIO"), "{}", sent.1);
    assert!(sent.1.contains("LAZIO publishes it"), "{}", sent.1);
    assert!(
        sent.1
            .contains(&format!("http://127.0.0.1:{}/api/candidature", base + 13)),
        "{}",
        sent.1
    );
    // The anonymous view: the CV's profession is there, the worker is not.
    assert!(sent.1.contains("\"risultati\""), "{}", sent.1);
    assert!(
        !sent.1.contains("MARINELLI") && !sent.1.contains("MRNTMS91C14Z133A"),
        "{}",
        sent.1
    );
    assert!(
        europeo.0,
        "send-first-cv.sh 03: {}\n{}",
        europeo.1, europeo.2
    );
    assert!(europeo.1.contains("ambito europeo"), "{}", europeo.1);
    assert!(europeo.1.contains("in coda per EURES"), "{}", europeo.1);
    assert!(export.0, "eures export: {}\n{}", export.1, export.2);
    assert!(
        export.1.starts_with("1 EURES document(s) written"),
        "{}",
        export.1
    );
    let files: Vec<String> = std::fs::read_dir(&eures)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.len() == 1 && files[0].starts_with("europass-cv-"),
        "{files:?}"
    );
    assert!(import.0, "import: {}\n{}", import.1, import.2);
    assert!(
        import.1.starts_with("4 records read, 4 stored, 0 refused"),
        "{}",
        import.1
    );
    assert!(token.0, "users add: {}", token.2);
    assert_eq!(
        token.1.trim().lines().count(),
        1,
        "the token alone: {}",
        token.1
    );
    assert!(registrata.contains("\"totale\":2"), "{registrata}");
    assert!(registrata.contains("\"contatto\""), "{registrata}");
    assert!(anonima.contains("\"totale\":2"), "{anonima}");
    assert!(!anonima.contains("\"contatto\""), "{anonima}");
    assert!(down.0, "down.sh failed: {}\n{}", down.1, down.2);
    assert_eq!(down.1.matches("stopped").count(), 3, "{}", down.1);
    // The stores were left consistent: a second start finds the CV again at LAZIO.
    let data = root.0.join("examples/network/data");
    for n in ["ncn", "emilia", "lazio"] {
        assert!(data.join(n).is_dir(), "{n}'s store");
        assert!(data.join(format!("pki/{n}.crt")).is_file());
    }
}

/// Another process already answers `/health` on LAZIO's local port: up.sh says LAZIO did not
/// start instead of taking that process for LAZIO, and send-first-cv.sh refuses to run.
#[test]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
fn up_refuses_a_port_held_by_another_process() {
    common::require(common::Peer::Curl);
    let root = copy_example();
    let base = free_base();
    let squatter = TcpListener::bind(("127.0.0.1", base + 13)).unwrap();
    std::thread::spawn(move || {
        for s in squatter.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
            );
        }
    });
    let up = run(&root, "up.sh", base);
    let sent = run(&root, "send-first-cv.sh", base);
    let down = run(&root, "down.sh", base);
    assert!(!up.0, "up.sh succeeded: {}\n{}", up.1, up.2);
    assert!(up.2.contains("lazio did not start"), "{}", up.2);
    assert!(
        up.2.contains(&format!("127.0.0.1:{}", base + 13)),
        "LAZIO's log names the port it could not take: {}",
        up.2
    );
    assert!(!sent.0, "{}", sent.1);
    assert!(sent.2.contains("is not up"), "{}", sent.2);
    assert!(down.0, "{}", down.2);
    assert_eq!(down.1.matches("stopped").count(), 2, "{}", down.1);
}
