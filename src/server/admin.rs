//! The CLI's way into a running gateway, on loopback only: exchanges, diagnostics, partners,
//! the network's tables, the store's care.

use std::path::PathBuf;

use hyper::{Method, Response, StatusCode};

use super::{istante_ms, json, parametro, percent_decode, plain, Body};
use crate::gateway::diagnostici::{self, Severita};
use crate::gateway::Gateway;

/// The CLI's way into a running gateway (loopback only):
/// `GET /admin/exchanges?limit=N`, `GET /admin/exchanges?since=T&until=T` (received in
/// `[since, until)`, oldest first; T in ms since the epoch or RFC 3339),
/// `GET /admin/exchanges/{Identificatore or seq}`,
/// `GET /admin/diagnostici[?since=T&until=T&severity=LEVEL&limit=N]`,
/// `GET /admin/partners`, `POST /admin/partners` (a soggetto as JSON), `DELETE /admin/partners/{TIPO}/{NOME}`.
pub(super) async fn admin(
    gw: &Gateway,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    if path == "/admin/partners" || path.starts_with("/admin/partners/") {
        return admin_partners(gw, method, path, body).await;
    }
    if let Some(r) = admin_rete(gw, method, path, query, body).await {
        return r;
    }
    // `pdd store`: backup, stats, check, purge.
    if let Some(r) = admin_store(gw, method, path, body).await {
        return r;
    }
    if method != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let err = |e: crate::store::StoreError| {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": e.to_string() }),
        )
    };
    if path == "/admin/diagnostici" {
        let f = diagnostici::Filtro {
            dal: parametro(query, "since").and_then(|v| istante_ms(&v)),
            al: parametro(query, "until").and_then(|v| istante_ms(&v)),
            soglia: parametro(query, "severity").and_then(|v| Severita::parse(&v)),
            limite: parametro(query, "limit").and_then(|v| v.parse().ok()),
        };
        return match diagnostici::elenca(gw.store.as_ref(), &f).await {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::Value::Array(list.iter().map(|d| d.json()).collect()),
            ),
            Err(e) => err(e),
        };
    }
    let (since, until) = (parametro(query, "since"), parametro(query, "until"));
    if path == "/admin/exchanges" && (since.is_some() || until.is_some()) {
        let (dal, al) = (
            since.as_deref().and_then(istante_ms),
            until.as_deref().and_then(istante_ms),
        );
        if since.is_some() != dal.is_some() || until.is_some() != al.is_some() {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": "since, until: ms since the epoch or RFC 3339" }),
            );
        }
        return match gw.store.exchanges_between(dal, al).await {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::to_value(list).unwrap_or_default(),
            ),
            Err(e) => err(e),
        };
    }
    if path == "/admin/exchanges" {
        let limit = query
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("limit=")))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .min(10_000);
        return match gw.store.recent(limit).await {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::to_value(list).unwrap_or_default(),
            ),
            Err(e) => err(e),
        };
    }
    if let Some(id) = path.strip_prefix("/admin/exchanges/") {
        let id = percent_decode(id);
        let found = match gw.store.exchange_by_id(&id).await {
            Ok(Some(e)) => Ok(Some(e)),
            Ok(None) => match id.parse::<u64>() {
                Ok(seq) => gw.store.exchange(seq).await,
                Err(_) => Ok(None),
            },
            Err(e) => Err(e),
        };
        return match found {
            Ok(Some(e)) => json(StatusCode::OK, &e.to_json_full()),
            Ok(None) => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": format!("no exchange '{id}'") }),
            ),
            Err(e) => err(e),
        };
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// `pdd store …` while the gateway holds the store: `POST /admin/store/backup`
/// (`{"dir": ABSOLUTE PATH}`, answers the manifest), `GET /admin/store/stats`,
/// `GET /admin/store/check`, `POST /admin/store/purge`. None for other paths.
async fn admin_store(
    gw: &Gateway,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Option<Response<Body>> {
    fn esito<T: serde::Serialize>(r: Result<T, crate::store::StoreError>) -> Response<Body> {
        match r {
            Ok(v) => json(StatusCode::OK, &serde_json::to_value(v).unwrap_or_default()),
            Err(e) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({ "error": e.to_string() }),
            ),
        }
    }
    Some(match (method, path) {
        (&Method::POST, "/admin/store/backup") => {
            let dir = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["dir"].as_str().map(PathBuf::from));
            let Some(dir) = dir.filter(|d| d.is_absolute()) else {
                return Some(json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": "{\"dir\": an absolute path}" }),
                ));
            };
            esito(gw.care.backup(&dir).await)
        }
        (&Method::GET, "/admin/store/stats") => esito(gw.care.stats().await),
        (&Method::GET, "/admin/store/check") => esito(gw.care.check().await),
        (&Method::POST, "/admin/store/purge") => esito(gw.care.purga().await),
        (_, p) if p.starts_with("/admin/store/") => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("no {method} {p}") }),
        ),
        _ => return None,
    })
}

/// The network's admin endpoints: `GET /admin/outbox`, `GET /admin/outbox/trattenuti`, `POST /admin/outbox/retry[?seq=N]`,
/// `GET /admin/eures`, `GET /admin/contatti`, `GET|POST /admin/users`, `DELETE /admin/users/{NOME}`,
/// `POST /admin/rapporti` (JSON `[[cf, rapporto], …]`), `GET|POST /admin/intermediari`,
/// `GET|DELETE /admin/intermediari/{CF}`, `POST /admin/scadenze` (sweep now),
/// `POST /admin/clock` (`{"offset_secs": N}`, only with `PDD_TEST_CLOCK=1`).
async fn admin_rete(
    gw: &Gateway,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<Response<Body>> {
    let ok = |v: serde_json::Value| json(StatusCode::OK, &v);
    let bad = |status: StatusCode, msg: String| json(status, &serde_json::json!({ "error": msg }));
    let store_err =
        |e: crate::store::StoreError| bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let to_json = |v: Result<serde_json::Value, crate::store::StoreError>| match v {
        Ok(v) => ok(v),
        Err(e) => store_err(e),
    };
    let param = |name: &str| {
        query.and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .map(str::to_string)
        })
    };
    Some(match (method, path) {
        (&Method::GET, "/admin/outbox") => to_json(
            gw.outbox
                .elenco()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::GET, "/admin/outbox/trattenuti") => to_json(
            gw.outbox
                .trattenuti()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::POST, "/admin/outbox/retry") => {
            let seq = match param("seq").map(|s| s.parse::<u64>()) {
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => return Some(bad(StatusCode::BAD_REQUEST, "seq: a number".into())),
                None => None,
            };
            to_json(
                gw.outbox
                    .riprova(seq)
                    .await
                    .map(|n| serde_json::json!({ "requeued": n })),
            )
        }
        (&Method::GET, "/admin/eures") => to_json(
            gw.api
                .eures()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::GET, "/admin/contatti") => to_json(
            gw.api
                .contatti()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::GET, "/admin/users") => to_json(gw.api.utenti().await.map(|l| {
            serde_json::Value::Array(
                l.iter()
                    .map(|u| serde_json::json!({ "nome": u.nome, "creato": u.creato, "ruolo": u.ruolo }))
                    .collect(),
            )
        })),
        (&Method::POST, "/admin/users") => {
            let v = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
            let nome = v["nome"].as_str().unwrap_or_default().to_string();
            if let Some(r) = v.get("ruolo").filter(|r| !r.is_null()) {
                let Some(ruolo) = r.as_str().and_then(crate::store::RuoloConsole::parse) else {
                    return Some(bad(
                        StatusCode::BAD_REQUEST,
                        "ruolo: operatore or lettore".into(),
                    ));
                };
                return Some(
                    match gw
                        .api
                        .aggiungi_operatore(&nome, ruolo, v["password"].as_str())
                        .await
                    {
                        Ok(password) => ok(serde_json::json!({ "nome": nome, "ruolo": ruolo, "password": password })),
                        Err(e) => bad(
                            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                            e.to_string(),
                        ),
                    },
                );
            }
            match gw.api.aggiungi_utente(&nome).await {
                Ok(token) => ok(serde_json::json!({ "nome": nome, "token": token })),
                Err(e) => bad(
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                    e.to_string(),
                ),
            }
        }
        (&Method::DELETE, p) if p.starts_with("/admin/users/") => {
            let nome = percent_decode(&p["/admin/users/".len()..]);
            match gw.api.rimuovi_utente(&nome).await {
                Ok(true) => ok(serde_json::json!({ "removed": nome })),
                Ok(false) => bad(StatusCode::NOT_FOUND, format!("no user '{nome}'")),
                Err(e) => store_err(e),
            }
        }
        (&Method::POST, "/admin/rapporti") => {
            match serde_json::from_slice::<Vec<(String, crate::modulo::rapporto::Rapporto)>>(body) {
                Ok(righe) => to_json(
                    gw.api
                        .importa_rapporti(&righe)
                        .await
                        .map(|n| serde_json::json!({ "stored": n })),
                ),
                Err(e) => bad(StatusCode::BAD_REQUEST, format!("rapporti: {e}")),
            }
        }
        (&Method::GET, "/admin/intermediari") => to_json(
            gw.api
                .intermediari()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::GET, p) if p.starts_with("/admin/intermediari/") => {
            let cf = percent_decode(&p["/admin/intermediari/".len()..]);
            match gw.api.intermediario(&cf).await {
                Ok(Some(i)) => ok(serde_json::to_value(i).unwrap_or_default()),
                Ok(None) => bad(StatusCode::NOT_FOUND, format!("no intermediary '{cf}'")),
                Err(e) => store_err(e),
            }
        }
        (&Method::POST, "/admin/intermediari") => {
            match serde_json::from_slice::<Vec<crate::modulo::intermediario::Intermediario>>(body) {
                Ok(righe) => match gw.api.importa_intermediari(&righe).await {
                    Ok(n) => ok(serde_json::json!({ "stored": n })),
                    Err(e) => bad(
                        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                        e.to_string(),
                    ),
                },
                Err(e) => bad(StatusCode::BAD_REQUEST, format!("intermediari: {e}")),
            }
        }
        (&Method::DELETE, p) if p.starts_with("/admin/intermediari/") => {
            let cf = percent_decode(&p["/admin/intermediari/".len()..]);
            match gw.api.rimuovi_intermediario(&cf).await {
                Ok(true) => ok(serde_json::json!({ "removed": cf })),
                Ok(false) => bad(StatusCode::NOT_FOUND, format!("no intermediary '{cf}'")),
                Err(e) => store_err(e),
            }
        }
        (&Method::POST, "/admin/scadenze") => to_json(
            gw.scadenze
                .disattiva_scaduti()
                .await
                .map(|n| serde_json::json!({ "deactivated": n })),
        ),
        (&Method::POST, "/admin/clock") => match &gw.test_clock {
            None => bad(
                StatusCode::FORBIDDEN,
                "the clock is fixed (start with PDD_TEST_CLOCK=1 to move it in tests)".into(),
            ),
            Some(c) => match serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["offset_secs"].as_i64())
            {
                Some(secs) => {
                    c.set_offset_secs(secs);
                    tracing::warn!(offset_secs = secs, "test clock moved");
                    ok(serde_json::json!({ "offset_secs": secs, "now": gw.now().to_rfc3339() }))
                }
                None => bad(StatusCode::BAD_REQUEST, "{\"offset_secs\": N}".into()),
            },
        },
        _ => return None,
    })
}

async fn admin_partners(gw: &Gateway, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let bad = |status: StatusCode, msg: String| json(status, &serde_json::json!({ "error": msg }));
    match *method {
        Method::GET => {
            let reg = gw.registry();
            let stored: Vec<String> = gw
                .store
                .partners()
                .await
                .unwrap_or_default()
                .iter()
                .map(|s| format!("{}/{}", s.tipo, s.nome))
                .collect();
            let list: Vec<serde_json::Value> = reg
                .soggetti()
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    v["origine"] = serde_json::Value::String(
                        if stored.contains(&format!("{}/{}", s.tipo, s.nome)) {
                            "store"
                        } else {
                            "config"
                        }
                        .into(),
                    );
                    v
                })
                .collect();
            json(StatusCode::OK, &serde_json::Value::Array(list))
        }
        Method::POST => {
            let s: crate::registry::Soggetto = match serde_json::from_slice(body) {
                Ok(s) => s,
                Err(e) => return bad(StatusCode::BAD_REQUEST, format!("soggetto non valido: {e}")),
            };
            match gw.aggiungi_partner(s).await {
                Ok(()) => json(StatusCode::OK, &serde_json::json!({ "ok": true })),
                Err(e) => bad(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        Method::DELETE => {
            let name = percent_decode(path.trim_start_matches("/admin/partners/"));
            let Some((tipo, nome)) = name.split_once('/') else {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "use /admin/partners/{TIPO}/{NOME}".into(),
                );
            };
            match gw.rimuovi_partner(tipo, nome).await {
                Ok(true) => json(StatusCode::OK, &serde_json::json!({ "ok": true })),
                Ok(false) => bad(
                    StatusCode::NOT_FOUND,
                    format!("{tipo}/{nome} non è un partner aggiunto con pdd partner add"),
                ),
                Err(e) => bad(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}
