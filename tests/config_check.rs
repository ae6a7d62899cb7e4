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
        out.contains("unknown field `max_body`") && out.contains("line 3"),
        "{out}"
    );

    // Unreadable.
    let (code, out) = check(&dir.0.join("nonexistent.toml"));
    assert_eq!(code, 2, "{out}");
}
