//! The register of accredited intermediaries a node keeps (document §1.2, §2.2, §2.3): the data
//! each one "comunicato in sede di accreditamento", from which the node fills the DatiSistema of
//! the moduli its intermediaries publish, and its kind (only an agenzia per il lavoro gives a
//! `codiceoffertaintermediario`). Imported with `pdd intermediari import FILE.csv`; the file's
//! header names its columns, in any order.

use serde::{Deserialize, Serialize};

use super::tabelle::{csv_line, tabelle};

/// What kind of intermediary (document §1.2, actors 6–8 and L. 183/2010).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TipoIntermediario {
    /// Centro per l'impiego (servizi per l'impiego).
    Cpi,
    /// Agenzia per il lavoro (albo delle agenzie): the only one with a codice offerta.
    Agenzia,
    /// Ente bilaterale (sezione apposita dell'albo).
    EnteBilaterale,
    /// Università, pubblica o privata.
    Universita,
    /// Other subjects in the special authorisation regime (comuni, camere di commercio,
    /// scuole, associazioni, patronati, consulenti del lavoro…).
    Autorizzato,
}

impl TipoIntermediario {
    pub const TUTTI: [TipoIntermediario; 5] = [
        TipoIntermediario::Cpi,
        TipoIntermediario::Agenzia,
        TipoIntermediario::EnteBilaterale,
        TipoIntermediario::Universita,
        TipoIntermediario::Autorizzato,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TipoIntermediario::Cpi => "cpi",
            TipoIntermediario::Agenzia => "agenzia",
            TipoIntermediario::EnteBilaterale => "ente-bilaterale",
            TipoIntermediario::Universita => "universita",
            TipoIntermediario::Autorizzato => "autorizzato",
        }
    }

    pub fn parse(s: &str) -> Option<TipoIntermediario> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::TUTTI.into_iter().find(|t| t.as_str() == s)
    }
}

/// One accredited intermediary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intermediario {
    /// Numeric (11 digits) or personal (16 characters, sole traders): the key.
    pub codice_fiscale: String,
    pub denominazione: String,
    pub tipo: TipoIntermediario,
    /// Its code in the network (`idintermediario`/`intermediario`, at most 11 characters;
    /// for an agenzia its authorisation code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indirizzo: Option<String>,
    /// Belfiore code of the comune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comune: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telefono: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The columns of the import file.
pub const COLONNE: [&str; 10] = [
    "codice_fiscale",
    "denominazione",
    "tipo",
    "codice",
    "indirizzo",
    "comune",
    "cap",
    "telefono",
    "fax",
    "email",
];
const OBBLIGATORIE: [&str; 3] = ["codice_fiscale", "denominazione", "tipo"];

/// Why the file or one of its lines is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RigaError {
    #[error("intestazione: manca la colonna {0} (colonne: {cols})", cols = COLONNE.join(","))]
    ColonnaMancante(&'static str),
    #[error("intestazione: colonna '{0}' sconosciuta (colonne: {cols})", cols = COLONNE.join(","))]
    ColonnaSconosciuta(String),
    #[error("intestazione: colonna {0} ripetuta")]
    ColonnaRipetuta(String),
    #[error("{0} campi, l'intestazione ne ha {1}")]
    Campi(usize, usize),
    #[error("{0}: obbligatorio")]
    Vuoto(&'static str),
    #[error("codice fiscale '{cf}': {errore}")]
    CodiceFiscale { cf: String, errore: String },
    #[error("tipo '{0}': uno di cpi, agenzia, ente-bilaterale, universita, autorizzato")]
    Tipo(String),
    #[error("{campo} '{valore}': {perche}")]
    Campo {
        campo: &'static str,
        valore: String,
        perche: &'static str,
    },
}

/// The import file's header: where each column is.
#[derive(Debug, Clone)]
pub struct Intestazione {
    posizioni: Vec<&'static str>,
}

impl Intestazione {
    /// Reads the header line (a UTF-8 BOM is skipped).
    pub fn leggi(line: &str) -> Result<Intestazione, RigaError> {
        let mut posizioni: Vec<&'static str> = Vec::new();
        for nome in csv_line(line.trim_start_matches('\u{feff}').trim_end()) {
            let nome = nome.trim().to_ascii_lowercase().replace(['-', ' '], "_");
            let nome = if nome == "e_mail" {
                "email".into()
            } else {
                nome
            };
            let c = COLONNE
                .iter()
                .find(|c| **c == nome)
                .ok_or_else(|| RigaError::ColonnaSconosciuta(nome.clone()))?;
            if posizioni.contains(c) {
                return Err(RigaError::ColonnaRipetuta(nome));
            }
            posizioni.push(c);
        }
        for c in OBBLIGATORIE {
            if !posizioni.contains(&c) {
                return Err(RigaError::ColonnaMancante(c));
            }
        }
        Ok(Intestazione { posizioni })
    }

    /// One line: an intermediary whose every field is checked against what a modulo may carry
    /// (the schema's lengths and patterns, codice fiscale, comune).
    pub fn riga(&self, line: &str) -> Result<Intermediario, RigaError> {
        let campi = csv_line(line.trim_end_matches(['\r', '\n']));
        if campi.len() != self.posizioni.len() {
            return Err(RigaError::Campi(campi.len(), self.posizioni.len()));
        }
        let valore = |nome: &str| -> Option<String> {
            self.posizioni
                .iter()
                .position(|c| *c == nome)
                .map(|i| campi[i].trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let cf = valore("codice_fiscale")
            .ok_or(RigaError::Vuoto("codice_fiscale"))?
            .to_ascii_uppercase();
        super::cf::verifica(&cf).map_err(|e| RigaError::CodiceFiscale {
            cf: cf.clone(),
            errore: e.to_string(),
        })?;
        let tipo_s = valore("tipo").ok_or(RigaError::Vuoto("tipo"))?;
        let tipo = TipoIntermediario::parse(&tipo_s).ok_or(RigaError::Tipo(tipo_s))?;
        let i = Intermediario {
            codice_fiscale: cf,
            denominazione: valore("denominazione").ok_or(RigaError::Vuoto("denominazione"))?,
            tipo,
            codice: valore("codice"),
            indirizzo: valore("indirizzo"),
            comune: valore("comune").map(|c| c.to_ascii_uppercase()),
            cap: valore("cap"),
            telefono: valore("telefono"),
            fax: valore("fax"),
            email: valore("email"),
        };
        i.verifica()?;
        Ok(i)
    }
}

fn campo(campo: &'static str, valore: &str, perche: &'static str) -> RigaError {
    RigaError::Campo {
        campo,
        valore: valore.to_string(),
        perche,
    }
}

impl Intermediario {
    /// Whether every field fits the DatiSistema of a modulo (what the node writes there).
    pub fn verifica(&self) -> Result<(), RigaError> {
        let lungo = |nome: &'static str, v: &Option<String>, max: usize| match v {
            Some(v) if v.chars().count() > max => Err(campo(
                nome,
                v,
                match max {
                    11 => "al più 11 caratteri",
                    15 => "al più 15 caratteri",
                    100 => "al più 100 caratteri",
                    _ => "troppo lungo",
                },
            )),
            _ => Ok(()),
        };
        if self.denominazione.chars().count() > 200 {
            return Err(campo(
                "denominazione",
                &self.denominazione,
                "al più 200 caratteri",
            ));
        }
        lungo("codice", &self.codice, 11)?;
        lungo("indirizzo", &self.indirizzo, 100)?;
        lungo("telefono", &self.telefono, 15)?;
        lungo("fax", &self.fax, 15)?;
        if let Some(c) = &self.comune {
            if tabelle().comune(c).is_none() {
                return Err(campo("comune", c, "atteso il codice Belfiore di un comune"));
            }
        }
        if let Some(c) = &self.cap {
            if c.len() != 5 || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(campo("cap", c, "attese 5 cifre"));
            }
        }
        if let Some(e) = &self.email {
            if !email_valida(e) {
                return Err(campo("email", e, "atteso un indirizzo nome@dominio"));
            }
        }
        Ok(())
    }
}

/// The schema's `mail` type: local part and domain of allowed characters, dot-separated.
fn email_valida(e: &str) -> bool {
    let ammesso = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let parti = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.chars().all(ammesso))
    };
    e.len() <= 256 && matches!(e.split_once('@'), Some((l, d)) if parti(l) && parti(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTESTAZIONE: &str =
        "codice_fiscale,denominazione,tipo,codice,indirizzo,comune,cap,telefono,fax,email";

    #[test]
    fn reads_lines_by_the_header_and_explains_bad_ones() {
        let h = Intestazione::leggi(INTESTAZIONE).unwrap();
        let i = h
            .riga("80213330584,\"Agenzia Lavoro, Spa\",agenzia,AG1234,Via Roma 1,a944,40121,051123456,,info@agenzia.it")
            .unwrap();
        assert_eq!(i.denominazione, "Agenzia Lavoro, Spa");
        assert_eq!(i.tipo, TipoIntermediario::Agenzia);
        assert_eq!(i.comune.as_deref(), Some("A944"));
        assert_eq!(i.fax, None);
        // Columns in another order, only the mandatory ones.
        let h = Intestazione::leggi("\u{feff}tipo,Codice-Fiscale,denominazione").unwrap();
        let i = h.riga("CPI,80213330584,CPI Bologna").unwrap();
        assert_eq!(i.tipo, TipoIntermediario::Cpi);
        assert_eq!(i.codice_fiscale, "80213330584");
        for (header, part) in [
            ("codice_fiscale,denominazione", "manca la colonna tipo"),
            (
                "codice_fiscale,denominazione,tipo,sito",
                "'sito' sconosciuta",
            ),
            ("codice_fiscale,denominazione,tipo,tipo", "ripetuta"),
        ] {
            let e = Intestazione::leggi(header).unwrap_err().to_string();
            assert!(e.contains(part), "{header}: {e}");
        }
        let h = Intestazione::leggi(INTESTAZIONE).unwrap();
        for (line, part) in [
            ("80213330585,X,cpi,,,,,,,", "codice fiscale"),
            ("80213330584,X,sindacato,,,,,,,", "tipo 'sindacato'"),
            ("80213330584,,cpi,,,,,,,", "denominazione: obbligatorio"),
            ("80213330584,X,cpi,,,Z999,,,,", "comune"),
            ("80213330584,X,cpi,,,,4012,,,", "cap"),
            ("80213330584,X,cpi,,,,,0511234567890123,,", "telefono"),
            ("80213330584,X,cpi,CODICE_TROPPO_LUNGO,,,,,,", "codice"),
            ("80213330584,X,cpi,,,,,,,posta.it", "email"),
            ("80213330584,X,cpi", "3 campi"),
        ] {
            let e = h.riga(line).unwrap_err().to_string();
            assert!(e.contains(part), "{line}: {e}");
        }
    }
}
