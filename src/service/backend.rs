//! Sbustamento: the unwrapped SOAP message goes to the backend with the busta data in
//! `X-PDD-*` headers; the backend's SOAP answer is wrapped in the response busta.

use std::time::Duration;

use super::{Chiamata, Reply, ServiceError};
use crate::soap::Envelope;
use crate::transport::Transport;
use crate::xml::Limits;

/// The integration headers carrying the busta to the backend.
pub fn integration_headers(c: &Chiamata<'_>) -> Vec<(String, String)> {
    let b = c.busta;
    let mut h = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            h.push((k.to_string(), v));
        }
    };
    put("X-PDD-Mittente", b.mittente.as_ref().map(|p| p.to_string()));
    put(
        "X-PDD-Destinatario",
        b.destinatario.as_ref().map(|p| p.to_string()),
    );
    put(
        "X-PDD-Servizio",
        b.servizio
            .as_ref()
            .map(|s| format!("{}/{}", s.tipo, s.nome)),
    );
    put("X-PDD-Azione", b.azione.clone());
    put("X-PDD-Identificatore", b.id.clone());
    put("X-PDD-Profilo", b.profilo.map(|p| p.as_str().to_string()));
    put("X-PDD-Collaborazione", b.collaborazione.clone());
    put(
        "X-PDD-RiferimentoMessaggio",
        b.riferimento_messaggio.clone(),
    );
    h
}

pub async fn call(
    client: &dyn Transport,
    url: &str,
    c: &Chiamata<'_>,
    timeout: Duration,
    limits: Limits,
) -> Result<Reply, ServiceError> {
    let message = c.env.without_all(&c.rimuovi);
    let mut headers = integration_headers(c);
    // Attachments go on as SOAP with Attachments, without the Manifest (already undone).
    let corpo = if c.allegati.is_empty() {
        bytes::Bytes::from(message)
    } else {
        let m = crate::mime::Corpo::scrivi(&message, c.allegati);
        headers.push(("Content-Type".into(), m.content_type));
        m.corpo
    };
    let resp = client
        .post_soap(url, corpo, &headers, timeout)
        .await
        .map_err(|e| ServiceError::Backend(e.to_string()))?;
    // A backend answering with attachments: its envelope is the root part.
    let ct = resp.content_type.as_deref().unwrap_or("");
    let (radice, allegati) = if crate::mime::is_multipart_related(ct) {
        let m = crate::mime::leggi(ct, &resp.body, crate::mime::Limiti::default())
            .map_err(|e| ServiceError::Backend(format!("{url}: {e}")))?;
        if let Some(d) = m.difetti.first() {
            return Err(ServiceError::Backend(format!("{url}: {d}")));
        }
        (bytes::Bytes::from(m.radice.contenuto), m.allegati)
    } else {
        (resp.body.clone(), Vec::new())
    };
    if resp.body.iter().all(u8::is_ascii_whitespace) {
        if (200..300).contains(&resp.status) {
            // A oneway backend answers with no body.
            return Ok(Reply {
                allegati: Vec::new(),
                effetti: None,
                body: String::new(),
                body_ns: Vec::new(),
                fault: false,
                note: Some(format!("backend HTTP {}", resp.status)),
            });
        }
        return Err(ServiceError::Backend(format!(
            "{url} answered HTTP {} with no body",
            resp.status
        )));
    }
    let env = Envelope::parse(&radice, limits).map_err(|e| {
        ServiceError::Backend(format!(
            "{url} answered HTTP {} with no SOAP message: {e}",
            resp.status
        ))
    })?;
    let fault = env.fault.is_some();
    Ok(Reply {
        effetti: None,
        body: env.body_content_str().to_string(),
        body_ns: env.body_ns.clone(),
        fault,
        allegati,
        note: Some(match &env.fault {
            Some(f) => format!("backend fault {}: {}", f.code, f.string),
            None => format!("backend HTTP {}", resp.status),
        }),
    })
}
