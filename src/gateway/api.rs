//! What a node offers besides the porte: the read API of published moduli (anonymous, or with
//! contact data for registered users), API users, the percettori's last-employment table,
//! contacts delivered here, EURES documents.

use std::sync::Arc;

use super::Shared;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::Tipo;
use crate::rete::scheda::{self, Filtro, Voce};
use crate::store::{Contatto, Forward, RuoloConsole, Store, StoreError, User, Write};

/// SHA-256 of a token, hex.
pub fn impronta(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// PBKDF2-HMAC-SHA256 rounds of a console password's hash.
const ROUNDS: usize = 200_000;

/// A console password's hash: `pbkdf2-sha256$ROUNDS$SALT$HASH` (hex), with a random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| ApiError::Token(e.to_string()))?;
    let mut out = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &salt,
        ROUNDS,
        openssl::hash::MessageDigest::sha256(),
        &mut out,
    )
    .map_err(|e| ApiError::Token(e.to_string()))?;
    Ok(format!(
        "pbkdf2-sha256${ROUNDS}${}${}",
        esa(&salt),
        esa(&out)
    ))
}

/// Whether `password` is the one of `hash` ([`hash_password`]); false for a hash it cannot
/// read. The comparison takes the same time wherever the hashes differ.
pub fn verifica_password(hash: &str, password: &str) -> bool {
    let parti: Vec<&str> = hash.split('$').collect();
    let [schema, rounds, salt, atteso] = parti[..] else {
        return false;
    };
    let (Ok(rounds), Some(salt), Some(atteso)) =
        (rounds.parse::<usize>(), da_esa(salt), da_esa(atteso))
    else {
        return false;
    };
    if schema != "pbkdf2-sha256" || atteso.len() != 32 || rounds == 0 || rounds > 10_000_000 {
        return false;
    }
    let mut out = [0u8; 32];
    if openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &salt,
        rounds,
        openssl::hash::MessageDigest::sha256(),
        &mut out,
    )
    .is_err()
    {
        return false;
    }
    openssl::memcmp::eq(&out, &atteso)
}

fn esa(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn da_esa(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
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
    #[error("password: almeno 8 caratteri")]
    Password,
    #[error("intermediario {0}")]
    Intermediario(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status that says it.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Query(_)
            | ApiError::NomeUtente(_)
            | ApiError::Intermediario(_)
            | ApiError::Password => 400,
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
        let nome = self.nome_nuovo(nome).await?;
        let mut raw = [0u8; 24];
        openssl::rand::rand_bytes(&mut raw).map_err(|e| ApiError::Token(e.to_string()))?;
        let token: String = esa(&raw);
        let u = User {
            nome: nome.to_string(),
            sha256: impronta(&token),
            creato: self.creato(),
            ruolo: None,
            password: None,
        };
        self.s.store.apply(vec![Write::User(u)]).await?;
        self.s.store.flush().await?;
        tracing::info!(utente = nome, "API user added");
        Ok(token)
    }

    /// Registers a user of the operator console with a role and returns its password:
    /// `password` when given (at least 8 characters), else a new random one (shown once; only
    /// a salted hash is kept).
    pub async fn aggiungi_operatore(
        &self,
        nome: &str,
        ruolo: RuoloConsole,
        password: Option<&str>,
    ) -> Result<String, ApiError> {
        let nome = self.nome_nuovo(nome).await?;
        let password = match password {
            Some(p) if p.chars().count() < 8 => return Err(ApiError::Password),
            Some(p) => p.to_string(),
            None => {
                let mut raw = [0u8; 12];
                openssl::rand::rand_bytes(&mut raw).map_err(|e| ApiError::Token(e.to_string()))?;
                esa(&raw)
            }
        };
        let u = User {
            nome: nome.to_string(),
            sha256: String::new(),
            creato: self.creato(),
            ruolo: Some(ruolo),
            password: Some(hash_password(&password)?),
        };
        self.s.store.apply(vec![Write::User(u)]).await?;
        self.s.store.flush().await?;
        tracing::info!(utente = nome, ruolo = ruolo.as_str(), "console user added");
        Ok(password)
    }

    /// The role of a console user whose password this is; None for anyone else.
    pub async fn accedi(
        &self,
        nome: &str,
        password: &str,
    ) -> Result<Option<RuoloConsole>, StoreError> {
        let Some(u) = self.s.store.user(nome.trim()).await? else {
            // As long as a wrong password: the answer does not tell who exists.
            let _ = verifica_password(
                &format!("pbkdf2-sha256${ROUNDS}$00${}", "0".repeat(64)),
                password,
            );
            return Ok(None);
        };
        Ok(match (u.ruolo, u.password) {
            (Some(r), Some(h)) if verifica_password(&h, password) => Some(r),
            _ => None,
        })
    }

    /// A name a new user may take.
    async fn nome_nuovo<'a>(&self, nome: &'a str) -> Result<&'a str, ApiError> {
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
        Ok(nome)
    }

    fn creato(&self) -> String {
        self.s
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash_password("segreto-lungo").unwrap();
        assert!(h.starts_with("pbkdf2-sha256$200000$"), "{h}");
        assert!(verifica_password(&h, "segreto-lungo"));
        assert!(!verifica_password(&h, "segreto-lungO"));
        assert!(!verifica_password(&h, ""));
        // Two hashes of one password differ (the salt).
        assert_ne!(h, hash_password("segreto-lungo").unwrap());
        // What is not such a hash verifies nothing, and does not panic.
        for rotto in [
            "",
            "$$$",
            "pbkdf2-sha256$x$00$00",
            "md5$1$00$00",
            "pbkdf2-sha256$1$zz$00",
        ] {
            assert!(!verifica_password(rotto, "segreto-lungo"), "{rotto}");
        }
    }
}
