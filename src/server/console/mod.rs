//! The operator console, `/console` on the local listener: server-rendered pages in Italian
//! (cruscotto, transazioni, dettaglio, partner, outbox, moduli), one stylesheet and a little
//! script of its own embedded in the binary, charts drawn here as SVG.
//!
//! Access: loopback only, and only where `/admin` answers (the local listener; the main one
//! when it is plain HTTP). Users are the console users of `pdd users add NAME --ruolo
//! operatore|lettore`; a login gives a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! over TLS) kept in memory; every POST carries the session's CSRF token; a `lettore` reads and
//! never acts; logins and actions are recorded as diagnostics naming the user.

mod grafici;
mod pagine;
mod vista_xml;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Method, Response, StatusCode};

use super::Body;
use crate::gateway::diagnostici::{Diagnostico, Severita};
use crate::gateway::Gateway;
use crate::store::RuoloConsole;

/// The cookie of a console session.
const COOKIE: &str = "pdd_sessione";
/// A session unused this long ends.
const INATTIVITA: Duration = Duration::from_secs(30 * 60);
/// At most this many sessions at once (the oldest goes first).
const MAX_SESSIONI: usize = 1000;

/// The sessions of the console, in memory: a restart logs everyone out.
#[derive(Default)]
pub struct Console {
    sessioni: Mutex<HashMap<String, Sessione>>,
}

#[derive(Clone)]
pub(crate) struct Sessione {
    pub utente: String,
    pub ruolo: RuoloConsole,
    /// The token every form of the session carries (CSRF).
    pub csrf: String,
    usata: Instant,
}

impl Sessione {
    pub fn opera(&self) -> bool {
        self.ruolo == RuoloConsole::Operatore
    }
}

/// A console request, as the shell read it.
pub(crate) struct Richiesta<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub cookie: Option<&'a str>,
    /// The Origin header, if any (checked on the login form).
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
    pub body: &'a [u8],
    /// Whether the connection is TLS (the cookie is then `Secure`).
    pub tls: bool,
}

fn casuale(n: usize) -> Option<String> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).ok()?;
    Some(b.iter().map(|b| format!("{b:02x}")).collect())
}

impl Console {
    fn apri(&self, utente: &str, ruolo: RuoloConsole) -> Option<(String, Sessione)> {
        let id = casuale(32)?;
        let s = Sessione {
            utente: utente.to_string(),
            ruolo,
            csrf: casuale(32)?,
            usata: Instant::now(),
        };
        let mut m = self.sessioni.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, s| s.usata.elapsed() < INATTIVITA);
        if m.len() >= MAX_SESSIONI {
            if let Some(k) = m
                .iter()
                .min_by_key(|(_, s)| s.usata)
                .map(|(k, _)| k.clone())
            {
                m.remove(&k);
            }
        }
        m.insert(id.clone(), s.clone());
        Some((id, s))
    }

    fn sessione(&self, id: &str) -> Option<Sessione> {
        let mut m = self.sessioni.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(id) {
            Some(s) if s.usata.elapsed() < INATTIVITA => {
                s.usata = Instant::now();
                Some(s.clone())
            }
            Some(_) => {
                m.remove(id);
                None
            }
            None => None,
        }
    }

    fn chiudi(&self, id: &str) {
        self.sessioni
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The value of cookie `nome` in a Cookie header.
fn cookie<'a>(header: Option<&'a str>, nome: &str) -> Option<&'a str> {
    header?.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == nome).then_some(v)
    })
}

/// An `application/x-www-form-urlencoded` body (or query) as pairs.
pub(crate) fn modulo(testo: &str) -> Vec<(String, String)> {
    testo
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let d = |s: &str| super::percent_decode(&s.replace('+', " "));
            (d(k), d(v))
        })
        .collect()
}

/// The first value of field `k`.
pub(crate) fn campo<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// An HTML page with the console's headers: no caching, a policy that admits only our own
/// script and stylesheet, no framing.
pub(crate) fn html(status: StatusCode, corpo: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(corpo)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    intestazioni_sicure(h);
    r
}

fn intestazioni_sicure(h: &mut hyper::HeaderMap) {
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "Content-Security-Policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
    h.insert("Referrer-Policy", HeaderValue::from_static("same-origin"));
}

/// 303 to `dove`.
pub(crate) fn vai(dove: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::try_from(dove) {
        r.headers_mut().insert(LOCATION, v);
    }
    intestazioni_sicure(r.headers_mut());
    r
}

fn statico(tipo: &'static str, testo: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(testo.as_bytes())));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(tipo));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r.headers_mut().insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Records what a console user did (or tried), as a diagnostic of the function `Console`.
pub(crate) async fn registra(gw: &Gateway, sev: Severita, codice: &str, messaggio: String) {
    tracing::info!(codice, "{messaggio}");
    gw.diagnostica(Diagnostico::new(sev, "Console", codice, messaggio))
        .await;
}

/// The page for a form the shell would not read (too large, too slow), with its status.
pub(crate) fn non_letta(status: StatusCode) -> Response<Body> {
    html(
        status,
        pagine::errore(
            None,
            "Richiesta rifiutata",
            &format!(
                "Il modulo inviato non è stato letto ({}): troppo grande o troppo lento.",
                status.as_u16()
            ),
        ),
    )
}

/// Serves a `/console` request.
pub(crate) async fn console(gw: &Gateway, c: &Console, r: Richiesta<'_>) -> Response<Body> {
    match (r.method, r.path) {
        (&Method::GET, "/console/static/console.css") => {
            return statico("text/css; charset=utf-8", include_str!("console.css"))
        }
        (&Method::GET, "/console/static/console.js") => {
            return statico("text/javascript; charset=utf-8", include_str!("console.js"))
        }
        (&Method::GET, "/console/login") => return html(StatusCode::OK, pagine::login(None)),
        (&Method::POST, "/console/login") => return login(gw, c, &r).await,
        _ => {}
    }
    let id = cookie(r.cookie, COOKIE);
    let Some(s) = id.and_then(|id| c.sessione(id)) else {
        // No session: to the login, whatever was asked (a POST is not carried out).
        return vai("/console/login");
    };
    if *r.method == Method::POST {
        let form = modulo(&String::from_utf8_lossy(r.body));
        let dato = campo(&form, "csrf").unwrap_or("");
        if dato.len() != s.csrf.len() || !openssl::memcmp::eq(dato.as_bytes(), s.csrf.as_bytes()) {
            registra(
                gw,
                Severita::ErrorIntegration,
                "PDD_CONSOLE_CSRF",
                format!(
                    "console: {} {} di {} rifiutato: token CSRF mancante o errato",
                    r.method, r.path, s.utente
                ),
            )
            .await;
            return html(
                StatusCode::FORBIDDEN,
                pagine::errore(
                    Some(&s),
                    "Richiesta rifiutata",
                    "Il modulo inviato non porta il token di questa sessione (CSRF). Ricaricare la pagina e riprovare.",
                ),
            );
        }
        if r.path == "/console/esci" {
            if let Some(id) = id {
                c.chiudi(id);
            }
            registra(
                gw,
                Severita::InfoIntegration,
                "PDD_CONSOLE_LOGOUT",
                format!("console: {} è uscito", s.utente),
            )
            .await;
            let mut risposta = vai("/console/login");
            if let Ok(v) = HeaderValue::try_from(cancella_cookie(r.tls)) {
                risposta.headers_mut().insert(SET_COOKIE, v);
            }
            return risposta;
        }
        if !s.opera() {
            registra(
                gw,
                Severita::ErrorIntegration,
                "PDD_CONSOLE_NEGATO",
                format!(
                    "console: {} (lettore) ha tentato {}: negato",
                    s.utente, r.path
                ),
            )
            .await;
            return html(
                StatusCode::FORBIDDEN,
                pagine::errore(
                    Some(&s),
                    "Operazione non consentita",
                    "Il ruolo lettore consulta la console ma non esegue operazioni.",
                ),
            );
        }
        return pagine::azione(gw, &s, r.path, &form).await;
    }
    if *r.method != Method::GET {
        return html(
            StatusCode::METHOD_NOT_ALLOWED,
            pagine::errore(Some(&s), "Metodo non ammesso", "Usare GET o POST."),
        );
    }
    pagine::pagina(gw, &s, r.path, r.query).await
}

fn cancella_cookie(tls: bool) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if tls { "; Secure" } else { "" }
    )
}

async fn login(gw: &Gateway, c: &Console, r: &Richiesta<'_>) -> Response<Body> {
    // A form posted from another origin is refused (login CSRF); browsers send Origin on POST.
    if let (Some(o), Some(h)) = (r.origin, r.host) {
        let host = o.split_once("://").map_or(o, |(_, h)| h);
        if host != h {
            return html(
                StatusCode::FORBIDDEN,
                pagine::errore(
                    None,
                    "Richiesta rifiutata",
                    "Il modulo di accesso proviene da un'altra origine.",
                ),
            );
        }
    }
    let form = modulo(&String::from_utf8_lossy(r.body));
    let utente = campo(&form, "utente").unwrap_or("").trim().to_string();
    let password = campo(&form, "password").unwrap_or("");
    if utente.is_empty() || utente.len() > 64 || password.len() > 1024 {
        return html(
            StatusCode::BAD_REQUEST,
            pagine::login(Some("Indicare utente e password.")),
        );
    }
    let ruolo = match gw.api.accedi(&utente, password).await {
        Ok(r) => r,
        Err(e) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                pagine::errore(None, "Archivio non disponibile", &e.to_string()),
            )
        }
    };
    let Some(ruolo) = ruolo else {
        registra(
            gw,
            Severita::ErrorIntegration,
            "PDD_CONSOLE_ACCESSO_NEGATO",
            format!("console: accesso negato a '{utente}' (utente o password errati)"),
        )
        .await;
        return html(
            StatusCode::UNAUTHORIZED,
            pagine::login(Some("Utente o password errati.")),
        );
    };
    let Some((id, _)) = c.apri(&utente, ruolo) else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pagine::errore(None, "Errore", "Impossibile creare la sessione."),
        );
    };
    registra(
        gw,
        Severita::InfoIntegration,
        "PDD_CONSOLE_ACCESSO",
        format!("console: {utente} ({}) è entrato", ruolo.as_str()),
    )
    .await;
    let mut risposta = vai("/console");
    let valore = format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict{}",
        if r.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::try_from(valore) {
        risposta.headers_mut().insert(SET_COOKIE, v);
    }
    risposta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        let f = modulo("utente=mario+rossi&password=a%26b%3Dc&vuoto=&solo");
        assert_eq!(campo(&f, "utente"), Some("mario rossi"));
        assert_eq!(campo(&f, "password"), Some("a&b=c"));
        assert_eq!(campo(&f, "vuoto"), Some(""));
        assert_eq!(campo(&f, "solo"), Some(""));
        assert_eq!(campo(&f, "altro"), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = Some("a=1; pdd_sessione=abc; b=2");
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie(Some("pdd_sessione2=x"), COOKIE), None);
        assert_eq!(cookie(None, COOKIE), None);
    }

    #[test]
    fn sessions_open_are_found_and_closed() {
        let c = Console::default();
        let (id, s) = c.apri("mario", RuoloConsole::Lettore).unwrap();
        assert_eq!(s.csrf.len(), 64);
        assert!(!s.opera());
        assert_eq!(c.sessione(&id).unwrap().utente, "mario");
        assert!(c.sessione("altro").is_none());
        c.chiudi(&id);
        assert!(c.sessione(&id).is_none());
    }
}
