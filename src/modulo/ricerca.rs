//! Which published moduli a search admits ([`Criteri`]) and where a page of them ends
//! ([`Cursore`]). The read API parses a query into these (`rete::scheda`), and every store
//! engine answers them: in memory by [`Criteri::ammette`], in SQL by the same rules.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::scheda::Scheda;
use super::tabelle::tabelle;

/// What a search looks at in a published modulo: its [`Scheda`], or the index's
/// [`Ricercabile`] of it.
pub trait Cercabile {
    fn professioni(&self) -> impl Iterator<Item = &str>;
    fn comune(&self) -> Option<&str>;
    fn provincia(&self) -> Option<&str>;
    fn regione(&self) -> Option<&str>;
    fn testo(&self) -> &str;
}

impl Cercabile for Scheda {
    fn professioni(&self) -> impl Iterator<Item = &str> {
        self.professioni.iter().map(String::as_str)
    }
    fn comune(&self) -> Option<&str> {
        self.comune.as_deref()
    }
    fn provincia(&self) -> Option<&str> {
        self.provincia.as_deref()
    }
    fn regione(&self) -> Option<&str> {
        self.regione.as_deref()
    }
    fn testo(&self) -> &str {
        &self.testo
    }
}

/// Of a scheda, what a search filters on and no more: what an index of every active modulo
/// keeps in memory (a quarter of a [`Scheda`]'s room; the published fields are read with the
/// page's moduli). Serialised as the same fields of a scheda, so either reads as this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ricercabile {
    pub professioni: Box<[Box<str>]>,
    pub comune: Option<Box<str>>,
    pub provincia: Option<Box<str>>,
    pub regione: Option<Box<str>>,
    pub testo: Box<str>,
}

impl From<&Scheda> for Ricercabile {
    fn from(s: &Scheda) -> Ricercabile {
        let corto = |v: &Option<String>| v.as_deref().map(Box::from);
        Ricercabile {
            professioni: s
                .professioni
                .iter()
                .map(|p| Box::from(p.as_str()))
                .collect(),
            comune: corto(&s.comune),
            provincia: corto(&s.provincia),
            regione: corto(&s.regione),
            testo: Box::from(s.testo.as_str()),
        }
    }
}

impl Cercabile for Ricercabile {
    fn professioni(&self) -> impl Iterator<Item = &str> {
        self.professioni.iter().map(|p| &**p)
    }
    fn comune(&self) -> Option<&str> {
        self.comune.as_deref()
    }
    fn provincia(&self) -> Option<&str> {
        self.provincia.as_deref()
    }
    fn regione(&self) -> Option<&str> {
        self.regione.as_deref()
    }
    fn testo(&self) -> &str {
        &self.testo
    }
}

/// The filters of a search of published moduli; all that are given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Criteri {
    /// Prefix of the ISTAT code, by whole segments ("2.1.1" matches "2.1.1.4.1").
    pub professione: Option<String>,
    /// Belfiore code, upper case.
    pub comune: Option<String>,
    /// Sigla, upper case.
    pub provincia: Option<String>,
    /// ISTAT code "08" or name "Emilia-Romagna", case-insensitive.
    pub regione: Option<String>,
    /// On the day of last update, local to its offset (inclusive).
    pub dal: Option<NaiveDate>,
    pub al: Option<NaiveDate>,
    /// Every word must appear in `testo`, case-insensitive.
    pub q: Option<String>,
}

/// A region name reduced to letters and digits, so that "Emilia Romagna", "emilia-romagna"
/// and "Valle d'Aosta" match the ISTAT spelling.
fn norma_regione(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a comune's region answers to a name: bilingual names ("Valle d'Aosta/Vallée
/// d'Aoste") by either part or whole.
fn nella_regione(regione_del_comune: &str, nome: &str) -> bool {
    norma_regione(regione_del_comune) == nome
        || regione_del_comune
            .split('/')
            .any(|n| norma_regione(n) == nome)
}

impl Criteri {
    /// The region asked for by ISTAT code, if it is one.
    pub fn regione_codice(&self) -> Option<&str> {
        self.regione
            .as_deref()
            .filter(|r| r.bytes().all(|b| b.is_ascii_digit()))
    }

    /// The region asked for by name, as the Belfiore codes of its comuni (a scheda is in a
    /// region by name when its comune is): None when no region is asked for by name.
    pub fn comuni_della_regione(&self) -> Option<Vec<String>> {
        let r = self.regione.as_deref()?;
        if self.regione_codice().is_some() {
            return None;
        }
        let r = norma_regione(r);
        let mut codici: Vec<String> = tabelle()
            .comuni()
            .filter(|(_, c)| nella_regione(&c.regione, &r))
            .map(|(k, _)| k.to_string())
            .collect();
        codici.sort_unstable();
        Some(codici)
    }

    /// The words of `q`, lower case (each must appear in the scheda's `testo`).
    pub fn parole(&self) -> Vec<String> {
        self.q
            .as_deref()
            .map(|q| {
                q.to_lowercase()
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a scheda, last updated on the day `aggiornata`, answers the search.
    pub fn ammette(&self, s: &(impl Cercabile + ?Sized), aggiornata: NaiveDate) -> bool {
        if let Some(p) = &self.professione {
            // By whole segments: "2.1" is a prefix of "2.1.1.4.1" but not of "2.10.1".
            let p = p.trim_end_matches('.');
            let ok = s
                .professioni()
                .any(|c| c == p || c.strip_prefix(p).is_some_and(|r| r.starts_with('.')));
            if !ok {
                return false;
            }
        }
        // Codes, case-insensitive.
        let stesso = |filtro: &Option<String>, campo: Option<&str>| {
            filtro
                .as_deref()
                .is_none_or(|f| campo.is_some_and(|x| x.eq_ignore_ascii_case(f)))
        };
        if !stesso(&self.comune, s.comune()) || !stesso(&self.provincia, s.provincia()) {
            return false;
        }
        if let Some(r) = &self.regione {
            let ok = match self.regione_codice() {
                Some(codice) => s.regione() == Some(codice),
                None => {
                    let r = norma_regione(r);
                    s.comune()
                        .and_then(|c| tabelle().comune(c))
                        .is_some_and(|c| nella_regione(&c.regione, &r))
                }
            };
            if !ok {
                return false;
            }
        }
        if self.dal.is_some_and(|d| aggiornata < d) || self.al.is_some_and(|d| aggiornata > d) {
            return false;
        }
        self.parole().iter().all(|w| s.testo().contains(w.as_str()))
    }
}

/// Where a page of published moduli ended: the last one's update (ms since the epoch) and
/// code. Moduli go newest update first, then by code; the next page starts after this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursore {
    pub aggiornata_ms: i64,
    pub codice: String,
}

impl Cursore {
    /// Whether a modulo updated at `aggiornata_ms` with code `codice` comes after this one.
    pub fn precede(&self, aggiornata_ms: i64, codice: &str) -> bool {
        aggiornata_ms < self.aggiornata_ms
            || (aggiornata_ms == self.aggiornata_ms && codice > self.codice.as_str())
    }

    /// As the read API shows it: opaque to clients (base64url of `ms:codice`).
    pub fn testo(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.aggiornata_ms, self.codice))
    }

    /// From [`Cursore::testo`]; None when it is not one.
    pub fn da_testo(s: &str) -> Option<Cursore> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (ms, codice) = raw.split_once(':')?;
        Some(Cursore {
            aggiornata_ms: ms.parse().ok()?,
            codice: codice.to_string(),
        })
    }
}

/// Which page of a search: by number (1-based), or the one after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagina {
    Numero(usize),
    Dopo(Cursore),
}

/// A page of a search: how many moduli it admits in all, this page's, and the cursor of the
/// next page when more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Scelta<T> {
    pub totale: usize,
    pub pagina: Vec<T>,
    pub successivo: Option<Cursore>,
}

/// Orders the admitted moduli newest update first (then by code), counts them, and cuts the
/// page of at most `misura` (`chiave` gives a modulo's update in ms and its code).
pub fn scegli<T>(
    mut voci: Vec<T>,
    chiave: impl Fn(&T) -> (i64, &str),
    pagina: &Pagina,
    misura: usize,
) -> Scelta<T> {
    voci.sort_by(|a, b| {
        let (ma, ca) = chiave(a);
        let (mb, cb) = chiave(b);
        mb.cmp(&ma).then_with(|| ca.cmp(cb))
    });
    let totale = voci.len();
    let inizio = match pagina {
        Pagina::Numero(n) => n.saturating_sub(1).saturating_mul(misura).min(totale),
        Pagina::Dopo(c) => voci
            .iter()
            .position(|v| {
                let (ms, codice) = chiave(v);
                c.precede(ms, codice)
            })
            .unwrap_or(totale),
    };
    let fine = inizio.saturating_add(misura).min(totale);
    let successivo = (fine < totale && fine > inizio).then(|| {
        let (aggiornata_ms, codice) = chiave(&voci[fine - 1]);
        Cursore {
            aggiornata_ms,
            codice: codice.to_string(),
        }
    });
    let pagina: Vec<T> = voci.drain(inizio..fine).collect();
    Scelta {
        totale,
        pagina,
        successivo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_rejects_garbage() {
        let c = Cursore {
            aggiornata_ms: 1_764_000_000_123,
            codice: "CV:1/2".into(),
        };
        assert_eq!(Cursore::da_testo(&c.testo()), Some(c));
        assert_eq!(Cursore::da_testo("%%%"), None);
        assert_eq!(Cursore::da_testo("bm9jb2xvbg"), None); // "nocolon"
    }

    #[test]
    fn a_cursor_orders_newest_first_then_by_code() {
        let c = Cursore {
            aggiornata_ms: 100,
            codice: "B".into(),
        };
        assert!(c.precede(99, "A"));
        assert!(c.precede(100, "C"));
        assert!(!c.precede(100, "B"));
        assert!(!c.precede(100, "A"));
        assert!(!c.precede(101, "Z"));
    }

    #[test]
    fn pages_by_number_and_by_cursor_are_the_same_pages() {
        // Five moduli, two updated at the same instant (ordered by code then).
        let voci = vec![(10, "E"), (30, "B"), (30, "A"), (20, "C"), (40, "D")];
        fn k<'a>(v: &'a (i64, &'static str)) -> (i64, &'a str) {
            (v.0, v.1)
        }
        let p1 = scegli(voci.clone(), k, &Pagina::Numero(1), 2);
        assert_eq!(p1.totale, 5);
        assert_eq!(p1.pagina, vec![(40, "D"), (30, "A")]);
        let p2 = scegli(
            voci.clone(),
            k,
            &Pagina::Dopo(p1.successivo.clone().unwrap()),
            2,
        );
        assert_eq!(p2.pagina, vec![(30, "B"), (20, "C")]);
        assert_eq!(
            p2.pagina,
            scegli(voci.clone(), k, &Pagina::Numero(2), 2).pagina
        );
        let p3 = scegli(voci.clone(), k, &Pagina::Dopo(p2.successivo.unwrap()), 2);
        assert_eq!(p3.pagina, vec![(10, "E")]);
        assert_eq!(p3.successivo, None);
        assert!(scegli(voci, k, &Pagina::Numero(9), 2).pagina.is_empty());
    }

    #[test]
    fn a_region_by_name_is_the_comuni_in_it() {
        let c = Criteri {
            regione: Some("emilia romagna".into()),
            ..Criteri::default()
        };
        let comuni = c.comuni_della_regione().unwrap();
        // Bologna is A944; Rome (H501) is not in Emilia-Romagna.
        assert!(comuni.iter().any(|k| k == "A944"), "{}", comuni.len());
        assert!(!comuni.iter().any(|k| k == "H501"));
        let per_codice = Criteri {
            regione: Some("08".into()),
            ..Criteri::default()
        };
        assert_eq!(per_codice.comuni_della_regione(), None);
        assert_eq!(per_codice.regione_codice(), Some("08"));
    }
}
