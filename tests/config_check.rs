//! `pdd config check` on real files: every problem named, errors apart from warnings, exit
//! codes 0 (no errors), 1 (errors), 2 (unreadable).

mod common;

use common::{pdd_bin, Pki, TempDir};

fn check(config: &std::path::Path) -> (i32, String) {
    let out = pdd_bin()
        .arg("--config")
        .arg(config)
        .args(["config", "check"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn config_check_explains_every_problem() {
    let dir = TempDir::new("config-check");
    let pki = Pki::new();
    let me = pki.make("me", "MinisteroLavoro", false, 365, -1);
    let other = pki.make("other", "Altro", false, 365, -1);
    let soon = pki.make("soon", "EMILIA", false, 10, -1);
    let gone = pki.make("gone", "LAZIO", false, 5, -30);
    let write = |name: &str, text: String| {
        let p = dir.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    // A good file: no errors; the loopback HTTP partner and the expiring certificate warned.
    let good = write(
        "good.toml",
        format!(
            "listen = \"127.0.0.1:8790\"\nlocal_listen = \"127.0.0.1:8791\"\ndata = \"{}\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
             [[registry.soggetti]]\nnome = \"EMILIA\"\nurl = \"http://127.0.0.1:8702/pdd/PA\"\ncert = \"{}\"\n",
            dir.0.join("data").display(),
            me.cert.display(),
            me.key.display(),
            soon.cert.display()
        ),
    );
    let (code, out) = check(&good);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: partner SPC/EMILIA: the certificate expires in"),
        "{out}"
    );
    assert!(
        out.contains("warning: partner SPC/EMILIA: http://127.0.0.1:8702/pdd/PA is plain HTTP"),
        "{out}"
    );
    assert!(out.contains("0 error(s), 2 warning(s)"), "{out}");

    // Everything wrong at once.
    let bad = write(
        "bad.toml",
        format!(
            "listen = \"127.0.0.1:8790\"\nlocal_listen = \"127.0.0.1:8790\"\ndata = \"{}\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
             [[registry.soggetti]]\nnome = \"LAZIO\"\nurl = \"http://pdd.lazio.example/pdd/PA\"\ncert = \"{}\"\n\
             [[registry.soggetti]]\nnome = \"VENETO\"\ncert = \"{}\"\n",
            dir.0.join("data").display(),
            me.cert.display(),
            other.key.display(),
            gone.cert.display(),
            dir.0.join("missing.crt").display()
        ),
    );
    let (code, out) = check(&bad);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "error: listen, local_listen: both listen on 127.0.0.1:8790",
        "error: [tls] key:",
        "is not the key of",
        "error: partner SPC/LAZIO: the certificate expired",
        "error: partner SPC/LAZIO: http://pdd.lazio.example/pdd/PA is not HTTPS",
        "error: partner SPC/VENETO:",
        "missing.crt",
    ] {
        assert!(out.contains(expected), "{expected} not in:\n{out}");
    }

    // An unknown key is named with its line.
    let typo = write(
        "typo.toml",
        "listen = \"127.0.0.1:8790\"\n[limits]\nmax_body = 5\n".into(),
    );
    let (code, out) = check(&typo);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("typo.toml, line 3: limits.max_body: unknown field `max_body`"),
        "{out}"
    );

    // Unreadable.
    let (code, out) = check(&dir.0.join("nonexistent.toml"));
    assert_eq!(code, 2, "{out}");
}

/// Every problem of the file's text in one run, each on its line, in the file's order: the
/// first unknown key (which serde, reading keys in alphabetical order, would not name first)
/// and the others, values of the wrong type, a partner without its name; then the checks of
/// what could be read go on (a partner's plain-HTTP URL elsewhere in the file).
#[test]
fn config_check_reports_every_problem_of_the_text_with_its_line() {
    let dir = TempDir::new("config-check-all");
    let path = dir.0.join("many.toml");
    std::fs::write(
        &path,
        format!(
            "zlisten = \"127.0.0.1:8790\"\n\
             data = \"{}\"\n\
             role = \"boss\"\n\
             [limits]\n\
             max_body = 5\n\
             max_body_bytes = \"big\"\n\
             [store]\n\
             retention = 3\n\
             [[registry.soggetti]]\n\
             nome = \"EMILIA\"\n\
             urll = \"http://127.0.0.1:8720/pdd/PA\"\n\
             [[registry.soggetti]]\n\
             url = \"http://127.0.0.1:8703/pdd/PA\"\n\
             [[registry.soggetti]]\n\
             nome = \"VENETO\"\n\
             url = \"http://pdd.veneto.example/pdd/PA\"\n\
             servizi = [\"ClicLavoro\", 3]\n",
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    let (code, out) = check(&path);
    assert_eq!(code, 1, "{out}");
    let expected = [
        "error: PATH, line 1: zlisten: unknown field `zlisten`",
        "error: PATH, line 3: role: unknown variant `boss`",
        "error: PATH, line 5: limits.max_body: unknown field `max_body`",
        "error: PATH, line 6: limits.max_body_bytes: invalid type: string \"big\"",
        "error: PATH, line 8: store.retention: unknown field `retention`",
        "error: PATH, line 11: registry.soggetti[0].urll: unknown field `urll`",
        "error: PATH, line 12: registry.soggetti[1]: missing field `nome`",
        "error: PATH, line 17: registry.soggetti[2].servizi: invalid type: integer `3`",
    ];
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(", line ")).collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (line, e) in lines.iter().zip(expected) {
        let e = e.replace("PATH", &path.display().to_string());
        assert!(line.starts_with(&e), "{e} is not\n{line}\nin:\n{out}");
    }
    // What could be read was checked too: VENETO's URL is not HTTPS.
    assert!(
        out.contains("error: partner SPC/VENETO: http://pdd.veneto.example/pdd/PA is not HTTPS"),
        "{out}"
    );
    assert!(out.contains("9 error(s), 0 warning(s)"), "{out}");

    // The same in JSON, each problem with its line.
    let json = common::pdd_bin()
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let righe: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["riga"].as_u64())
        .collect();
    assert_eq!(righe, [1, 3, 5, 6, 8, 11, 12, 17], "{v}");

    // A broken syntax: every error of it, in the file's order.
    let broken = dir.0.join("broken.toml");
    std::fs::write(&broken, "a = \nb = ]\n[x\n").unwrap();
    let (code, out) = check(&broken);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(", line ")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (l, n) in lines.iter().zip(1..) {
        assert!(l.contains(&format!(", line {n}: ")), "{l}\nin:\n{out}");
    }

    // `serve` refuses the file naming every problem too.
    let serve = common::pdd_bin()
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(err.contains("8 problems:"), "{err}");
    for n in [1, 3, 5, 6, 8, 11, 12, 17] {
        assert!(err.contains(&format!("\n  line {n}: ")), "line {n}: {err}");
    }
}
