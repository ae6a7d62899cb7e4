//! The console's pages, rendered here as HTML (every value escaped), and its actions.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, FixedOffset};
use hyper::{Response, StatusCode};

use super::grafici::{self, Serie};
use super::{campo, html, modulo, registra, vai, vista_xml, Sessione};
use crate::gateway::diagnostici::Severita;
use crate::gateway::Gateway;
use crate::modulo::Tipo;
use crate::registry::Soggetto;
use crate::server::Body;
use crate::store::{Direction, Exchange, ForwardState, Outcome, StatoModulo};
use crate::wssec::pki;

/// Text escaped for HTML (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value for a URL's query or path segment.
fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const VOCI: [(&str, &str); 5] = [
    ("/console", "Cruscotto"),
    ("/console/transazioni", "Transazioni"),
    ("/console/partner", "Partner"),
    ("/console/outbox", "Outbox"),
    ("/console/moduli", "Moduli"),
];

/// A whole page: head, navigation (with the user and the exit), content.
fn pagina_html(s: Option<&Sessione>, titolo: &str, attiva: &str, corpo: &str) -> String {
    let mut out = String::with_capacity(corpo.len() + 2048);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="it"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} · pdd</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/static/console.css"><script src="/console/static/console.js" defer></script>"#,
        esc(titolo)
    );
    if let Some(s) = s {
        let _ = write!(out, r#"<meta name="csrf" content="{}">"#, esc(&s.csrf));
    }
    out.push_str(r#"</head><body><header><span class="marchio">pdd · Porta di Dominio</span>"#);
    if let Some(s) = s {
        out.push_str("<nav>");
        for (href, nome) in VOCI {
            let _ = write!(
                out,
                r#"<a href="{href}"{}>{nome}</a>"#,
                if href == attiva {
                    r#" class="attiva" aria-current="page""#
                } else {
                    ""
                }
            );
        }
        let _ = write!(
            out,
            r#"</nav><form method="post" action="/console/esci" class="esci"><span class="utente" id="chi">{} ({})</span><input type="hidden" name="csrf" value="{}"><button type="submit">Esci</button></form>"#,
            esc(&s.utente),
            s.ruolo.as_str(),
            esc(&s.csrf)
        );
    }
    let _ = write!(
        out,
        r#"</header><main><h1>{}</h1>{corpo}</main></body></html>"#,
        esc(titolo)
    );
    out
}

pub fn login(errore: Option<&str>) -> String {
    let mut c = String::new();
    if let Some(e) = errore {
        let _ = write!(c, r#"<p class="avviso errore" role="alert">{}</p>"#, esc(e));
    }
    c.push_str(
        r#"<form method="post" action="/console/login" class="accesso"><label>Utente <input name="utente" id="utente" autocomplete="username" required maxlength="64"></label><label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label><button type="submit" id="entra">Entra</button></form><p class="nota">Gli utenti si creano con <code>pdd users add NOME --ruolo operatore|lettore</code>.</p>"#,
    );
    pagina_html(None, "Accesso alla console", "", &c)
}

pub fn errore(s: Option<&Sessione>, titolo: &str, testo: &str) -> String {
    pagina_html(
        s,
        titolo,
        "",
        &format!(
            r#"<p class="avviso errore" role="alert">{}</p><p><a href="/console">Torna al cruscotto</a></p>"#,
            esc(testo)
        ),
    )
}

/// An action done: recorded as a diagnostic (`codice`, `diagnostico`), then back to `pagina`
/// with `messaggio` for the user.
async fn fatto(
    gw: &Gateway,
    codice: &str,
    diagnostico: String,
    pagina: &str,
    messaggio: &str,
) -> Response<Body> {
    registra(gw, Severita::InfoIntegration, codice, diagnostico).await;
    vai(&format!("{pagina}?fatto={}", url(messaggio)))
}

fn non_trovato(s: &Sessione, testo: &str) -> Response<Body> {
    html(StatusCode::NOT_FOUND, errore(Some(s), "Non trovato", testo))
}

fn richiesta_errata(s: &Sessione, testo: &str) -> Response<Body> {
    html(
        StatusCode::BAD_REQUEST,
        errore(Some(s), "Richiesta non valida", testo),
    )
}

fn guasto(s: &Sessione, e: impl std::fmt::Display) -> Response<Body> {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        errore(Some(s), "Archivio non disponibile", &e.to_string()),
    )
}

fn ora(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn ora_ms(ms: i64, offset: FixedOffset) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| ora(&t.with_timezone(&offset)))
        .unwrap_or_default()
}

fn esito_it(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::ErroreBusta => "busta di errore",
        Outcome::Fault => "SOAP Fault",
        Outcome::ErroreProcessamento => "errore di processamento",
        Outcome::Duplicato => "duplicato",
        Outcome::Sconosciuto => "esito sconosciuto",
    }
}

const ESITI: [Outcome; 6] = [
    Outcome::Ok,
    Outcome::ErroreBusta,
    Outcome::Fault,
    Outcome::ErroreProcessamento,
    Outcome::Duplicato,
    Outcome::Sconosciuto,
];

fn tipo_di(s: &str) -> Option<Tipo> {
    Tipo::ALL.into_iter().find(|t| t.as_str() == s)
}

fn stato_it(s: StatoModulo) -> &'static str {
    match s {
        StatoModulo::Attivo => "attivo",
        StatoModulo::Chiuso => "chiuso",
        StatoModulo::Rettificato => "rettificato",
        StatoModulo::Scaduto => "scaduto",
    }
}

/// A flash message after an action (carried in the query of the redirect).
fn esito_azione(query: Option<&str>) -> String {
    let f = modulo(query.unwrap_or(""));
    match campo(&f, "fatto") {
        Some(t) if !t.is_empty() => format!(
            r#"<p class="avviso fatto" role="status" id="esito">{}</p>"#,
            esc(t)
        ),
        _ => String::new(),
    }
}

/// A GET page of the console.
pub async fn pagina(gw: &Gateway, s: &Sessione, path: &str, query: Option<&str>) -> Response<Body> {
    let path = path.trim_end_matches('/');
    match path {
        "/console" => cruscotto(gw, s).await,
        "/console/transazioni" => transazioni(gw, s, query).await,
        "/console/partner" => partner(gw, s, query).await,
        "/console/partner/rimuovi" => conferma_rimozione(gw, s, query),
        "/console/outbox" => outbox(gw, s, query).await,
        "/console/moduli" => moduli(gw, s, query).await,
        p => {
            if let Some(resto) = p.strip_prefix("/console/transazioni/") {
                let (seq, tracce) = match resto.strip_suffix("/tracce.xml") {
                    Some(seq) => (seq, true),
                    None => (resto, false),
                };
                let Ok(seq) = seq.parse::<u64>() else {
                    return richiesta_errata(s, "Transazione: un numero di sequenza.");
                };
                return if tracce {
                    scarica_tracce(gw, s, seq).await
                } else {
                    dettaglio(gw, s, seq).await
                };
            }
            if let Some(resto) = p.strip_prefix("/console/moduli/") {
                let (tipo, codice) = resto.split_once('/').unwrap_or((resto, ""));
                let codice = crate::server::percent_decode(codice);
                return match tipo_di(tipo) {
                    Some(t) if !codice.is_empty() => modulo_storia(gw, s, t, &codice).await,
                    _ => richiesta_errata(
                        s,
                        "Modulo: /console/moduli/{candidatura|vacancy|messaggio}/{codice}.",
                    ),
                };
            }
            non_trovato(s, "Questa pagina della console non esiste.")
        }
    }
}

// --- Cruscotto ---

async fn cruscotto(gw: &Gateway, s: &Sessione) -> Response<Body> {
    let adesso = gw.now();
    let off = *adesso.offset();
    let ms = adesso.timestamp_millis();
    let minuto = 60_000;
    let fine = (ms / minuto + 1) * minuto;
    let giorno = match gw
        .store
        .exchanges_between(Some(fine - 86_400_000), None)
        .await
    {
        Ok(l) => l,
        Err(e) => return guasto(s, e),
    };
    let mut c = String::new();
    // The node.
    let own = gw.config.own();
    let spazio = match gw.config.store.engine {
        crate::config::Engine::Sled => crate::gateway::care::spazio_libero(&gw.config.data)
            .map(|b| format!("{} MiB liberi in {}", b >> 20, gw.config.data.display()))
            .unwrap_or_else(|| "spazio libero non noto".into()),
        crate::config::Engine::Postgres => "PostgreSQL (spazio gestito dal database)".into(),
    };
    let ruolo = match gw.config.role {
        crate::rete::Ruolo::Ncn => "NCN (Nodo di Coordinamento Nazionale)",
        crate::rete::Ruolo::Nr => "NR (Nodo Regionale)",
        crate::rete::Ruolo::None => "porta di dominio",
    };
    let _ = write!(
        c,
        r#"<section class="schede"><div class="scheda"><h2>Nodo</h2><dl><dt>Soggetto</dt><dd id="soggetto">{}/{}</dd><dt>Porta</dt><dd>{}</dd><dt>Ruolo</dt><dd id="ruolo">{}</dd><dt>Versione</dt><dd id="versione">pdd {} ({})</dd><dt>Nodo</dt><dd>{}</dd></dl></div>"#,
        esc(&own.tipo),
        esc(&own.nome),
        esc(&own.porta),
        ruolo,
        env!("CARGO_PKG_VERSION"),
        esc(env!("PDD_GIT_REVISION")),
        esc(&gw.nodo)
    );
    let _ = write!(
        c,
        r#"<div class="scheda"><h2>Archivio</h2><dl><dt>Motore</dt><dd>{}</dd><dt>Spazio</dt><dd id="spazio">{}</dd><dt>Scambi nelle ultime 24 ore</dt><dd>{}</dd></dl></div>"#,
        esc(gw.store.engine()),
        esc(&spazio),
        giorno.len()
    );
    // Outbox backlog per node.
    c.push_str(r#"<div class="scheda"><h2>Outbox per nodo</h2>"#);
    match gw.outbox.elenco().await {
        Ok(l) if l.is_empty() => c.push_str("<p>Nessun inoltro in attesa.</p>"),
        Ok(l) => {
            let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
            for f in &l {
                let e = per.entry(f.destinatario.as_str()).or_default();
                match f.stato {
                    ForwardState::Pending => e.0 += 1,
                    ForwardState::Refused => e.1 += 1,
                }
            }
            c.push_str("<table><thead><tr><th>Nodo</th><th>In attesa</th><th>Respinti</th></tr></thead><tbody>");
            for (d, (a, r)) in per {
                let _ = write!(c, "<tr><td>{}</td><td>{a}</td><td>{r}</td></tr>", esc(d));
            }
            c.push_str("</tbody></table>");
        }
        Err(e) => {
            let _ = write!(c, "<p>{}</p>", esc(&e.to_string()));
        }
    }
    c.push_str("</div>");
    // Certificates expiring within 30 days.
    c.push_str(r#"<div class="scheda"><h2>Certificati in scadenza (30 giorni)</h2>"#);
    let certi = certificati(gw);
    let adesso_utc = adesso.to_utc();
    let in_scadenza: Vec<_> = certi
        .iter()
        .filter(|(_, _, scade)| (*scade - adesso_utc).num_days() < 30)
        .collect();
    if in_scadenza.is_empty() {
        let _ = write!(c, "<p>Nessuno ({} certificati in uso).</p>", certi.len());
    } else {
        c.push_str(
            "<table><thead><tr><th>Di</th><th>Soggetto</th><th>Scade</th></tr></thead><tbody>",
        );
        for (chi, soggetto, scade) in in_scadenza {
            let giorni = (*scade - adesso_utc).num_days();
            let _ = write!(
                c,
                r#"<tr class="{}"><td>{}</td><td>{}</td><td>{} ({})</td></tr>"#,
                if giorni < 0 { "scaduto" } else { "in-scadenza" },
                esc(chi),
                esc(soggetto),
                scade.format("%Y-%m-%d"),
                conto_alla_rovescia(giorni)
            );
        }
        c.push_str("</tbody></table>");
    }
    c.push_str("</div></section>");
    // Charts: the last hour per minute, the last day per quarter of an hour.
    let ora_fa = fine - 3_600_000;
    let ultima_ora: Vec<&Exchange> = giorno
        .iter()
        .filter(|e| e.received_ms() >= ora_fa)
        .collect();
    let tutte: Vec<&Exchange> = giorno.iter().collect();
    for (titolo, elenco, inizio, passo, n) in [
        (
            "ultima ora, per minuto",
            &ultima_ora,
            ora_fa,
            minuto,
            60usize,
        ),
        (
            "ultime 24 ore, per quarto d'ora",
            &tutte,
            fine - 86_400_000,
            15 * minuto,
            96,
        ),
    ] {
        let (da, a) = (ora_ms(inizio, off), ora_ms(fine, off));
        let (da, a) = (da.get(11..16).unwrap_or(""), a.get(11..16).unwrap_or(""));
        let _ = write!(c, "<section class=\"grafici\"><h2>Scambi: {titolo}</h2>");
        let indice = |e: &Exchange| {
            let i = (e.received_ms() - inizio) / passo;
            (0..n as i64).contains(&i).then_some(i as usize)
        };
        // By outcome.
        let mut serie: Vec<Serie> = ESITI
            .iter()
            .map(|o| Serie {
                nome: esito_it(*o).into(),
                classe: format!("esito-{}", o.as_str()),
                valori: vec![0.0; n],
            })
            .collect();
        for e in elenco.iter() {
            if let (Some(i), Some(k)) = (indice(e), ESITI.iter().position(|o| *o == e.outcome)) {
                serie[k].valori[i] += 1.0;
            }
        }
        serie.retain(|s| s.valori.iter().any(|v| *v > 0.0));
        c.push_str(&grafici::barre("Per esito", &serie, da, a));
        // By EGOV_IT code: the six most frequent, then the others together.
        let mut per_codice: BTreeMap<String, usize> = BTreeMap::new();
        for e in elenco.iter() {
            for x in &e.eccezioni {
                *per_codice.entry(x.codice.to_string()).or_default() += 1;
            }
        }
        let mut codici: Vec<(String, usize)> = per_codice.into_iter().collect();
        codici.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let principali: Vec<String> = codici.iter().take(6).map(|(c, _)| c.clone()).collect();
        let mut serie: Vec<Serie> = principali
            .iter()
            .enumerate()
            .map(|(k, nome)| Serie {
                nome: nome.clone(),
                classe: format!("codice-{k}"),
                valori: vec![0.0; n],
            })
            .collect();
        if codici.len() > 6 {
            serie.push(Serie {
                nome: "altri codici".into(),
                classe: "codice-altri".into(),
                valori: vec![0.0; n],
            });
        }
        for e in elenco.iter() {
            let Some(i) = indice(e) else { continue };
            for x in &e.eccezioni {
                let nome = x.codice.to_string();
                let k = principali.iter().position(|p| *p == nome).unwrap_or(6);
                if let Some(s) = serie.get_mut(k) {
                    s.valori[i] += 1.0;
                }
            }
        }
        if serie.is_empty() {
            c.push_str(r#"<p class="nota">Nessuna eccezione EGOV_IT nel periodo.</p>"#);
        } else {
            c.push_str(&grafici::barre("Per codice EGOV_IT", &serie, da, a));
        }
        // Latency.
        let mut per_intervallo: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut tutte_latenze = Vec::new();
        for e in elenco.iter() {
            if let (Some(i), Some(r)) = (indice(e), e.answered_at) {
                let l = (r.timestamp_millis() - e.received_ms()).max(0) as f64;
                per_intervallo[i].push(l);
                tutte_latenze.push(l);
            }
        }
        let p50: Vec<f64> = per_intervallo
            .iter_mut()
            .map(|v| percentile(v, 0.50))
            .collect();
        let p99: Vec<f64> = per_intervallo
            .iter_mut()
            .map(|v| percentile(v, 0.99))
            .collect();
        let (t50, t99) = (
            percentile(&mut tutte_latenze.clone(), 0.50),
            percentile(&mut tutte_latenze, 0.99),
        );
        let fmt = |v: f64| {
            if v.is_finite() {
                format!("{v:.0} ms")
            } else {
                "–".into()
            }
        };
        let _ = write!(
            c,
            r#"<p class="latenza">Latenza nel periodo: p50 <strong>{}</strong>, p99 <strong>{}</strong></p>"#,
            fmt(t50),
            fmt(t99)
        );
        c.push_str(&grafici::linee(
            "Latenza p50 e p99",
            &[
                Serie {
                    nome: "p50".into(),
                    classe: "lat-p50".into(),
                    valori: p50,
                },
                Serie {
                    nome: "p99".into(),
                    classe: "lat-p99".into(),
                    valori: p99,
                },
            ],
            " ms",
            da,
            a,
        ));
        c.push_str("</section>");
    }
    html(
        StatusCode::OK,
        pagina_html(Some(s), "Cruscotto", "/console", &c),
    )
}

/// The `q` percentile of `v` (nearest rank); NaN when empty.
fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let k = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[k - 1]
}

fn conto_alla_rovescia(giorni: i64) -> String {
    match giorni {
        g if g < 0 => format!("scaduto da {} giorni", -g),
        0 => "scade oggi".into(),
        1 => "tra 1 giorno".into(),
        g => format!("tra {g} giorni"),
    }
}

/// The certificates in use: ours and the partners' (who, subject, expiry).
fn certificati(gw: &Gateway) -> Vec<(String, String, DateTime<chrono::Utc>)> {
    let mut out = Vec::new();
    if let Some(p) = &gw.config.tls.cert {
        if let Ok(b) = std::fs::read(p) {
            if let Some(c) = pki::leggi_pem(&b).ok().and_then(|v| v.into_iter().next()) {
                if let Some(t) = pki::not_after(&c) {
                    out.push(("questo nodo".into(), soggetto_cert(&c), t));
                }
            }
        }
    }
    for sg in gw.registry().soggetti() {
        if let Some(c) = cert_di(sg) {
            if let Some(t) = pki::not_after(&c) {
                out.push((format!("{}/{}", sg.tipo, sg.nome), soggetto_cert(&c), t));
            }
        }
    }
    out
}

fn cert_di(s: &Soggetto) -> Option<openssl::x509::X509> {
    pki::leggi_pem(s.cert.as_ref()?.as_bytes())
        .ok()?
        .into_iter()
        .next()
}

fn soggetto_cert(c: &openssl::x509::X509) -> String {
    c.subject_name()
        .entries()
        .map(|e| {
            format!(
                "{}={}",
                e.object().nid().short_name().unwrap_or("?"),
                e.data()
                    .to_string()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// --- Transazioni ---

const PER_PAGINA: usize = 50;

async fn transazioni(gw: &Gateway, s: &Sessione, query: Option<&str>) -> Response<Body> {
    let f = modulo(query.unwrap_or(""));
    let v = |k: &str| campo(&f, k).map(str::trim).unwrap_or("").to_string();
    let (id, mittente, destinatario, servizio, azione, esito, dal, al, dopo) = (
        v("id"),
        v("mittente"),
        v("destinatario"),
        v("servizio"),
        v("azione"),
        v("esito"),
        v("dal"),
        v("al"),
        v("dopo"),
    );
    let adesso = gw.now();
    let off = *adesso.offset();
    // Times of the form: datetime-local (yyyy-MM-ddTHH:mm), in the node's offset.
    let istante = |t: &str| -> Result<Option<i64>, ()> {
        if t.is_empty() {
            return Ok(None);
        }
        let formati = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"];
        formati
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
            .and_then(|n| n.and_local_timezone(off).single())
            .map(|t| Some(t.timestamp_millis()))
            .ok_or(())
    };
    let (Ok(da_ms), Ok(a_ms)) = (istante(&dal), istante(&al)) else {
        return richiesta_errata(s, "Dal, al: data e ora come aaaa-mm-ggThh:mm.");
    };
    let esito_f = if esito.is_empty() {
        None
    } else {
        match ESITI.iter().find(|o| o.as_str() == esito) {
            Some(o) => Some(*o),
            None => return richiesta_errata(s, "Esito sconosciuto."),
        }
    };
    let dopo_seq = if dopo.is_empty() {
        None
    } else {
        match dopo.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return richiesta_errata(s, "Pagina: un numero di sequenza."),
        }
    };
    // Without a range: the last 24 hours.
    let da_ms = da_ms.or(if a_ms.is_none() {
        Some(adesso.timestamp_millis() - 86_400_000)
    } else {
        None
    });
    let trovati: Vec<Exchange> = if !id.is_empty() {
        match gw.store.exchange_by_id(&id).await {
            Ok(e) => e.into_iter().collect(),
            Err(e) => return guasto(s, e),
        }
    } else {
        match gw.store.exchanges_between(da_ms, a_ms).await {
            Ok(l) => l,
            Err(e) => return guasto(s, e),
        }
    };
    let contiene = |campo: &Option<String>, cerca: &str| {
        cerca.is_empty()
            || campo
                .as_deref()
                .is_some_and(|v| v.to_lowercase().contains(&cerca.to_lowercase()))
    };
    let mut righe: Vec<&Exchange> = trovati
        .iter()
        .filter(|e| {
            contiene(&e.mittente, &mittente)
                && contiene(&e.destinatario, &destinatario)
                && contiene(&e.servizio, &servizio)
                && contiene(&e.azione, &azione)
                && esito_f.is_none_or(|o| e.outcome == o)
                && dopo_seq.is_none_or(|d| e.seq < d)
        })
        .collect();
    // Newest first; a page, and the key of the next.
    righe.sort_by_key(|e| std::cmp::Reverse(e.seq));
    let altre = righe.len() > PER_PAGINA;
    righe.truncate(PER_PAGINA);
    let mut c = String::new();
    let campo_testo = |nome: &str, etichetta: &str, valore: &str| {
        format!(
            r#"<label>{etichetta} <input name="{nome}" id="cerca-{nome}" value="{}"></label>"#,
            esc(valore)
        )
    };
    let _ = write!(
        c,
        r#"<form method="get" action="/console/transazioni" class="ricerca">{}{}{}{}{}<label>Esito <select name="esito" id="cerca-esito"><option value="">tutti</option>"#,
        campo_testo("id", "Identificatore", &id),
        campo_testo("mittente", "Mittente", &mittente),
        campo_testo("destinatario", "Destinatario", &destinatario),
        campo_testo("servizio", "Servizio", &servizio),
        campo_testo("azione", "Azione", &azione),
    );
    for o in ESITI {
        let _ = write!(
            c,
            r#"<option value="{}"{}>{}</option>"#,
            o.as_str(),
            if esito_f == Some(o) { " selected" } else { "" },
            esito_it(o)
        );
    }
    let _ = write!(
        c,
        r#"</select></label><label>Dal <input type="datetime-local" name="dal" value="{}"></label><label>Al <input type="datetime-local" name="al" value="{}"></label><button type="submit" id="cerca">Cerca</button></form>"#,
        esc(&dal),
        esc(&al)
    );
    if dal.is_empty() && al.is_empty() && id.is_empty() {
        c.push_str(r#"<p class="nota">Senza intervallo: le ultime 24 ore.</p>"#);
    }
    if righe.is_empty() {
        c.push_str(r#"<p id="nessuna">Nessuna transazione trovata.</p>"#);
    } else {
        c.push_str(r#"<table class="transazioni"><thead><tr><th>#</th><th>Ricevuta</th><th>Verso</th><th>Identificatore</th><th>Mittente</th><th>Destinatario</th><th>Servizio / azione</th><th>Esito</th><th>HTTP</th><th>Latenza</th></tr></thead><tbody>"#);
        for e in &righe {
            let latenza = e
                .answered_at
                .map(|r| format!("{} ms", (r.timestamp_millis() - e.received_ms()).max(0)))
                .unwrap_or_else(|| "–".into());
            let _ = write!(
                c,
                r#"<tr><td><a href="/console/transazioni/{seq}">{seq}</a></td><td>{}</td><td>{}</td><td><a href="/console/transazioni/{seq}" class="id">{}</a></td><td>{}</td><td>{}</td><td>{} / {}</td><td><span class="esito esito-{}">{}</span></td><td>{}</td><td>{latenza}</td></tr>"#,
                ora(&e.received_at.with_timezone(&off)),
                match e.direction {
                    Direction::In => "ricevuta (PA)",
                    Direction::Out => "inviata (PD)",
                },
                esc(e.request_id.as_deref().unwrap_or("–")),
                esc(e.mittente.as_deref().unwrap_or("–")),
                esc(e.destinatario.as_deref().unwrap_or("–")),
                esc(e.servizio.as_deref().unwrap_or("–")),
                esc(e.azione.as_deref().unwrap_or("–")),
                e.outcome.as_str(),
                esito_it(e.outcome),
                e.http_status,
                seq = e.seq,
            );
        }
        c.push_str("</tbody></table>");
    }
    if altre {
        if let Some(ultima) = righe.last() {
            let mut q: Vec<String> = f
                .iter()
                .filter(|(k, _)| k != "dopo")
                .map(|(k, v)| format!("{}={}", url(k), url(v)))
                .collect();
            q.push(format!("dopo={}", ultima.seq));
            let _ = write!(
                c,
                r#"<p><a href="/console/transazioni?{}" id="successive">Transazioni precedenti →</a></p>"#,
                esc(&q.join("&"))
            );
        }
    }
    html(
        StatusCode::OK,
        pagina_html(Some(s), "Transazioni", "/console/transazioni", &c),
    )
}

// --- Dettaglio ---

/// What the console says of a message's signature, from what was recorded: (class, text).
fn verdetto_firma(e: &Exchange) -> (&'static str, String) {
    let firma = |m: &[u8]| {
        memchr::memmem::find(m, b"SignatureValue").is_some()
            && memchr::memmem::find(m, b"Security").is_some()
    };
    let di_firma: Vec<String> = e
        .eccezioni
        .iter()
        .filter(|x| matches!(x.codice.0, 117 | 200 | 201 | 202))
        .map(|x| format!("{} ({})", x.codice, x.posizione))
        .collect();
    let (richiesta, risposta) = (firma(&e.request), firma(&e.response));
    if !di_firma.is_empty() {
        return ("ko", format!("Firma rifiutata: {}", di_firma.join(", ")));
    }
    match (e.direction, richiesta, risposta) {
        (Direction::In, true, _) => (
            "ok",
            format!(
                "Richiesta firmata (WS-Security), nessuna eccezione di firma (EGOV_IT_117, 200, 201, 202); risposta {}firmata",
                if risposta { "" } else { "non " }
            ),
        ),
        (Direction::Out, _, true) => (
            "ok",
            "Risposta del partner firmata (WS-Security) e accettata".to_string(),
        ),
        (_, false, false) => ("neutro", "Messaggi non firmati".to_string()),
        (_, r, q) => (
            "neutro",
            format!(
                "Richiesta {}firmata, risposta {}firmata",
                if r { "" } else { "non " },
                if q { "" } else { "non " }
            ),
        ),
    }
}

fn messaggio_html(titolo: &str, id: &str, m: &[u8]) -> String {
    let mut c = format!(r#"<section class="messaggio"><h2>{}</h2>"#, esc(titolo));
    if m.is_empty() {
        c.push_str("<p>Nessun messaggio.</p></section>");
        return c;
    }
    let _ = write!(c, r#"<pre class="xml" id="{id}">"#);
    for r in vista_xml::righe(m) {
        let rientro = "  ".repeat(r.livello.min(40));
        if r.busta {
            let _ = writeln!(
                c,
                r#"<span class="busta">{rientro}{}</span>"#,
                esc(&r.testo)
            );
        } else {
            let _ = writeln!(c, "{rientro}{}", esc(&r.testo));
        }
    }
    c.push_str("</pre></section>");
    c
}

async fn dettaglio(gw: &Gateway, s: &Sessione, seq: u64) -> Response<Body> {
    let e = match gw.store.exchange(seq).await {
        Ok(Some(e)) => e,
        Ok(None) => return non_trovato(s, &format!("Nessuna transazione {seq}.")),
        Err(e) => return guasto(s, e),
    };
    let off = *gw.now().offset();
    let mut c = String::new();
    let riga = |k: &str, v: &str| format!("<dt>{k}</dt><dd>{}</dd>", esc(v));
    let opz = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".into());
    c.push_str(r#"<section class="schede"><div class="scheda larga"><h2>Transazione</h2><dl>"#);
    c.push_str(&riga("Sequenza", &e.seq.to_string()));
    c.push_str(&riga(
        "Verso",
        match e.direction {
            Direction::In => "ricevuta sulla porta applicativa",
            Direction::Out => "inviata dalla porta delegata",
        },
    ));
    c.push_str(&riga("Identificatore", &opz(&e.request_id)));
    c.push_str(&riga("Identificatore della risposta", &opz(&e.response_id)));
    c.push_str(&riga("Mittente", &opz(&e.mittente)));
    c.push_str(&riga("Destinatario", &opz(&e.destinatario)));
    c.push_str(&riga("Servizio", &opz(&e.servizio)));
    c.push_str(&riga("Azione", &opz(&e.azione)));
    c.push_str(&riga("Profilo", &opz(&e.profilo)));
    if e.collaborazione.is_some() {
        c.push_str(&riga("Collaborazione", &opz(&e.collaborazione)));
    }
    c.push_str(&riga("Ricevuta", &ora(&e.received_at.with_timezone(&off))));
    c.push_str(&riga(
        "Risposta",
        &e.answered_at
            .map(|r| {
                format!(
                    "{} ({} ms)",
                    ora(&r.with_timezone(&off)),
                    (r.timestamp_millis() - e.received_ms()).max(0)
                )
            })
            .unwrap_or_else(|| "–".into()),
    ));
    let _ = write!(
        c,
        r#"<dt>Esito</dt><dd><span class="esito esito-{}" id="esito-transazione">{}</span> (HTTP {})</dd>"#,
        e.outcome.as_str(),
        esito_it(e.outcome),
        e.http_status
    );
    c.push_str(&riga("Nota", &opz(&e.note)));
    c.push_str(&riga("Interlocutore", &opz(&e.peer)));
    let (classe, testo) = verdetto_firma(&e);
    let _ = write!(
        c,
        r#"<dt>Firma</dt><dd><span class="firma firma-{classe}" id="firma">{}</span></dd>"#,
        esc(&testo)
    );
    c.push_str("</dl>");
    let _ = write!(
        c,
        r#"<p><a href="/console/transazioni/{}/tracce.xml" id="scarica-tracce" download>Scarica le tracce CNIPA (XML)</a></p></div></section>"#,
        e.seq
    );
    if !e.eccezioni.is_empty() {
        c.push_str(r#"<section><h2>Eccezioni</h2><table><thead><tr><th>Codice</th><th>Rilevanza</th><th>Posizione</th><th>Contesto</th></tr></thead><tbody>"#);
        for x in &e.eccezioni {
            let _ = write!(
                c,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&x.codice.to_string()),
                esc(&format!("{:?}", x.rilevanza)),
                esc(&x.posizione),
                esc(&x.contesto)
            );
        }
        c.push_str("</tbody></table></section>");
    }
    // The diagnostics of this exchange, as a timeline.
    let da = e.received_ms() - 1000;
    let a = e
        .answered_at
        .map_or(e.received_ms(), |r| r.timestamp_millis())
        + 60_000;
    let ids: Vec<&str> = [e.request_id.as_deref(), e.response_id.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    c.push_str(r#"<section><h2>Diagnostica</h2>"#);
    match gw.store.diagnostici(Some(da), Some(a)).await {
        Ok(l) => {
            let l: Vec<_> = l
                .into_iter()
                .filter(|d| {
                    d.seq == Some(e.seq) || d.id.as_deref().is_some_and(|i| ids.contains(&i))
                })
                .collect();
            if l.is_empty() {
                c.push_str("<p>Nessun messaggio diagnostico.</p>");
            } else {
                c.push_str(r#"<ol class="cronologia">"#);
                for d in l {
                    let _ = write!(
                        c,
                        r#"<li class="sev-{}"><time>{}</time> <strong>{}</strong> <span class="funzione">{}</span> {}</li>"#,
                        d.severita.livello(),
                        esc(&ora(&d.ora.with_timezone(&off))),
                        esc(&d.codice),
                        esc(&d.funzione),
                        esc(&d.messaggio)
                    );
                }
                c.push_str("</ol>");
            }
        }
        Err(err) => {
            let _ = write!(c, "<p>{}</p>", esc(&err.to_string()));
        }
    }
    c.push_str("</section>");
    c.push_str(&messaggio_html("Richiesta", "richiesta", &e.request));
    c.push_str(&messaggio_html("Risposta", "risposta", &e.response));
    html(
        StatusCode::OK,
        pagina_html(
            Some(s),
            &format!("Transazione {}", e.seq),
            "/console/transazioni",
            &c,
        ),
    )
}

async fn scarica_tracce(gw: &Gateway, s: &Sessione, seq: u64) -> Response<Body> {
    let e = match gw.store.exchange(seq).await {
        Ok(Some(e)) => e,
        Ok(None) => return non_trovato(s, &format!("Nessuna transazione {seq}.")),
        Err(e) => return guasto(s, e),
    };
    let registry = gw.registry();
    let porta = crate::gateway::tracce::porta_locale(&gw.config, &registry, &e);
    let (tracce, _) = crate::gateway::tracce::tracce(&e, &porta, gw.limits);
    if tracce.is_empty() {
        return non_trovato(
            s,
            "Nessuna traccia: i messaggi non portano una busta leggibile.",
        );
    }
    let testo: String = tracce
        .iter()
        .map(crate::gateway::tracce::documento)
        .collect();
    let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::from(testo)));
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if let Ok(v) =
        hyper::header::HeaderValue::try_from(format!("attachment; filename=\"tracce-{seq}.xml\""))
    {
        h.insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    r
}

// --- Partner ---

async fn partner(gw: &Gateway, s: &Sessione, query: Option<&str>) -> Response<Body> {
    let registry = gw.registry();
    let nel_store: Vec<String> = match gw.store.partners().await {
        Ok(l) => l.iter().map(|p| format!("{}/{}", p.tipo, p.nome)).collect(),
        Err(e) => return guasto(s, e),
    };
    let adesso = gw.now().to_utc();
    let mut c = esito_azione(query);
    c.push_str(r#"<table class="partner"><thead><tr><th>Soggetto</th><th>Porta</th><th>Indirizzo</th><th>Servizi</th><th>Certificato</th><th>Origine</th><th></th></tr></thead><tbody>"#);
    for sg in registry.soggetti() {
        let nome = format!("{}/{}", sg.tipo, sg.nome);
        let cert = match cert_di(sg) {
            Some(x) => {
                let scade = pki::not_after(&x);
                format!(
                    r#"<div class="cert"><div>{}</div><div class="impronta">SHA-256 {}</div><div>{}</div></div>"#,
                    esc(&soggetto_cert(&x)),
                    esc(&pki::fingerprint(&x)),
                    scade
                        .map(|t| format!(
                            "scade il {} ({})",
                            t.format("%Y-%m-%d"),
                            conto_alla_rovescia((t - adesso).num_days())
                        ))
                        .unwrap_or_default()
                )
            }
            None => "–".into(),
        };
        let servizi = if sg.servizi.is_empty() {
            "tutti quelli che lo ammettono".to_string()
        } else {
            sg.servizi.join(", ")
        };
        let aggiunto = nel_store.contains(&nome);
        let rimuovi = if aggiunto && s.opera() {
            format!(
                r#"<a href="/console/partner/rimuovi?p={}" class="pulsante pericolo" id="rimuovi-{}">Rimuovi</a>"#,
                esc(&url(&nome)),
                esc(&sg.nome)
            )
        } else {
            String::new()
        };
        let _ = write!(
            c,
            r#"<tr id="partner-{}"><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{cert}</td><td>{}</td><td>{rimuovi}</td></tr>"#,
            esc(&sg.nome),
            esc(&nome),
            if sg.locale || sg.parte().same(&gw.config.own().parte()) {
                " (questo nodo)"
            } else {
                ""
            },
            esc(&sg.porta),
            esc(sg.url.as_deref().unwrap_or("–")),
            esc(&servizi),
            if aggiunto {
                "pdd partner add"
            } else {
                "configurazione"
            },
        );
    }
    c.push_str("</tbody></table>");
    if s.opera() {
        let _ = write!(
            c,
            r#"<section><h2>Aggiungi un partner</h2><form method="post" action="/console/partner/aggiungi" class="aggiungi" id="aggiungi-partner"><input type="hidden" name="csrf" value="{}"><label>Tipo <input name="tipo" value="SPC" required></label><label>Nome <input name="nome" id="nuovo-nome" required pattern="[A-Za-z0-9]+"></label><label>Identificativo porta <input name="porta" placeholder="NOMESPCoopIT"></label><label>Porta applicativa <input name="url" id="nuovo-url" placeholder="https://…/pdd/PA"></label><label>Servizi (separati da virgole) <input name="servizi" id="nuovo-servizi"></label><label>Certificato (PEM) <input type="file" id="file-cert" accept=".pem,.crt,.cer" data-riempie="nuovo-cert"></label><label>oppure incollato <textarea name="cert" id="nuovo-cert" rows="4"></textarea></label><button type="submit" id="aggiungi">Aggiungi</button></form><p class="nota">Come <code>pdd partner add</code>: il certificato è fissato per TLS e per le firme delle sue buste.</p></section>"#,
            esc(&s.csrf)
        );
    }
    html(
        StatusCode::OK,
        pagina_html(Some(s), "Partner", "/console/partner", &c),
    )
}

fn conferma_rimozione(gw: &Gateway, s: &Sessione, query: Option<&str>) -> Response<Body> {
    let f = modulo(query.unwrap_or(""));
    let p = campo(&f, "p").unwrap_or("");
    let Some((tipo, nome)) = p.split_once('/') else {
        return richiesta_errata(s, "Partner: TIPO/NOME.");
    };
    if gw
        .registry()
        .soggetto(&crate::egov::Parte::new(tipo, nome))
        .is_none()
    {
        return non_trovato(s, &format!("Nessun partner {p}."));
    }
    let c = format!(
        r#"<p>Rimuovere il partner <strong>{}</strong>? Le sue buste saranno rifiutate da subito.</p><form method="post" action="/console/partner/rimuovi"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="p" value="{}"><button type="submit" class="pericolo" id="conferma">Conferma la rimozione</button> <a href="/console/partner">Annulla</a></form>"#,
        esc(p),
        esc(&s.csrf),
        esc(p)
    );
    html(
        StatusCode::OK,
        pagina_html(Some(s), "Rimozione di un partner", "/console/partner", &c),
    )
}

// --- Outbox ---

async fn outbox(gw: &Gateway, s: &Sessione, query: Option<&str>) -> Response<Body> {
    let l = match gw.outbox.elenco().await {
        Ok(l) => l,
        Err(e) => return guasto(s, e),
    };
    let off = *gw.now().offset();
    let mut c = esito_azione(query);
    if l.is_empty() {
        c.push_str(r#"<p id="vuota">Nessun inoltro in attesa o respinto.</p>"#);
    } else {
        let mut per: BTreeMap<&str, Vec<&crate::store::Forward>> = BTreeMap::new();
        for f in &l {
            per.entry(f.destinatario.as_str()).or_default().push(f);
        }
        for (d, voci) in per {
            let respinti = voci
                .iter()
                .filter(|f| f.stato == ForwardState::Refused)
                .count();
            let _ = write!(
                c,
                r#"<section><h2>{} <small>{} in attesa, {} respinti</small></h2><table class="outbox"><thead><tr><th>#</th><th>Creato</th><th>Servizio / azione</th><th>Modulo</th><th>Identificatore</th><th>Stato</th><th>Tentativi</th><th>Prossimo tentativo</th><th>Ultimo errore</th><th></th></tr></thead><tbody>"#,
                esc(d),
                voci.len() - respinti,
                respinti
            );
            for f in voci {
                let riprova = if f.stato == ForwardState::Refused && s.opera() {
                    format!(
                        r#"<form method="post" action="/console/outbox/riprova"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="seq" value="{}"><button type="submit" id="riprova-{}">Riprova</button></form>"#,
                        esc(&s.csrf),
                        f.seq,
                        f.seq
                    )
                } else {
                    String::new()
                };
                let _ = write!(
                    c,
                    r#"<tr id="inoltro-{}"><td>{}</td><td>{}</td><td>{} / {}</td><td><a href="/console/moduli/{}/{}">{}</a></td><td>{}</td><td><span class="stato-{}">{}</span></td><td>{}</td><td>{}</td><td class="errore">{}</td><td>{riprova}</td></tr>"#,
                    f.seq,
                    f.seq,
                    ora(&f.creato.with_timezone(&off)),
                    esc(&f.servizio),
                    esc(&f.azione),
                    f.kind.as_str(),
                    esc(&url(&f.codice)),
                    esc(&f.codice),
                    esc(&f.id),
                    match f.stato {
                        ForwardState::Pending => "attesa",
                        ForwardState::Refused => "respinto",
                    },
                    match f.stato {
                        ForwardState::Pending => "in attesa",
                        ForwardState::Refused => "respinto",
                    },
                    f.tentativi,
                    match f.stato {
                        ForwardState::Pending => ora_ms(f.prossimo_ms, off),
                        ForwardState::Refused => "a richiesta (riprova)".into(),
                    },
                    esc(f.errore.as_deref().unwrap_or("–")),
                );
            }
            c.push_str("</tbody></table></section>");
        }
    }
    html(
        StatusCode::OK,
        pagina_html(Some(s), "Outbox", "/console/outbox", &c),
    )
}

// --- Moduli ---

async fn moduli(gw: &Gateway, s: &Sessione, query: Option<&str>) -> Response<Body> {
    let f = modulo(query.unwrap_or(""));
    let codice = campo(&f, "codice").map(str::trim).unwrap_or("");
    let mut c = String::new();
    c.push_str(r#"<section><h2>Conteggi</h2><table><thead><tr><th>Tipo</th><th>Attivi</th><th>Rettificati</th><th>Chiusi</th><th>Scaduti</th><th>Totale</th></tr></thead><tbody>"#);
    let stati = [
        StatoModulo::Attivo,
        StatoModulo::Rettificato,
        StatoModulo::Chiuso,
        StatoModulo::Scaduto,
    ];
    let mut ambiti: BTreeMap<&'static str, usize> = BTreeMap::new();
    for t in Tipo::ALL {
        let tutti = match gw.store.moduli(t).await {
            Ok(l) => l,
            Err(e) => return guasto(s, e),
        };
        let _ = write!(c, "<tr><td>{}</td>", t.as_str());
        for st in stati {
            let _ = write!(
                c,
                "<td>{}</td>",
                tutti.iter().filter(|m| m.stato == st).count()
            );
        }
        let _ = write!(c, "<td>{}</td></tr>", tutti.len());
        if t == Tipo::Candidatura {
            for m in tutti.iter().filter(|m| m.stato == StatoModulo::Attivo) {
                *ambiti.entry(ambito(m)).or_default() += 1;
            }
        }
    }
    c.push_str("</tbody></table>");
    if !ambiti.is_empty() {
        c.push_str("<h3>Candidature attive per ambito di diffusione</h3><table><tbody>");
        for (a, n) in ambiti {
            let _ = write!(c, "<tr><td>{a}</td><td>{n}</td></tr>");
        }
        c.push_str("</tbody></table>");
    }
    c.push_str("</section>");
    let _ = write!(
        c,
        r#"<section><h2>Cerca per codice</h2><form method="get" action="/console/moduli" class="ricerca"><label>Codice <input name="codice" id="cerca-codice" value="{}"></label><button type="submit">Cerca</button></form>"#,
        esc(codice)
    );
    if !codice.is_empty() {
        let mut trovati = Vec::new();
        for t in Tipo::ALL {
            match gw.store.modulo(t, codice).await {
                Ok(Some(m)) => trovati.push(m),
                Ok(None) => {}
                Err(e) => return guasto(s, e),
            }
        }
        if trovati.is_empty() {
            let _ = write!(c, "<p>Nessun modulo con codice {}.</p>", esc(codice));
        } else {
            c.push_str("<ul>");
            for m in trovati {
                let _ = write!(
                    c,
                    r#"<li><a href="/console/moduli/{}/{}">{} {}</a> ({})</li>"#,
                    m.kind.as_str(),
                    esc(&url(&m.code)),
                    m.kind.as_str(),
                    esc(&m.code),
                    stato_it(m.stato)
                );
            }
            c.push_str("</ul>");
        }
    }
    c.push_str("</section>");
    html(
        StatusCode::OK,
        pagina_html(Some(s), "Moduli", "/console/moduli", &c),
    )
}

/// The ambito di diffusione of a stored Candidatura, read from its document.
fn ambito(m: &crate::store::StoredModulo) -> &'static str {
    let Ok(root) = crate::xml::parse_document(m.xml.as_bytes(), crate::xml::Limits::default())
    else {
        return "non leggibile";
    };
    match crate::modulo::Modulo::leggi(&root) {
        Some(crate::modulo::Modulo::Candidatura(c)) => crate::rete::ambito(&c).as_str(),
        _ => "non leggibile",
    }
}

async fn modulo_storia(gw: &Gateway, s: &Sessione, t: Tipo, codice: &str) -> Response<Body> {
    let m = match gw.store.modulo(t, codice).await {
        Ok(Some(m)) => m,
        Ok(None) => return non_trovato(s, &format!("Nessun modulo {} {codice}.", t.as_str())),
        Err(e) => return guasto(s, e),
    };
    let off = *gw.now().offset();
    // The original and its rettifiche.
    let originale = m.precedente.clone().unwrap_or_else(|| m.code.clone());
    let tutti = match gw.store.moduli(t).await {
        Ok(l) => l,
        Err(e) => return guasto(s, e),
    };
    let mut storia: Vec<(DateTime<FixedOffset>, String)> = Vec::new();
    for x in tutti
        .iter()
        .filter(|x| x.code == originale || x.precedente.as_deref() == Some(originale.as_str()))
    {
        let evento = if x.code == originale {
            format!(
                "inserimento di {} (da {}, busta {})",
                x.code,
                x.mittente.as_deref().unwrap_or("–"),
                x.request_id.as_deref().unwrap_or("–")
            )
        } else {
            format!(
                "rettifica {} (da {}, busta {})",
                x.code,
                x.mittente.as_deref().unwrap_or("–"),
                x.request_id.as_deref().unwrap_or("–")
            )
        };
        storia.push((x.received_at, evento));
        match x.stato {
            StatoModulo::Chiuso => storia.push((x.updated_at, format!("chiusura di {}", x.code))),
            StatoModulo::Scaduto => {
                storia.push((x.updated_at, format!("scadenza: {} disattivato", x.code)))
            }
            _ => {}
        }
    }
    storia.sort_by_key(|(t, _)| *t);
    let mut c = String::new();
    let _ = write!(
        c,
        r#"<section class="schede"><div class="scheda larga"><h2>Modulo</h2><dl><dt>Tipo</dt><dd>{}</dd><dt>Codice</dt><dd id="codice">{}</dd><dt>Versione</dt><dd>{}</dd><dt>Stato</dt><dd id="stato">{}</dd><dt>Inserito</dt><dd>{}</dd><dt>Aggiornato</dt><dd>{}</dd><dt>Scadenza</dt><dd>{}</dd><dt>Titolare</dt><dd>{}</dd><dt>Instradato verso</dt><dd id="destinazioni">{}</dd></dl></div></section>"#,
        t.as_str(),
        esc(&m.code),
        esc(&m.versione),
        stato_it(m.stato),
        ora(&m.received_at.with_timezone(&off)),
        ora(&m.updated_at.with_timezone(&off)),
        m.scadenza
            .map(|d| d.to_string())
            .unwrap_or_else(|| "–".into()),
        esc(m.titolare.as_deref().unwrap_or("questo nodo")),
        if m.destinazioni.is_empty() {
            "nessun nodo".to_string()
        } else {
            esc(&m.destinazioni.join(", "))
        }
    );
    c.push_str(r#"<section><h2>Storia</h2><ol class="cronologia">"#);
    for (t, e) in storia {
        let _ = write!(
            c,
            "<li><time>{}</time> {}</li>",
            ora(&t.with_timezone(&off)),
            esc(&e)
        );
    }
    if let Some(d) = m.scadenza {
        let _ = write!(c, "<li>scadenza prevista: {d}</li>");
    }
    c.push_str("</ol></section>");
    // Forwards still in the outbox.
    if let Ok(l) = gw.outbox.elenco().await {
        let l: Vec<_> = l
            .iter()
            .filter(|f| f.codice == m.code && f.kind == t)
            .collect();
        if !l.is_empty() {
            c.push_str("<section><h2>In outbox</h2><ul>");
            for f in l {
                let _ = write!(
                    c,
                    r#"<li><a href="/console/outbox">{} → {}</a> ({}, {} tentativi)</li>"#,
                    esc(&f.azione),
                    esc(&f.destinatario),
                    match f.stato {
                        ForwardState::Pending => "in attesa",
                        ForwardState::Refused => "respinto",
                    },
                    f.tentativi
                );
            }
            c.push_str("</ul></section>");
        }
    }
    c.push_str(&messaggio_html("Documento", "documento", m.xml.as_bytes()));
    html(
        StatusCode::OK,
        pagina_html(
            Some(s),
            &format!("Modulo {}", m.code),
            "/console/moduli",
            &c,
        ),
    )
}

// --- Actions (operatore only, CSRF checked) ---

pub async fn azione(
    gw: &Gateway,
    s: &Sessione,
    path: &str,
    form: &[(String, String)],
) -> Response<Body> {
    match path {
        "/console/outbox/riprova" => {
            let seq = match campo(form, "seq").map(str::trim) {
                None | Some("") => None,
                Some(n) => match n.parse::<u64>() {
                    Ok(n) => Some(n),
                    Err(_) => return richiesta_errata(s, "Riprova: seq è un numero."),
                },
            };
            match gw.outbox.riprova(seq).await {
                Ok(n) => {
                    fatto(
                        gw,
                        "PDD_CONSOLE_RIPROVA",
                        format!(
                            "console: {} ha rimesso in coda {n} inoltri ({})",
                            s.utente,
                            seq.map_or("tutti i respinti".into(), |n| format!("seq {n}"))
                        ),
                        "/console/outbox",
                        &format!("Rimessi in coda: {n}."),
                    )
                    .await
                }
                Err(e) => guasto(s, e),
            }
        }
        "/console/partner/aggiungi" => {
            let v = |k: &str| campo(form, k).map(str::trim).unwrap_or("");
            let mut p = Soggetto::new(
                if v("tipo").is_empty() {
                    "SPC"
                } else {
                    v("tipo")
                },
                v("nome"),
            );
            if !v("porta").is_empty() {
                p.porta = v("porta").to_string();
            }
            if !v("url").is_empty() {
                p.url = Some(v("url").to_string());
            }
            p.servizi = v("servizi")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if !v("cert").is_empty() {
                let certs = match pki::leggi_pem(v("cert").as_bytes()) {
                    Ok(c) => c,
                    Err(e) => {
                        return richiesta_errata(s, &format!("Certificato non leggibile: {e}"))
                    }
                };
                match certs[0].to_pem() {
                    Ok(pem) => p.cert = Some(String::from_utf8_lossy(&pem).into_owned()),
                    Err(e) => {
                        return richiesta_errata(s, &format!("Certificato non leggibile: {e}"))
                    }
                }
            }
            let nome = format!("{}/{}", p.tipo, p.nome);
            match gw.aggiungi_partner(p).await {
                Ok(()) => {
                    fatto(
                        gw,
                        "PDD_CONSOLE_PARTNER_AGGIUNTO",
                        format!("console: {} ha aggiunto il partner {nome}", s.utente),
                        "/console/partner",
                        &format!("Partner {nome} aggiunto."),
                    )
                    .await
                }
                Err(e) => richiesta_errata(s, &format!("Partner {nome} non aggiunto: {e}")),
            }
        }
        "/console/partner/rimuovi" => {
            let p = campo(form, "p").unwrap_or("");
            let Some((tipo, nome)) = p.split_once('/') else {
                return richiesta_errata(s, "Partner: TIPO/NOME.");
            };
            match gw.rimuovi_partner(tipo, nome).await {
                Ok(true) => {
                    fatto(
                        gw,
                        "PDD_CONSOLE_PARTNER_RIMOSSO",
                        format!("console: {} ha rimosso il partner {p}", s.utente),
                        "/console/partner",
                        &format!("Partner {p} rimosso."),
                    )
                    .await
                }
                Ok(false) => non_trovato(
                    s,
                    &format!("{p} non è un partner aggiunto con pdd partner add (quelli della configurazione si tolgono dal file)."),
                ),
                Err(e) => richiesta_errata(s, &e.to_string()),
            }
        }
        _ => non_trovato(s, "Questa operazione della console non esiste."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(url("SPC/EMILIA x"), "SPC%2FEMILIA%20x");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert!(percentile(&mut [], 0.5).is_nan());
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
    }

    #[test]
    fn countdowns_read_in_italian() {
        assert_eq!(conto_alla_rovescia(-3), "scaduto da 3 giorni");
        assert_eq!(conto_alla_rovescia(0), "scade oggi");
        assert_eq!(conto_alla_rovescia(12), "tra 12 giorni");
    }
}
