//! What a node offers besides the porte: the read API of published moduli (anonymous, or with
//! contact data for registered users), API users, the percettori's last-employment table,
//! contacts delivered here, EURES documents.

use std::sync::Arc;

use super::Shared;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::Tipo;
use crate::rete::scheda::{self, Filtro, Voce};
use crate::store::{Contatto, Forward, Store, StoreError, User, Write};

/// SHA-256 of a token, hex.
pub fn impronta(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why the read API or a user operation is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error(transparent)]
    Query(#[from] crate::rete::scheda::QueryError),
    #[error("nome utente '{0}': lettere, cifre, . - _ @ (al più 64)")]
    NomeUtente(String),
    #[error("l'utente {0} esiste già")]
    UtenteEsiste(String),
    #[error("token: {0}")]
    Token(String),
    #[error("intermediario {0}")]
    Intermediario(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status that says it.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Query(_) | ApiError::NomeUtente(_) | ApiError::Intermediario(_) => 400,
            ApiError::UtenteEsiste(_) => 409,
            _ => 500,
        }
    }
}

/// The read API, API users, and the network's tables a node keeps.
pub struct ReadApi {
    s: Arc<Shared>,
}

impl ReadApi {
    pub(super) fn new(s: Arc<Shared>) -> ReadApi {
        ReadApi { s }
    }

    /// `GET /api/candidature` and `/api/vacancies`: the active moduli of a kind, filtered and
    /// paged; contact data only for registered users.
    pub async fn pubblicati(
        &self,
        t: Tipo,
        query: Option<&str>,
        registrato: bool,
    ) -> Result<serde_json::Value, ApiError> {
        let f = Filtro::da_query(query)?;
        let scelta = self
            .s
            .store
            .pubblicati(t, &f.criteri, &f.pagina(), f.misura())
            .await?;
        let voci: Vec<Voce<'_>> = scelta
            .pagina
            .iter()
            .filter_map(|m| {
                Some(Voce {
                    scheda: m.scheda.as_ref()?,
                    inserita: m.received_at,
                    aggiornata: m.updated_at,
                    scadenza: m.scadenza,
                })
            })
            .collect();
        Ok(scheda::pagina(
            &voci,
            scelta.totale,
            scelta.successivo.as_ref(),
            &f,
            registrato,
        ))
    }

    /// The registered user a bearer token belongs to.
    pub async fn utente_del_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let h = impronta(token.trim());
        Ok(self
            .s
            .store
            .users()
            .await?
            .into_iter()
            .find(|u| u.sha256 == h)
            .map(|u| u.nome))
    }

    /// Whether a bearer token belongs to a registered user.
    pub async fn token_valido(&self, token: &str) -> Result<bool, StoreError> {
        let h = impronta(token.trim());
        Ok(self.s.store.users().await?.iter().any(|u| u.sha256 == h))
    }

    pub async fn utenti(&self) -> Result<Vec<User>, StoreError> {
        self.s.store.users().await
    }

    /// Registers a user and returns the token (shown once; only its hash is kept).
    pub async fn aggiungi_utente(&self, nome: &str) -> Result<String, ApiError> {
        let nome = nome.trim();
        if nome.is_empty()
            || nome.len() > 64
            || !nome
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
        {
            return Err(ApiError::NomeUtente(nome.to_string()));
        }
        if self.s.store.user(nome).await?.is_some() {
            return Err(ApiError::UtenteEsiste(nome.to_string()));
        }
        let mut raw = [0u8; 24];
        openssl::rand::rand_bytes(&mut raw).map_err(|e| ApiError::Token(e.to_string()))?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let u = User {
            nome: nome.to_string(),
            sha256: impronta(&token),
            creato: self
                .s
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        };
        self.s.store.apply(vec![Write::User(u)]).await?;
        self.s.store.flush().await?;
        tracing::info!(utente = nome, "API user added");
        Ok(token)
    }

    pub async fn rimuovi_utente(&self, nome: &str) -> Result<bool, StoreError> {
        if self.s.store.user(nome).await?.is_none() {
            return Ok(false);
        }
        self.s
            .store
            .apply(vec![Write::RemoveUser(nome.to_string())])
            .await?;
        self.s.store.flush().await?;
        Ok(true)
    }

    /// Adds last-employment records; a worker's later record wins over an earlier one.
    pub async fn importa_rapporti(
        &self,
        righe: &[(String, Rapporto)],
    ) -> Result<usize, StoreError> {
        let batch = importa(self.s.store.as_ref(), righe).await?;
        let n = batch.len();
        self.s.store.apply(batch).await?;
        self.s.store.flush().await?;
        Ok(n)
    }

    /// The register of accredited intermediaries.
    pub async fn intermediari(&self) -> Result<Vec<Intermediario>, StoreError> {
        self.s.store.intermediari().await
    }

    pub async fn intermediario(&self, cf: &str) -> Result<Option<Intermediario>, StoreError> {
        self.s
            .store
            .intermediario(&cf.trim().to_ascii_uppercase())
            .await
    }

    /// Adds intermediaries to the register, replacing those of the same codice fiscale (a
    /// later line of the same import wins). Each is checked again: a node's admin endpoint
    /// takes JSON from anyone on loopback, not only from the CLI that read the CSV.
    pub async fn importa_intermediari(&self, righe: &[Intermediario]) -> Result<usize, ApiError> {
        let mut batch = Vec::with_capacity(righe.len());
        for i in righe {
            let mut i = i.clone();
            i.codice_fiscale = i.codice_fiscale.trim().to_ascii_uppercase();
            crate::modulo::cf::verifica(&i.codice_fiscale).map_err(|e| {
                ApiError::Intermediario(format!("{}: codice fiscale: {e}", i.codice_fiscale))
            })?;
            i.verifica()
                .map_err(|e| ApiError::Intermediario(format!("{}: {e}", i.codice_fiscale)))?;
            batch.push(Write::Intermediario(i));
        }
        let n = batch.len();
        self.s.store.apply(batch).await?;
        self.s.store.flush().await?;
        tracing::info!(
            intermediari = n,
            "intermediaries imported into the register"
        );
        Ok(n)
    }

    /// Removes an intermediary from the register; false when there was none.
    pub async fn rimuovi_intermediario(&self, cf: &str) -> Result<bool, StoreError> {
        let cf = cf.trim().to_ascii_uppercase();
        if self.s.store.intermediario(&cf).await?.is_none() {
            return Ok(false);
        }
        self.s
            .store
            .apply(vec![Write::RemoveIntermediario(cf.clone())])
            .await?;
        self.s.store.flush().await?;
        tracing::info!(intermediario = cf, "intermediary removed from the register");
        Ok(true)
    }

    pub async fn contatti(&self) -> Result<Vec<Contatto>, StoreError> {
        self.s.store.contatti().await
    }

    pub async fn eures(&self) -> Result<Vec<Forward>, StoreError> {
        self.s.store.eures().await
    }
}

/// The writes that import last-employment records into a store.
pub async fn importa(
    store: &dyn Store,
    righe: &[(String, Rapporto)],
) -> Result<Vec<Write>, StoreError> {
    let mut batch: Vec<Write> = Vec::new();
    let mut visti: std::collections::HashMap<&str, &Rapporto> = Default::default();
    for (cf, r) in righe {
        let prima: Option<Rapporto> = match visti.get(cf.as_str()) {
            Some(r) => Some((*r).clone()),
            None => store.rapporto(cf).await?,
        };
        if prima.is_some_and(|p| p.dal > r.dal) {
            continue;
        }
        visti.insert(cf, r);
        batch.push(Write::Rapporto(cf.clone(), r.clone()));
    }
    Ok(batch)
}
