//! Code tables the moduli refer to, shipped in `data/` (see `data/README.md` for origins and
//! licences: ISTAT data under CC-BY 4.0, ISO 639-2 from Debian's iso-codes under LGPL-2.1+).
//! Parsed once, on first use; every lookup is a hash.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use chrono::NaiveDate;

const COMUNI: &str = include_str!("../../data/comuni_istat_attuali.csv");
const STORICI: &str = include_str!("../../data/comuni_belfiore_storici.csv");
const STATI: &str = include_str!("../../data/stati_esteri_belfiore.csv");
const ATECO: &str = include_str!("../../data/ateco2007.csv");
const VALORI: &str = include_str!("../../data/cliclavoro_valori_noti.csv");
const STATI_ISTAT: &str = include_str!("../../data/stati_istat.csv");
const PROFESSIONI: &str = include_str!("../../data/professioni_cp2011.csv");
const LINGUE: &str = include_str!("../../data/lingue_iso639.csv");

/// ClicLavoro's code of Italian citizenship (ISTAT's own code of Italy is 100).
pub const CITTADINANZA_ITALIANA: &str = "000";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comune {
    pub nome: String,
    pub provincia: String,
    /// ISTAT region code, `01`..`20`.
    pub codice_regione: String,
    pub regione: String,
}

/// One validity interval of a Belfiore code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periodo {
    pub nome: String,
    pub dal: Option<NaiveDate>,
    pub al: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stato {
    pub nome: String,
    pub soppresso: Option<NaiveDate>,
}

#[derive(Debug, Default)]
pub struct Tabelle {
    comuni: HashMap<String, Comune>,
    storici: HashMap<String, Vec<Periodo>>,
    stati: HashMap<String, Stato>,
    ateco: HashMap<String, String>,
    valori: HashSet<(String, String)>,
    /// ISTAT 3-digit codes of states and territories (and the older codes of territories).
    cittadinanze: HashMap<String, String>,
    /// CP2011, every level: code → (level, title).
    professioni: HashMap<String, (u8, String)>,
    /// ISO 639-2 alpha-3 (terminological and bibliographic), upper case.
    lingue: HashSet<String>,
}

/// Splits one CSV line (RFC 4180 quoting, no embedded newlines in these files).
pub fn csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn rows(text: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| csv_line(l.trim_end_matches('\r')))
}

fn date(s: &str) -> Option<NaiveDate> {
    super::regole::data_esatta(s.trim())
}

impl Tabelle {
    fn load() -> Tabelle {
        let mut t = Tabelle::default();
        for r in rows(COMUNI) {
            if r.len() >= 7 {
                t.comuni.insert(
                    r[0].clone(),
                    Comune {
                        nome: r[1].clone(),
                        provincia: r[3].clone(),
                        codice_regione: r[5].clone(),
                        regione: r[6].clone(),
                    },
                );
            }
        }
        for r in rows(STORICI) {
            if r.len() >= 5 {
                t.storici.entry(r[0].clone()).or_default().push(Periodo {
                    nome: r[1].clone(),
                    dal: date(&r[3]),
                    al: date(&r[4]),
                });
            }
        }
        for r in rows(STATI) {
            if r.len() >= 5 {
                t.stati.insert(
                    r[0].clone(),
                    Stato {
                        nome: r[1].clone(),
                        soppresso: date(&r[4]),
                    },
                );
            }
        }
        for r in rows(ATECO) {
            if r.len() >= 3 {
                t.ateco.insert(r[0].clone(), r[2].clone());
            }
        }
        for r in rows(STATI_ISTAT) {
            if r.len() >= 9 {
                for code in [&r[0], &r[8]] {
                    if !code.is_empty() {
                        t.cittadinanze
                            .entry(code.clone())
                            .or_insert_with(|| r[2].clone());
                    }
                }
            }
        }
        for r in rows(PROFESSIONI) {
            if let (3.., Ok(livello)) = (r.len(), r[1].parse::<u8>()) {
                t.professioni.insert(r[0].clone(), (livello, r[2].clone()));
            }
        }
        for r in rows(LINGUE) {
            if let Some(code) = r.first() {
                t.lingue.insert(code.clone());
            }
        }
        for r in rows(VALORI) {
            if r.len() >= 2 {
                // "Tabella(campi…)" → "Tabella"; "A|B|C" lists several codes.
                let table = r[0].split('(').next().unwrap_or("").to_string();
                for code in r[1].split('|') {
                    t.valori.insert((table.clone(), code.to_string()));
                }
            }
        }
        t
    }

    /// A current comune.
    pub fn comune(&self, belfiore: &str) -> Option<&Comune> {
        self.comuni.get(belfiore)
    }

    /// A foreign state's Z-code (current or suppressed).
    pub fn stato(&self, z: &str) -> Option<&Stato> {
        self.stati.get(z)
    }

    /// Whether a Belfiore code (comune or state) named a place at `quando`: it existed and had
    /// not been suppressed before that day. The tables start in the 19th century, so a date
    /// before a code's first recorded interval is not held against it.
    pub fn luogo_al(&self, code: &str, quando: NaiveDate) -> bool {
        if let Some(s) = self.stati.get(code) {
            return s.soppresso.is_none_or(|d| quando < d);
        }
        match self.storici.get(code) {
            Some(periodi) => periodi.iter().any(|p| p.al.is_none_or(|al| quando <= al)),
            None => self.comuni.contains_key(code),
        }
    }

    /// Whether a code names a place at all (any time).
    pub fn luogo(&self, code: &str) -> bool {
        self.stati.contains_key(code)
            || self.storici.contains_key(code)
            || self.comuni.contains_key(code)
    }

    /// An ATECO 2007 code at any level (`01`, `01.11`, `01.11.10`, …).
    pub fn ateco(&self, code: &str) -> Option<&str> {
        self.ateco.get(code).map(String::as_str)
    }

    /// A value confirmed in `cliclavoro_valori_noti.csv` for a table (`AmbitoDiffusione`, …).
    pub fn valore(&self, table: &str, code: &str) -> bool {
        self.valori.contains(&(table.to_string(), code.to_string()))
    }

    /// The state of a citizenship code: `000` (Italian, ClicLavoro's code) or an ISTAT code of
    /// a state or territory.
    pub fn cittadinanza(&self, code: &str) -> Option<&str> {
        if code == CITTADINANZA_ITALIANA {
            return Some("Italia");
        }
        self.cittadinanze.get(code).map(String::as_str)
    }

    /// The CP2011 unità professionale (level 5) a profession code falls in: its own code, or
    /// the first five segments of a six-segment one (Rev.038); its title.
    pub fn professione(&self, code: &str) -> Option<&str> {
        let cinque: Vec<&str> = code.split('.').take(5).collect();
        match self.professioni.get(&cinque.join(".")) {
            Some((5, titolo)) if cinque.len() == 5 => Some(titolo),
            _ => None,
        }
    }

    /// An ISO 639-2 alpha-3 code (upper case, as ClicLavoro writes it).
    pub fn lingua(&self, code: &str) -> bool {
        self.lingue.contains(code)
    }

    /// The current comuni by Belfiore code, in no order.
    pub fn comuni(&self) -> impl Iterator<Item = (&str, &Comune)> {
        self.comuni.iter().map(|(k, c)| (k.as_str(), c))
    }

    pub fn numero_comuni(&self) -> usize {
        self.comuni.len()
    }
}

/// The tables, loaded on first use.
pub fn tabelle() -> &'static Tabelle {
    static T: OnceLock<Tabelle> = OnceLock::new();
    T.get_or_init(Tabelle::load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let t = tabelle();
        assert!(t.numero_comuni() > 7800);
        let bo = t.comune("A944").unwrap();
        assert_eq!(
            (bo.nome.as_str(), bo.codice_regione.as_str()),
            ("Bologna", "08")
        );
        assert_eq!(t.stato("Z112").unwrap().nome, "Germania");
        // Jugoslavia was suppressed in 2003.
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(t.luogo_al("Z118", d("1990-01-01")));
        assert!(!t.luogo_al("Z118", d("2010-01-01")));
        assert!(t.luogo_al("H501", d("1950-05-01")));
        assert!(!t.luogo("Q999"));
        assert_eq!(
            t.ateco("01.11.10"),
            Some("Coltivazione di cereali (escluso il riso)")
        );
        assert!(t.valore("AmbitoDiffusione", "03"));
        assert!(t.valore("LivelloLingua", "B2"));
        assert!(!t.valore("AmbitoDiffusione", "04"));
        assert_eq!(csv_line(r#"A,"x, ""y""",z"#), vec!["A", "x, \"y\"", "z"]);
        assert_eq!(t.cittadinanza("000"), Some("Italia"));
        assert_eq!(t.cittadinanza("330"), Some("India"));
        assert_eq!(t.cittadinanza("215"), Some("Francia"));
        assert_eq!(t.cittadinanza("999"), None);
        assert_eq!(
            t.professione("2.1.1.4.1"),
            Some("Analisti e progettisti di software")
        );
        assert!(t.professione("6.5.1.1.1.0").is_some());
        // A categoria is not an unità professionale; nor is a code that does not exist.
        assert_eq!(t.professione("2.1.1.4"), None);
        assert_eq!(t.professione("9.9.9.9.9.9"), None);
        assert!(t.lingua("ITA") && t.lingua("FRE") && t.lingua("FRA"));
        assert!(!t.lingua("XYZ"));
    }
}
