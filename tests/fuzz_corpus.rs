//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the inputs of fixed fuzz findings
//! (`fuzz/regressions/<target>/`) through the same functions as the `cargo fuzz` targets, on
//! the stable toolchain: no input may panic or break the targets' properties.
//! The functions live in `fuzz/src/lib.rs`, included here as a module (see fuzz/README.md).

#[path = "../fuzz/src/lib.rs"]
mod casi;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&root.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty or missing"
    );
    let regressions = files(&root.join("regressions").join(target));
    let mut failed = Vec::new();
    for p in corpus.iter().chain(&regressions) {
        let data = std::fs::read(p).expect("corpus file");
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", p.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn busta() {
    replay("busta", casi::busta);
}

#[test]
fn c14n() {
    replay("c14n", casi::c14n);
}

#[test]
fn firma() {
    replay("firma", casi::firma);
}

#[test]
fn modulo() {
    replay("modulo", casi::modulo);
}
