//! The README's "run a cluster", as a new user follows it: up.sh (a private PostgreSQL, two
//! nodes, HAProxy), send.sh through the balancer, a node killed and the other serving alone,
//! then down.sh — on a copy of the example files, with the built binary, on free ports.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use common::TempDir;

/// Offsets from `PDD_PORT_BASE`: the balancer, the two nodes, PostgreSQL.
const OFFSETS: [u16; 4] = [0, 1, 2, 9];

fn free_base() -> u16 {
    for _ in 0..200 {
        let base = common::free_port();
        if base.checked_add(9).is_some()
            && OFFSETS
                .iter()
                .all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok())
        {
            return base;
        }
    }
    panic!("no four free loopback ports found");
}

fn copy_example() -> TempDir {
    let root = TempDir::new("example-cluster");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in [
        "examples/cluster/lib.sh",
        "examples/cluster/up.sh",
        "examples/cluster/send.sh",
        "examples/cluster/down.sh",
        "examples/richiesta-candidatura.xml",
    ] {
        let to = root.0.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(f), to).unwrap();
    }
    root
}

fn run(root: &TempDir, script: &str, base: u16, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("bash")
        .arg(root.0.join("examples/cluster").join(script))
        .args(args)
        .env("PDD", env!("CARGO_BIN_EXE_pdd"))
        .env("PDD_PORT_BASE", base.to_string())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
#[cfg_attr(pdd_no_haproxy, ignore = "haproxy is not installed (Debian haproxy)")]
fn the_cluster_example_runs_as_the_readme_says() {
    common::require(common::peers::Peer::Postgres);
    common::require(common::peers::Peer::Haproxy);
    let root = copy_example();
    let base = free_base();
    let (ok, out, err) = run(&root, "up.sh", base, &[]);
    // Whatever happens next, stop what was started.
    struct Giu<'a>(&'a TempDir, u16);
    impl Drop for Giu<'_> {
        fn drop(&mut self) {
            let _ = run(self.0, "down.sh", self.1, &[]);
        }
    }
    let giu = Giu(&root, base);
    assert!(ok, "up.sh: {out}{err}");
    assert!(out.contains("node pdd-1 (number 1)"), "{out}");
    assert!(out.contains("node pdd-2 (number 2)"), "{out}");

    // Round robin over both nodes; the resend is refused cluster-wide.
    let (ok, out, err) = run(&root, "send.sh", base, &["6"]);
    assert!(ok, "send.sh: {out}{err}");
    assert!(out.contains("answered by node 01"), "{out}");
    assert!(out.contains("answered by node 02"), "{out}");
    assert!(out.contains("EGOV_IT_110"), "{out}");

    // One node killed: the other serves everything.
    let pid = std::fs::read_to_string(root.0.join("examples/cluster/data/node-1.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success());
    let (ok, out, err) = run(&root, "send.sh", base, &["4"]);
    assert!(ok, "send.sh after a node died: {out}{err}");
    assert!(err.contains("node 1 is down"), "{err}");
    assert_eq!(out.matches("answered by node 02").count(), 4, "{out}");
    assert!(!out.contains("answered by node 01"), "{out}");

    drop(giu);
    let (ok, out, _) = run(&root, "down.sh", base, &[]);
    assert!(ok && out.contains("cluster stopped"), "{out}");
    assert!(!root.0.join("examples/cluster/data/pg-dir").exists());
}
