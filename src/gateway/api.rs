//! What a node offers besides the porte: the read API of published moduli (anonymous, or with
//! contact data for registered users), API users, the percettori's last-employment table,
//! contacts delivered here, EURES documents.

use super::Gateway;
use crate::modulo::Tipo;
use crate::rete::percettori::Rapporto;
use crate::rete::scheda::{self, Filtro, Voce};
use crate::rete::{impronta, Contatto, Inoltro, Utente};
use crate::store::{Leggero, Scrittura, StatoModulo, StoreError};

/// A light modulo as a [`Voce`] of the read API, if it is published here.
fn voce(l: &Leggero) -> Option<Voce<'_>> {
    Some(Voce {
        scheda: l.scheda.as_ref()?,
        inserita: &l.inserita,
        aggiornata: &l.aggiornata,
        scadenza: l.scadenza.as_deref(),
    })
}

/// A refused API request: HTTP status and message.
pub type Rifiuto = (u16, String);

fn interno(e: StoreError) -> Rifiuto {
    (500, e.to_string())
}

impl Gateway {
    /// `GET /api/candidature` and `/api/vacancies`: the active moduli of a kind, filtered and
    /// paged; contact data only for registered users.
    pub fn pubblicati(
        &self,
        t: Tipo,
        query: Option<&str>,
        registrato: bool,
    ) -> Result<serde_json::Value, Rifiuto> {
        let f = Filtro::da_query(query).map_err(|e| (400, e))?;
        // Filter on the index (no document read), then read the page's moduli whole.
        let mut ammessi: Vec<std::sync::Arc<Leggero>> = Vec::new();
        self.store
            .per_ogni_leggero(t.as_str(), &mut |l| {
                if l.stato == StatoModulo::Attivo
                    && voce(l).is_some_and(|v| scheda::ammessa(&v, &f))
                {
                    ammessi.push(l.clone());
                }
            })
            .map_err(interno)?;
        let (totale, scelti) = scheda::seleziona(ammessi.iter().filter_map(|l| voce(l)), &f);
        let mut pagina = Vec::with_capacity(scelti.len());
        for v in &scelti {
            if let Some(m) = self
                .store
                .modulo(t.as_str(), &v.scheda.codice)
                .map_err(interno)?
            {
                // Closed or expired since the index was read: not published any more.
                if m.stato == StatoModulo::Attivo {
                    pagina.push(m);
                }
            }
        }
        let voci: Vec<Voce<'_>> = pagina
            .iter()
            .filter_map(|m| {
                Some(Voce {
                    scheda: m.scheda.as_ref()?,
                    inserita: &m.received_at,
                    aggiornata: &m.updated_at,
                    scadenza: m.scadenza.as_deref(),
                })
            })
            .collect();
        Ok(scheda::pagina(&voci, totale, &f, registrato))
    }

    /// Whether a bearer token belongs to a registered user.
    pub fn token_valido(&self, token: &str) -> Result<bool, StoreError> {
        let h = impronta(token.trim());
        Ok(self.utenti()?.iter().any(|u| u.sha256 == h))
    }

    pub fn utenti(&self) -> Result<Vec<Utente>, StoreError> {
        self.store
            .elenca("utenti", b"")?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("utente: {e}")))
            })
            .collect()
    }

    /// Registers a user and returns the token (shown once; only its hash is kept).
    pub async fn aggiungi_utente(&self, nome: &str) -> Result<String, Rifiuto> {
        let nome = nome.trim();
        if nome.is_empty()
            || nome.len() > 64
            || !nome
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
        {
            return Err((
                400,
                format!("nome utente '{nome}': lettere, cifre, . - _ @ (al più 64)"),
            ));
        }
        if self
            .utenti()
            .map_err(interno)?
            .iter()
            .any(|u| u.nome == nome)
        {
            return Err((409, format!("l'utente {nome} esiste già")));
        }
        let mut raw = [0u8; 24];
        openssl::rand::rand_bytes(&mut raw).map_err(|e| (500, e.to_string()))?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let u = Utente {
            nome: nome.to_string(),
            sha256: impronta(&token),
            creato: self
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        };
        self.store
            .scrivi(&[Scrittura::metti("utenti", nome, &u)])
            .map_err(interno)?;
        self.store.flush().await.map_err(interno)?;
        tracing::info!(utente = nome, "API user added");
        Ok(token)
    }

    pub async fn rimuovi_utente(&self, nome: &str) -> Result<bool, StoreError> {
        if self.store.leggi("utenti", nome.as_bytes())?.is_none() {
            return Ok(false);
        }
        self.store.scrivi(&[Scrittura::togli("utenti", nome)])?;
        self.store.flush().await?;
        Ok(true)
    }

    /// Adds last-employment records; a worker's later record wins over an earlier one.
    pub async fn importa_rapporti(
        &self,
        righe: &[(String, Rapporto)],
    ) -> Result<usize, StoreError> {
        let batch = importa(self.store.as_ref(), righe)?;
        self.store.scrivi(&batch)?;
        self.store.flush().await?;
        Ok(batch.len())
    }

    pub fn contatti(&self) -> Result<Vec<Contatto>, StoreError> {
        elenco(self.store.as_ref(), "contatti")
    }

    pub fn eures(&self) -> Result<Vec<Inoltro>, StoreError> {
        elenco(self.store.as_ref(), "eures")
    }
}

/// The writes that import last-employment records into a store.
pub fn importa(
    store: &dyn crate::store::Store,
    righe: &[(String, Rapporto)],
) -> Result<Vec<Scrittura>, StoreError> {
    let mut batch: Vec<Scrittura> = Vec::new();
    let mut visti: std::collections::HashMap<&str, &Rapporto> = Default::default();
    for (cf, r) in righe {
        let prima: Option<Rapporto> = match visti.get(cf.as_str()) {
            Some(r) => Some((*r).clone()),
            None => store
                .leggi("rapporti", cf.as_bytes())?
                .and_then(|v| serde_json::from_slice(&v).ok()),
        };
        if prima.is_some_and(|p| p.dal > r.dal) {
            continue;
        }
        visti.insert(cf, r);
        batch.push(Scrittura::metti("rapporti", cf.as_bytes(), r));
    }
    Ok(batch)
}

/// Every value of a tree, decoded.
pub fn elenco<T: serde::de::DeserializeOwned>(
    store: &dyn crate::store::Store,
    albero: &str,
) -> Result<Vec<T>, StoreError> {
    store
        .elenca(albero, b"")?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("{albero}: {e}")))
        })
        .collect()
}
