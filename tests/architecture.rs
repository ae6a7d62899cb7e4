//! The layering rules of `src/`, checked on the source (see `docs/glossary.md` for the layers):
//!
//! - the protocol core (`xml`, `soap`, `mime`, `egov`, `wssec`, `modulo`, `rete`) does no I/O and reads
//!   no clock: no tokio, hyper, sled, `std::fs`, `std::net`, no wall clock, and none of the
//!   gateway, server, store, services or CLI;
//! - only the server speaks HTTP: nothing else imports hyper (or its companions);
//! - the store knows nothing above it: not the gateway, `rete`, the services, the server or the
//!   CLI;
//! - the gateway knows no transport: not hyper, not the server, not the CLI;
//! - the services sit below the gateway: they reach the outside through `transport`, never
//!   through the gateway (no cycle).
//!
//! Test modules (`#[cfg(test)] mod tests`, at the end of a file) are left out: a unit test may
//! use what the code it tests may not.

use std::path::{Path, PathBuf};

/// A rule: the modules it applies to (paths under `src/`, a folder or a file without `.rs`),
/// and what their code must not name.
struct Regola {
    nome: &'static str,
    moduli: &'static [&'static str],
    /// Except these files (paths under `src/`, with `.rs`), each with the reason.
    eccetto: &'static [(&'static str, &'static str)],
    vietati: &'static [&'static str],
}

const CORE: &[&str] = &["xml", "soap", "mime", "egov", "wssec", "modulo", "rete"];

const REGOLE: &[Regola] = &[
    Regola {
        nome: "the protocol core does no I/O, reads no clock and knows nothing above it",
        moduli: CORE,
        eccetto: &[],
        vietati: &[
            "tokio::",
            "hyper::",
            "hyper_util::",
            "sled::",
            "std::fs",
            "std::net",
            "Utc::now",
            "Local::now",
            "SystemTime::now",
            "crate::gateway",
            "crate::server",
            "crate::store",
            "crate::service",
            "crate::cli",
        ],
    },
    Regola {
        nome: "only the server speaks HTTP",
        moduli: &[
            "xml",
            "soap",
            "mime",
            "egov",
            "wssec",
            "modulo",
            "rete",
            "store",
            "gateway",
            "service",
            "registry",
            "config",
            "tls",
            "clock",
            "cli",
            "lib",
            "transport",
            "kit",
        ],
        eccetto: &[],
        vietati: &[
            "hyper::",
            "hyper_util::",
            "hyper_rustls::",
            "http_body_util::",
        ],
    },
    Regola {
        nome: "the store knows nothing above it",
        moduli: &["store"],
        eccetto: &[],
        vietati: &[
            "crate::gateway",
            "crate::rete",
            "crate::service",
            "crate::server",
            "crate::cli",
            "crate::config",
        ],
    },
    Regola {
        nome: "the gateway knows no transport",
        moduli: &["gateway", "service"],
        eccetto: &[],
        vietati: &["crate::server", "crate::cli", "tokio::net"],
    },
    Regola {
        nome: "the services are called by the gateway and do not call it back",
        moduli: &["service", "transport"],
        eccetto: &[],
        vietati: &["crate::gateway", "crate::server", "crate::cli"],
    },
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of a module (a folder, or `name.rs`).
fn files(modulo: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src().join(format!("{modulo}.rs"));
    if file.exists() {
        out.push(file);
    }
    let dir = src().join(modulo);
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments, string literals and trailing test module; paths
/// written as `crate::{a, b::c}` are spelled out as `crate::a`, `crate::b::c`.
fn codice(testo: &str) -> String {
    let testo = match testo.find("#[cfg(test)]\nmod tests") {
        Some(i) => &testo[..i],
        None => testo,
    };
    let b = testo.as_bytes();
    let mut out = String::with_capacity(testo.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i + 1 < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            // A string literal (raw strings hold no quote we need to care about here).
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal such as '"' or '\n'.
            let fine = testo[i + 1..].find('\'').map_or(b.len(), |j| i + 1 + j + 1);
            i = fine;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    espandi(&out)
}

/// `crate::{a, b::{c, d}}` → `crate::a crate::b::c crate::b::d` (appended, for the search).
fn espandi(code: &str) -> String {
    let mut extra = String::new();
    let mut start = 0;
    while let Some(i) = code[start..].find("::{") {
        let at = start + i;
        // The path before the brace.
        let prima: String = code[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut depth = 0;
        let mut fine = at + 2;
        for (j, c) in code[at + 2..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        fine = at + 2 + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let dentro = &code[at + 3..fine];
        let mut d = 0;
        let mut pezzo = String::new();
        for c in dentro.chars().chain([',']) {
            match c {
                '{' => {
                    d += 1;
                    pezzo.push(c);
                }
                '}' => {
                    d -= 1;
                    pezzo.push(c);
                }
                ',' if d == 0 => {
                    let p = pezzo.trim();
                    if !p.is_empty() {
                        extra.push_str(&espandi(&format!("{prima}::{p}")));
                        extra.push('\n');
                        extra.push_str(&format!("{prima}::{p}\n"));
                    }
                    pezzo.clear();
                }
                _ => pezzo.push(c),
            }
        }
        start = fine.max(at + 3);
    }
    format!("{code}\n{extra}")
}

/// Where a path is named: `crate::gateway` matches `crate::gateway::…` and `crate::gateway`
/// alone, not `crate::gateway_x`.
fn nomina(code: &str, vietato: &str) -> bool {
    let mut from = 0;
    while let Some(i) = code[from..].find(vietato) {
        let at = from + i;
        let prima = code[..at].chars().next_back();
        let dopo = code[at + vietato.len()..].chars().next();
        let confine_prima = prima.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let confine_dopo =
            vietato.ends_with("::") || dopo.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if confine_prima && confine_dopo {
            return true;
        }
        from = at + vietato.len();
    }
    false
}

#[test]
fn the_layers_import_only_downwards() {
    let mut violazioni = Vec::new();
    let mut visti = 0;
    for r in REGOLE {
        for m in r.moduli {
            let fs = files(m);
            assert!(!fs.is_empty(), "rule '{}': no module src/{m}", r.nome);
            for f in fs {
                let rel = f.strip_prefix(src()).unwrap().display().to_string();
                if r.eccetto.iter().any(|(e, _)| *e == rel) {
                    continue;
                }
                visti += 1;
                let code = codice(&std::fs::read_to_string(&f).unwrap());
                for v in r.vietati {
                    if nomina(&code, v) {
                        violazioni.push(format!("src/{rel} names `{v}` ({})", r.nome));
                    }
                }
            }
        }
    }
    assert!(visti > 40, "only {visti} files checked");
    assert!(
        violazioni.is_empty(),
        "{} layering violations:\n  {}",
        violazioni.len(),
        violazioni.join("\n  ")
    );
}

/// The checker itself finds what it must, in every way a path can be written.
#[test]
fn the_checker_sees_paths_however_written() {
    let casi = [
        ("use crate::gateway::Gateway;", "crate::gateway", true),
        (
            "use crate::{egov, gateway::Answer};",
            "crate::gateway",
            true,
        ),
        ("use crate::{a::b, store::{X, Y}};", "crate::store", true),
        ("use crate::{a::{b, store::X}};", "crate::store", false),
        (
            "let x = crate::store::SledStore::open(p);",
            "crate::store",
            true,
        ),
        ("// crate::store in a comment", "crate::store", false),
        ("let s = \"crate::store\";", "crate::store", false),
        ("use crate::storehouse;", "crate::store", false),
        ("fn f() { tokio::spawn(x); }", "tokio::", true),
        ("let t = chrono::Utc::now();", "Utc::now", true),
        ("use std::fs::read;", "std::fs", true),
        ("use std::{fs, io};", "std::fs", true),
        ("let c = '\"'; use crate::cli;", "crate::cli", true),
    ];
    for (testo, vietato, atteso) in casi {
        assert_eq!(
            nomina(&codice(testo), vietato),
            atteso,
            "{testo} / {vietato}"
        );
    }
}
