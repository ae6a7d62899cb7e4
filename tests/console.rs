//! The operator console over plain HTTP (no browser: `console_browser.rs` drives one): console
//! users made by `pdd users add --ruolo` against a running gateway, the session cookie's
//! flags, bad input answered with a page and a 4xx, never a panic, and what is refused.

mod common;

use std::net::SocketAddr;

use common::{http, pdd_bin, PddProcess, TempDir};

/// `pdd --data DATA users add ARGS`, with `stdin` written to it: (exit code, stdout, stderr).
fn users_add(data: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut c = pdd_bin()
        .arg("--data")
        .arg(data)
        .args(["users", "add"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A raw request (headers and body) and the whole raw answer, head included.
fn grezzo(addr: SocketAddr, richiesta: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.write_all(richiesta.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn post_login(addr: SocketAddr, corpo: &str, origin: Option<&str>) -> String {
    grezzo(
        addr,
        &format!(
            "POST /console/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{corpo}",
            origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default(),
            corpo.len()
        ),
    )
}

#[test]
fn console_users_log_in_and_bad_input_gets_a_page_not_a_panic() {
    let dir = TempDir::new("console-http");
    let data = dir.0.join("data");
    // Made on the store: a password from stdin must be long enough; --password-stdin needs
    // --ruolo; the role is one of two.
    let (code, _, err) = users_add(
        &data,
        &["anna", "--ruolo", "operatore", "--password-stdin"],
        "corta\n",
    );
    assert_ne!(code, 0);
    assert!(err.contains("almeno 8 caratteri"), "{err}");
    let (code, _, err) = users_add(&data, &["anna", "--password-stdin"], "");
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = users_add(&data, &["anna", "--ruolo", "capo"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("use operatore or lettore"), "{err}");

    let gw = PddProcess::serve_data(&data);
    let addr: SocketAddr = gw.addr.parse().unwrap();
    // Made through the running gateway: the password made for it is printed once.
    let (code, password, err) = users_add(&data, &["anna", "--ruolo", "lettore"], "");
    assert_eq!(code, 0, "{err}");
    let password = password.trim().to_string();
    assert_eq!(password.len(), 24, "{password}");
    let (code, _, err) = users_add(&data, &["anna", "--ruolo", "lettore"], "");
    assert_ne!(code, 0);
    assert!(err.contains("esiste già"), "{err}");
    let (_, list, _) = common::pdd_cli(common::On::Data(&data), &["users", "list"]);
    assert!(list.contains("anna") && list.contains("lettore"), "{list}");
    assert!(!list.contains(&password));
    // An API user's token is no console password, and a console password no API token.
    let (_, token, _) = common::pdd_cli(common::On::Data(&data), &["users", "add", "portale"]);
    let r = post_login(
        addr,
        &format!("utente=portale&password={}", token.trim()),
        None,
    );
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    let (status, _) = http(
        addr,
        "GET",
        "/api/candidature",
        &[("Authorization", &format!("Bearer {password}"))],
        b"",
    )
    .unwrap();
    assert_eq!(status, 401);

    // The login: a cookie that scripts cannot read and other sites cannot send.
    let r = post_login(addr, &format!("utente=anna&password={password}"), None);
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    let cookie = r
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/console"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let sessione = cookie.split(';').next().unwrap().to_string();
    let get = |path: &str| {
        grezzo(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {sessione}\r\n\r\n"),
        )
    };
    let r = get("/console");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("content-security-policy: default-src 'none'"),
        "{r}"
    );
    assert!(r.contains("anna (lettore)"));
    // Bad input: a page that says so, with a 4xx.
    for (path, status, testo) in [
        ("/console/transazioni?dal=ieri", "400", "aaaa-mm-ggThh:mm"),
        ("/console/transazioni?esito=boh", "400", "Esito sconosciuto"),
        ("/console/transazioni?dopo=-1", "400", "Pagina"),
        ("/console/transazioni/abc", "400", "numero di sequenza"),
        (
            "/console/transazioni/999999",
            "404",
            "Nessuna transazione 999999",
        ),
        (
            "/console/transazioni/999999/tracce.xml",
            "404",
            "Nessuna transazione",
        ),
        ("/console/moduli/nulla/X", "400", "Modulo:"),
        ("/console/moduli/candidatura/%FF%00", "404", "Nessun modulo"),
        ("/console/partner/rimuovi?p=senza-barra", "400", "TIPO/NOME"),
        (
            "/console/partner/rimuovi?p=SPC/NESSUNO",
            "404",
            "Nessun partner",
        ),
        ("/console/inesistente", "404", "non esiste"),
    ] {
        let r = get(path);
        assert!(r.starts_with(&format!("HTTP/1.1 {status}")), "{path}: {r}");
        assert!(r.contains(testo), "{path}: {r}");
        assert!(r.contains("text/html; charset=utf-8"), "{path}: {r}");
    }
    // Keyset paging, newest first: 51 Faults are a page of 50 and one of 1.
    for _ in 0..51 {
        let (status, _) = http(addr, "POST", "/pdd/PA", &[common::CT_XML], b"<nessuna/>").unwrap();
        assert_eq!(status, 500);
    }
    let righe = |pagina: &str| -> Vec<u64> {
        pagina
            .split("<tr><td><a href=\"/console/transazioni/")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let prima = get("/console/transazioni?esito=fault");
    let uno = righe(&prima);
    assert_eq!(uno.len(), 50, "{prima}");
    assert!(uno.windows(2).all(|w| w[0] > w[1]), "newest first: {uno:?}");
    let successiva = prima
        .split("<a href=\"/console/transazioni?")
        .nth(1)
        .and_then(|r| r.split("\" id=\"successive\"").next())
        .expect("a link to the next page")
        .replace("&amp;", "&");
    assert!(successiva.contains("esito=fault"), "{successiva}");
    let seconda = get(&format!("/console/transazioni?{successiva}"));
    let due = righe(&seconda);
    assert_eq!(due.len(), 1, "{seconda}");
    assert!(due[0] < uno[49]);
    assert!(!seconda.contains("id=\"successive\""));
    // Markup in a query comes back escaped.
    let r = get("/console/transazioni?mittente=%3Cscript%3Ex%3C%2Fscript%3E");
    assert!(
        r.contains("&lt;script&gt;x&lt;/script&gt;") && !r.contains("<script>x"),
        "{r}"
    );
    // A login form from another origin is refused; an empty one is a 400; a large body a 413.
    let r = post_login(
        addr,
        &format!("utente=anna&password={password}"),
        Some("http://evil.example"),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = post_login(addr, "utente=&password=", None);
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = post_login(addr, &"x".repeat(300 * 1024), None);
    assert!(
        r.starts_with("HTTP/1.1 413") && r.contains("troppo grande"),
        "{r}"
    );
    // A method the console does not use.
    let r = grezzo(
        addr,
        &format!("DELETE /console/partner HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {sessione}\r\n\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    // Logged out: the session no longer opens pages.
    let csrf = get("/console")
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let corpo = format!("csrf={csrf}");
    let r = grezzo(
        addr,
        &format!("POST /console/esci HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {sessione}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{corpo}", corpo.len()),
    );
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    assert!(r.contains("Max-Age=0"), "{r}");
    let r = get("/console");
    assert!(
        r.starts_with("HTTP/1.1 303") && r.contains("location: /console/login"),
        "{r}"
    );
}

#[tokio::test]
async fn the_console_is_not_on_the_read_apis_listener() {
    let mut c = pdd::config::Config::default();
    let api = common::free_port();
    c.api_listen = Some(([127, 0, 0, 1], api).into());
    let gw = common::start(c).await;
    common::eventually("the API listener", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", api))
            .await
            .is_ok()
    })
    .await;
    let (status, body) = tokio::task::spawn_blocking(move || {
        http(
            ([127, 0, 0, 1], api).into(),
            "GET",
            "/console/login",
            &[],
            b"",
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status, 404, "{body}");
    // On the main (plain, loopback) listener it is.
    let r = common::post(&gw.url("/console/login"), Vec::new(), &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    gw.stop().await;
}
