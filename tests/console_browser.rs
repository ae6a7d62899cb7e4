//! The operator console in a real browser: headless Chromium driven through chromedriver
//! (W3C WebDriver, JSON over HTTP on loopback, by the small client below) against the real
//! `pdd serve` of an NCN whose forward LAZIO refuses. The operator logs in, finds the exchange
//! made moments before by a real request, opens its detail and downloads its traces, retries
//! the refused outbox entry, adds a partner by uploading its certificate and removes it; a
//! `lettore` cannot act; a request without a session goes to the login. Every page is saved as
//! a screenshot under `target/console-screenshots/` and must render without console errors.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, http, PddProcess, Pki, Req, TempDir, CT_XML};
use serde_json::{json, Value};

/// The W3C name of an element reference.
const ELEMENTO: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 exchange on a fresh connection, its answer read by its Content-Length (what
/// chromedriver sends; it keeps the connection open): status and body. None when it cannot be
/// reached or the answer is not that.
fn scambio(addr: SocketAddr, method: &str, path: &str, corpo: &[u8]) -> Option<(u16, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let testa = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        corpo.len()
    );
    s.write_all(testa.as_bytes()).ok()?;
    s.write_all(corpo).ok()?;
    let mut r = BufReader::new(s);
    let mut riga = String::new();
    r.read_line(&mut riga).ok()?;
    let status = riga.split_whitespace().nth(1)?.parse().ok()?;
    let mut lunghezza = 0usize;
    loop {
        riga.clear();
        r.read_line(&mut riga).ok()?;
        let l = riga.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                lunghezza = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; lunghezza];
    r.read_exact(&mut body).ok()?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One WebDriver command: status and JSON.
fn richiesta(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let corpo = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, testo) = scambio(addr, method, path, corpo.as_bytes())
        .unwrap_or_else(|| panic!("chromedriver did not answer {method} {path}"));
    let v = serde_json::from_str(&testo)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {testo}"));
    (status, v)
}

/// chromedriver with one browser session; both end on drop.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    sessione: String,
    _profilo: TempDir,
}

impl Browser {
    fn avvia() -> Browser {
        let porta = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], porta).into();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={porta}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut b = Browser {
            driver,
            addr,
            sessione: String::new(),
            _profilo: TempDir::new("chromium"),
        };
        common::eventually_blocking("chromedriver ready", || {
            scambio(addr, "GET", "/status", b"")
                .is_some_and(|(s, t)| s == 200 && t.contains("\"ready\":true"))
        });
        let profilo = b._profilo.path().display().to_string();
        let (status, v) = richiesta(
            addr,
            "POST",
            "/session",
            Some(&json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium().display().to_string(),
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        format!("--user-data-dir={profilo}"), "--window-size=1366,1000",
                        "--lang=it-IT",
                    ],
                },
                "goog:loggingPrefs": { "browser": "ALL" },
            }}})),
        );
        assert_eq!(status, 200, "new session: {v}");
        b.sessione = v["value"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        b
    }

    fn cmd(&self, method: &str, dove: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{dove}", self.sessione);
        let (status, v) = richiesta(self.addr, method, &path, body.as_ref());
        assert_eq!(status, 200, "{method} {dove}: {v}");
        v["value"].clone()
    }

    fn vai(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_string()
    }

    fn testo_pagina(&self) -> String {
        self.js("return document.body.innerText;", json!([]))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn trova_tutti(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e[ELEMENTO]
                .as_str()
                .unwrap_or_else(|| panic!("{e}"))
                .to_string()
        })
        .collect()
    }

    fn trova(&self, css: &str) -> String {
        let tutti = self.trova_tutti(css);
        assert!(
            !tutti.is_empty(),
            "no element {css} on {}:\n{}",
            self.url(),
            self.testo_pagina()
        );
        tutti[0].clone()
    }

    fn scrivi(&self, css: &str, testo: &str) {
        let e = self.trova(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": testo })),
        );
    }

    fn clic(&self, css: &str) {
        let e = self.trova(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn testo(&self, css: &str) -> String {
        let e = self.trova(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    fn js_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The browser's console messages since the last call (reading them drains them).
    fn console(&self) -> Vec<Value> {
        self.cmd("POST", "/se/log", Some(json!({ "type": "browser" })))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The page as it is now: saved as `target/console-screenshots/NOME.png`; it must have
    /// logged no error to the console.
    fn pagina(&self, nome: &str) {
        // Wait for the page to be complete (scripts run, styles applied).
        common::eventually_blocking("page complete", || {
            self.js("return document.readyState;", json!([])) == json!("complete")
        });
        let png = self.cmd("GET", "/screenshot", None);
        use base64::Engine as _;
        let byte = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(byte.starts_with(b"\x89PNG"), "{nome}: not a PNG");
        let dir = cartella_screenshot();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{nome}.png")), byte).unwrap();
        let errori: Vec<Value> = self
            .console()
            .into_iter()
            .filter(|m| m["level"] == "SEVERE" || m["level"] == "WARNING")
            .collect();
        assert!(
            errori.is_empty(),
            "{nome} ({}): console errors: {errori:#?}",
            self.url()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.sessione.is_empty() {
            let _ = scambio(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.sessione),
                b"",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The `chromium` on the PATH (Debian's is a script that starts the browser).
fn chromium() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("chromium"))
                .find(|f| f.is_file())
        })
        .expect("chromium on the PATH")
}

fn cartella_screenshot() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

/// `pdd users add NOME --ruolo RUOLO --password-stdin` on the node's store.
fn utente(config: &Path, nome: &str, ruolo: &str, password: &str) {
    use std::io::Write as _;
    let mut c = common::pdd_bin()
        .current_dir(config.parent().unwrap())
        .arg("--config")
        .arg(config)
        .args(["users", "add", nome, "--ruolo", ruolo, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "users add {nome}: {err}");
    assert!(
        err.contains(&format!("console user {nome} added ({ruolo})")),
        "{err}"
    );
    // A password chosen is not printed.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(password));
}

/// JSON from a loopback admin endpoint of the node.
fn admin(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, &[], b"").expect("the node answers");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn login(b: &Browser, base: &str, nome: &str, password: &str) {
    b.vai(&format!("{base}/console/login"));
    b.scrivi("#utente", nome);
    b.scrivi("#password", password);
    b.clic("#entra");
    common::eventually_blocking("logged in", || b.url() == format!("{base}/console"));
}

#[test]
#[cfg_attr(
    pdd_no_chromium,
    ignore = "chromium or chromedriver is not installed (Debian chromium, chromium-driver)"
)]
fn the_console_works_in_a_real_browser() {
    common::require(common::Peer::Chromium);
    let dir = TempDir::new("console");
    let (p_ncn, p_lazio) = (free_port(), free_port());
    let ncn_toml = common::config_nodo(
        &dir.0,
        "ncn",
        "MinisteroLavoro",
        "ncn",
        p_ncn,
        &[("LAZIO", p_lazio)],
    );
    let lazio_toml = common::config_nodo(
        &dir.0,
        "lazio",
        "LAZIO",
        "nr",
        p_lazio,
        &[("MinisteroLavoro", p_ncn)],
    );
    // LAZIO takes moduli 2.0 only: the NCN's forward of a Rev.038 CV is refused (a business KO).
    let mut t = std::fs::read_to_string(&lazio_toml).unwrap();
    t.push_str("\n[cliclavoro]\nversione = \"2.0\"\n");
    std::fs::write(&lazio_toml, t).unwrap();
    utente(&ncn_toml, "mario", "operatore", "password-di-mario");
    utente(&ncn_toml, "lucia", "lettore", "password-di-lucia");
    let _lazio = PddProcess::serve_config(&lazio_toml);
    let ncn = PddProcess::serve_config(&ncn_toml);
    let addr: SocketAddr = ([127, 0, 0, 1], p_ncn).into();
    let base = format!("http://{addr}");

    // A real request, moments before: EMILIA's Rev.038 CV to the NCN.
    let oggi = chrono::Local::now().date_naive();
    let modulo = common::example("moduli/candidatura-rev038.xml")
        .replace("2027-01-08", &(oggi + chrono::Days::new(30)).to_string());
    let req = Req::invio(common::invio_candidatura(&modulo));
    let id = req.id.clone();
    let (status, risposta) =
        http(addr, "POST", "/pdd/PA", &[CT_XML], req.xml().as_bytes()).expect("NCN answers");
    assert_eq!(status, 200, "{risposta}");
    assert_eq!(
        common::text_of(&risposta, "Tipo_Risposta"),
        Some("OK"),
        "{risposta}"
    );
    // The same again, a duplicate (EGOV_IT_110); and what is no busta at all (a Fault).
    let (status, risposta) =
        http(addr, "POST", "/pdd/PA", &[CT_XML], req.xml().as_bytes()).expect("NCN answers");
    assert_eq!(status, 500, "{risposta}");
    assert!(risposta.contains("EGOV_IT_110"), "{risposta}");
    let (status, _) = http(addr, "POST", "/pdd/PA", &[CT_XML], b"<nessuna/>").unwrap();
    assert_eq!(status, 500);
    // Its forward, refused by LAZIO.
    let mut seq = 0;
    common::eventually_blocking("the forward refused", || {
        let v = admin(addr, "/admin/outbox");
        match v.as_array().and_then(|l| l.first()) {
            Some(f) if f["stato"] == "respinto" => {
                seq = f["seq"].as_u64().unwrap();
                true
            }
            _ => false,
        }
    });

    let _ = std::fs::remove_dir_all(cartella_screenshot());
    let b = Browser::avvia();

    // Without a session: to the login, from a page and from an action alike.
    b.vai(&format!("{base}/console/transazioni"));
    assert_eq!(b.url(), format!("{base}/console/login"));
    b.pagina("login");
    let (s, _) = http(addr, "POST", "/console/outbox/riprova", &[], b"seq=1").unwrap();
    assert_eq!(s, 303);
    // A wrong password is refused, and said.
    b.scrivi("#utente", "mario");
    b.scrivi("#password", "sbagliata");
    b.clic("#entra");
    common::eventually_blocking("refused", || {
        b.testo_pagina().contains("Utente o password errati")
    });
    b.console(); // the 401 of the refused login
                 // The operator logs in and sees the dashboard.
    login(&b, &base, "mario", "password-di-mario");
    let cruscotto = b.testo_pagina();
    for atteso in [
        "Cruscotto",
        "MinisteroLavoro",
        "NCN",
        "Outbox per nodo",
        "SPC/LAZIO",
        "Per esito",
        "Latenza",
    ] {
        assert!(cruscotto.contains(atteso), "{atteso}: {cruscotto}");
    }
    assert!(
        b.trova_tutti("figure.grafico svg rect").len() >= 2,
        "no bars drawn"
    );
    assert_eq!(b.testo("#chi"), "mario (operatore)");
    b.pagina("cruscotto");

    // Transazioni: the exchange found by its Identificatore, then its detail.
    b.clic("nav a[href='/console/transazioni']");
    b.scrivi("#cerca-id", &id);
    b.clic("#cerca");
    common::eventually_blocking("search done", || b.url().contains("id="));
    let righe = b.trova_tutti("table.transazioni tbody tr");
    assert_eq!(righe.len(), 1, "{}", b.testo_pagina());
    assert!(b.testo("table.transazioni").contains("SPC/EMILIA"));
    b.pagina("transazioni");
    b.clic("table.transazioni a.id");
    common::eventually_blocking("detail", || b.url().contains("/console/transazioni/"));
    assert_eq!(b.testo("#esito-transazione"), "ok");
    assert!(b.testo("#richiesta").contains(&id));
    let busta = b.trova_tutti("#richiesta .busta").len();
    assert!(busta > 5, "the busta is highlighted: {busta} lines");
    assert!(
        b.testo("#firma").contains("non firmat"),
        "{}",
        b.testo("#firma")
    );
    // The CNIPA traces, downloaded as the link gives them.
    let tracce = b.js_async(
        "const fatto = arguments[arguments.length - 1];
         fetch(document.getElementById('scarica-tracce').href)
           .then(r => r.text().then(t => fatto([r.status, r.headers.get('content-disposition'), t])), e => fatto(String(e)));",
        json!([]),
    );
    assert_eq!(tracce[0], 200);
    assert!(tracce[1].as_str().unwrap().starts_with("attachment"));
    let tracce = tracce[2].as_str().unwrap();
    assert_eq!(
        tracce.matches("<eGov_IT_Trac:traccia").count(),
        2,
        "{tracce}"
    );
    assert!(tracce.contains(&id));
    b.pagina("dettaglio");

    // Outbox: the refused entry, retried.
    b.clic("nav a[href='/console/outbox']");
    assert!(b.testo(&format!("#inoltro-{seq}")).contains("respinto"));
    b.pagina("outbox");
    b.clic(&format!("#riprova-{seq}"));
    common::eventually_blocking("retried", || b.url().contains("fatto="));
    assert_eq!(b.testo("#esito"), "Rimessi in coda: 1.");
    common::eventually_blocking("tried again, and refused again", || {
        let f = &admin(addr, "/admin/outbox")[0];
        f["tentativi"] == 2 && f["stato"] == "respinto"
    });
    b.pagina("outbox-riprova");
    // A form without the session's CSRF token is refused, and does nothing.
    let stato = b.js_async(
        "const fatto = arguments[arguments.length - 1];
         fetch('/console/outbox/riprova', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'csrf=falso&seq=' + arguments[0] })
           .then(r => fatto(r.status), e => fatto(String(e)));",
        json!([seq]),
    );
    assert_eq!(stato, 403);
    b.console(); // the 403
    assert_eq!(admin(addr, "/admin/outbox")[0]["tentativi"], 2);

    // Partner: one added by uploading its certificate, then removed after confirmation.
    let pki = Pki::new();
    let ente = pki.make("enteprova", "ENTEPROVA", false, 20, -1);
    let (_, cert) = ente.load();
    let impronta = pdd::wssec::pki::fingerprint(&cert);
    b.clic("nav a[href='/console/partner']");
    b.scrivi("#nuovo-nome", "ENTEPROVA");
    b.scrivi("#nuovo-url", "http://127.0.0.1:9/pdd/PA");
    b.scrivi("#nuovo-servizi", "ClicLavoro");
    b.scrivi("#file-cert", &ente.cert.display().to_string());
    common::eventually_blocking("the certificate read into the form", || {
        b.js(
            "return document.getElementById('nuovo-cert').value;",
            json!([]),
        )
        .as_str()
        .is_some_and(|v| v.contains("BEGIN CERTIFICATE"))
    });
    b.pagina("partner-nuovo");
    b.clic("#aggiungi");
    common::eventually_blocking("added", || b.url().contains("fatto="));
    assert_eq!(b.testo("#esito"), "Partner SPC/ENTEPROVA aggiunto.");
    let riga = b.testo("#partner-ENTEPROVA");
    assert!(riga.contains(&impronta), "{riga}");
    assert!(riga.contains("CN=ENTEPROVA"), "{riga}");
    assert!(
        riga.contains("tra 18 giorni") || riga.contains("tra 19 giorni"),
        "{riga}"
    );
    let partners = admin(addr, "/admin/partners");
    let aggiunto = partners
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["nome"] == "ENTEPROVA")
        .expect("ENTEPROVA registered");
    assert_eq!(aggiunto["origine"], "store");
    assert_eq!(aggiunto["servizi"], json!(["ClicLavoro"]));
    b.pagina("partner");
    // Its certificate expires within 30 days: the dashboard says so.
    b.clic("nav a[href='/console']");
    let scadenze = b.testo("section.schede .scheda:nth-child(4)");
    assert!(
        scadenze.contains("SPC/ENTEPROVA") && scadenze.contains("CN=ENTEPROVA"),
        "{scadenze}"
    );
    b.clic("nav a[href='/console/partner']");
    b.clic("#rimuovi-ENTEPROVA");
    assert!(b
        .testo_pagina()
        .contains("Rimuovere il partner SPC/ENTEPROVA?"));
    b.pagina("partner-rimuovi");
    b.clic("#conferma");
    common::eventually_blocking("removed", || b.url().contains("fatto="));
    assert_eq!(b.testo("#esito"), "Partner SPC/ENTEPROVA rimosso.");
    assert!(b.trova_tutti("#partner-ENTEPROVA").is_empty());
    assert!(!admin(addr, "/admin/partners")
        .to_string()
        .contains("ENTEPROVA"));

    // Moduli: the CV, found by its code, with its history and where it went.
    b.clic("nav a[href='/console/moduli']");
    assert!(b.testo_pagina().contains("candidatura"));
    b.scrivi("#cerca-codice", "SILCO26200000000000000318");
    b.clic("section form.ricerca button");
    common::eventually_blocking("found", || b.url().contains("codice="));
    b.pagina("moduli");
    b.clic("main li a");
    assert_eq!(b.testo("#codice"), "SILCO26200000000000000318");
    assert_eq!(b.testo("#stato"), "attivo");
    assert!(b
        .testo_pagina()
        .contains("inserimento di SILCO26200000000000000318"));
    b.pagina("modulo");

    // Out; the lettore reads and cannot act.
    b.clic("header form.esci button");
    common::eventually_blocking("logged out", || b.url() == format!("{base}/console/login"));
    b.vai(&format!("{base}/console/outbox"));
    assert_eq!(
        b.url(),
        format!("{base}/console/login"),
        "the session ended"
    );
    login(&b, &base, "lucia", "password-di-lucia");
    b.vai(&format!("{base}/console/outbox"));
    assert!(b.testo(&format!("#inoltro-{seq}")).contains("respinto"));
    assert!(
        b.trova_tutti("button[id^='riprova-']").is_empty(),
        "a lettore sees no riprova"
    );
    b.pagina("outbox-lettore");
    b.vai(&format!("{base}/console/partner"));
    assert!(b.trova_tutti("#aggiungi-partner").is_empty());
    assert!(b.trova_tutti("a[id^='rimuovi-']").is_empty());
    // With the session's own token, the action is still refused.
    let stato = b.js_async(
        "const fatto = arguments[arguments.length - 1];
         const csrf = document.querySelector('meta[name=csrf]').content;
         fetch('/console/outbox/riprova', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'csrf=' + csrf + '&seq=' + arguments[0] })
           .then(r => fatto(r.status), e => fatto(String(e)));",
        json!([seq]),
    );
    assert_eq!(stato, 403);
    b.console(); // the 403
    assert_eq!(admin(addr, "/admin/outbox")[0]["tentativi"], 2);

    // Every login and action is a diagnostic naming its user.
    let diag = admin(addr, "/admin/diagnostici").to_string();
    for atteso in [
        "PDD_CONSOLE_ACCESSO_NEGATO",
        "console: mario (operatore) è entrato",
        "console: mario ha rimesso in coda 1 inoltri",
        "console: mario ha aggiunto il partner SPC/ENTEPROVA",
        "console: mario ha rimosso il partner SPC/ENTEPROVA",
        "PDD_CONSOLE_CSRF",
        "console: mario è uscito",
        "console: lucia (lettore) ha tentato /console/outbox/riprova: negato",
    ] {
        assert!(diag.contains(atteso), "{atteso}: {diag}");
    }
    drop(b);
    drop(ncn);
}
