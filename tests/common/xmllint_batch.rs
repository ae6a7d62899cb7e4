//! Batch schema validation with `xmllint`, for differential tests against the project's own
//! validator: one `xmllint --noout --schema S f1 … fN` process per chunk of at most 500 files.
//!
//! xmllint writes, on stderr, one status line per file it could parse, in argument order:
//! `<file> validates` or `<file> fails to validate`. Error messages before a status line may span
//! several lines (a parser error prints the offending source line and a caret line), and a file
//! that is not well-formed gets no status line at all. So the mapping below only trusts lines
//! that are *exactly* `<name as passed> validates` / `<name as passed> fails to validate`, walks
//! them in argument order, and leaves every file without such a line as "not valid".
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Files per xmllint process (keeps the command line far below ARG_MAX).
pub const CHUNK: usize = 500;

/// Validates many files against one schema with a single xmllint process per chunk of ≤500 files;
/// returns, for each file in order, whether xmllint said it validates.
///
/// A file that is missing or not well-formed counts as not valid. Panics when xmllint cannot be
/// started or reports that the schema itself does not compile (exit code 5): in both cases every
/// answer would be a meaningless `false`.
pub fn validate_many(schema: &Path, files: &[PathBuf]) -> Vec<bool> {
    let mut out = Vec::with_capacity(files.len());
    for chunk in files.chunks(CHUNK) {
        out.extend(validate_chunk(schema, chunk));
    }
    out
}

fn validate_chunk(schema: &Path, files: &[PathBuf]) -> Vec<bool> {
    if files.is_empty() {
        return Vec::new();
    }
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema)
        .args(files)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint: {e}"));
    if output.status.code() == Some(5) {
        panic!(
            "xmllint could not compile the schema {}:\n{}",
            schema.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // xmllint prints the file name exactly as it was given on the command line.
    let names: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let stderr = String::from_utf8_lossy(&output.stderr);
    parse_status_lines(&stderr, &names)
}

/// Maps xmllint's stderr to one verdict per name (exposed for tests of the parser itself).
pub fn parse_status_lines(stderr: &str, names: &[String]) -> Vec<bool> {
    let mut result = vec![false; names.len()];
    // Status lines come in argument order; files without one (not well-formed, missing) are
    // skipped over. `cursor` is the first file that has not been matched yet.
    let mut cursor = 0usize;
    for line in stderr.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (name, ok) = if let Some(n) = line.strip_suffix(" validates") {
            (n, true)
        } else if let Some(n) = line.strip_suffix(" fails to validate") {
            (n, false)
        } else {
            continue;
        };
        if let Some(off) = names[cursor..].iter().position(|n| n == name) {
            result[cursor + off] = ok;
            cursor += off + 1;
        }
        if cursor >= names.len() {
            break;
        }
    }
    result
}
