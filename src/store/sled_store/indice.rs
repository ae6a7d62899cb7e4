//! The index of moduli in memory: each Candidatura's and Vacancy's summary packed into one
//! allocation and read in place ([`VistaSommario`]). As a [`Sommario`] behind an `Arc`, a
//! summary took a block for itself and one for each of its strings; packed, a store of
//! 1,050,000 moduli opens about 128 bytes a modulo smaller. The index grows by one with every
//! new modulo, so this is most of what a store that takes moduli all day can save in memory
//! (docs/performance.md).
//!
//! The layout, little-endian: the flags ([`SCADENZA`] …), the state, `inserita` and
//! `aggiornata` (seconds `i64`, nanoseconds `u32`, their offset from UTC in seconds `i32`),
//! `scadenza` and the day of `aggiornata` where it was written (days from the common era,
//! `i32`: a search compares that day, and rebuilding it from its number costs less than
//! bringing the time into its offset), then the code; with [`SCHEDA`], the count of
//! professioni and each, `comune`, `provincia` and `regione` where their flags say, and the
//! search text. A string is its length (LEB128) and its bytes.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};

use crate::modulo::ricerca::{Cercabile, Criteri, Ricercabile};
use crate::store::{Sommario, StatoModulo, VistaSommario};

const SCADENZA: u8 = 1;
const SCHEDA: u8 = 2;
const COMUNE: u8 = 4;
const PROVINCIA: u8 = 8;
const REGIONE: u8 = 16;

/// Where `aggiornata`'s day is.
const GIORNO: usize = 2 + 16 + 16 + 4;
/// Where the code begins: after the flags, the state, two times, the expiry and the day.
const CODICE: usize = GIORNO + 4;

const STATI: [StatoModulo; 4] = [
    StatoModulo::Attivo,
    StatoModulo::Chiuso,
    StatoModulo::Rettificato,
    StatoModulo::Scaduto,
];

/// A summary packed ([`Compatto::di`]), ordered and found by its code.
pub(super) struct Compatto(Box<[u8]>);

fn scrivi_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn scrivi_str(out: &mut Vec<u8>, s: &str) {
    scrivi_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn scrivi_ora(out: &mut Vec<u8>, t: &DateTime<FixedOffset>) {
    out.extend_from_slice(&t.timestamp().to_le_bytes());
    out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
    out.extend_from_slice(&t.offset().local_minus_utc().to_le_bytes());
}

impl Compatto {
    pub(super) fn di(s: &Sommario) -> Compatto {
        let testo = s.scheda.as_ref().map_or(0, |r| r.testo.len());
        let mut out = Vec::with_capacity(CODICE + s.codice.len() + testo + 64);
        let mut flag = 0;
        if s.scadenza.is_some() {
            flag |= SCADENZA;
        }
        if let Some(r) = &s.scheda {
            flag |= SCHEDA;
            for (c, f) in [
                (&r.comune, COMUNE),
                (&r.provincia, PROVINCIA),
                (&r.regione, REGIONE),
            ] {
                if c.is_some() {
                    flag |= f;
                }
            }
        }
        out.push(flag);
        out.push(STATI.iter().position(|x| *x == s.stato).unwrap_or(0) as u8);
        scrivi_ora(&mut out, &s.inserita);
        scrivi_ora(&mut out, &s.aggiornata);
        let giorni = s.scadenza.map_or(0, |d| d.num_days_from_ce());
        out.extend_from_slice(&giorni.to_le_bytes());
        let giorno = s.aggiornata.date_naive().num_days_from_ce();
        out.extend_from_slice(&giorno.to_le_bytes());
        scrivi_str(&mut out, &s.codice);
        if let Some(r) = &s.scheda {
            scrivi_len(&mut out, r.professioni.len());
            for p in r.professioni.iter() {
                scrivi_str(&mut out, p);
            }
            for c in [&r.comune, &r.provincia, &r.regione].into_iter().flatten() {
                scrivi_str(&mut out, c);
            }
            scrivi_str(&mut out, &r.testo);
        }
        Compatto(out.into_boxed_slice())
    }

    /// The summary it packs, whole again.
    pub(super) fn sommario(&self) -> Sommario {
        let scheda = self.scheda().map(|s| Ricercabile {
            professioni: s.professioni().map(Box::from).collect(),
            comune: s.comune.map(Box::from),
            provincia: s.provincia.map(Box::from),
            regione: s.regione.map(Box::from),
            testo: Box::from(s.testo),
        });
        Sommario {
            codice: self.codice().to_string(),
            stato: self.stato(),
            inserita: self.ora(2),
            aggiornata: self.ora(18),
            scadenza: self.scadenza(),
            scheda,
        }
    }

    fn ora(&self, at: usize) -> DateTime<FixedOffset> {
        let b = &self.0;
        let secs = i64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        let nanos = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap_or_default());
        let off = i32::from_le_bytes(b[at + 12..at + 16].try_into().unwrap_or_default());
        // Packed from a DateTime<FixedOffset>, so both are in range.
        match (
            DateTime::from_timestamp(secs, nanos),
            FixedOffset::east_opt(off),
        ) {
            (Some(t), Some(o)) => t.with_timezone(&o),
            _ => DateTime::default(),
        }
    }

    /// The string at `at`, and where what follows it begins.
    fn stringa(&self, at: usize) -> (&str, usize) {
        let b = &self.0;
        let (n, i) = self.conta(at);
        // SAFETY: `di` wrote each string's bytes whole from a `&str`, with its length before
        // them, and the box is never changed after: the range is that string's.
        let s = unsafe { std::str::from_utf8_unchecked(&b[i..i + n]) };
        (s, i + n)
    }

    /// What a search filters on, where the summary keeps it.
    fn scheda(&self) -> Option<SchedaCompatta<'_>> {
        let flag = self.0[0];
        if flag & SCHEDA == 0 {
            return None;
        }
        let (_, mut at) = self.stringa(CODICE);
        let (quante, dopo) = self.conta(at);
        at = dopo;
        let inizio = at;
        for _ in 0..quante {
            at = self.stringa(at).1;
        }
        let professioni = (self, inizio, quante);
        let mut campo = |f: u8| {
            (flag & f != 0).then(|| {
                let (s, dopo) = self.stringa(at);
                at = dopo;
                s
            })
        };
        let comune = campo(COMUNE);
        let provincia = campo(PROVINCIA);
        let regione = campo(REGIONE);
        let (testo, _) = self.stringa(at);
        Some(SchedaCompatta {
            professioni,
            comune,
            provincia,
            regione,
            testo,
        })
    }

    /// A count or a string's length (LEB128), and where what follows it begins.
    fn conta(&self, at: usize) -> (usize, usize) {
        let b = &self.0;
        let (mut n, mut i, mut shift) = (0usize, at, 0);
        loop {
            let c = b[i];
            i += 1;
            n |= usize::from(c & 0x7f) << shift;
            if c & 0x80 == 0 {
                return (n, i);
            }
            shift += 7;
        }
    }
}

impl VistaSommario for Compatto {
    fn codice(&self) -> &str {
        self.stringa(CODICE).0
    }
    fn stato(&self) -> StatoModulo {
        STATI
            .get(usize::from(self.0[1]))
            .copied()
            .unwrap_or(StatoModulo::Attivo)
    }
    fn aggiornata(&self) -> DateTime<FixedOffset> {
        self.ora(18)
    }
    fn aggiornata_ms(&self) -> i64 {
        let b = &self.0;
        let secs = i64::from_le_bytes(b[18..26].try_into().unwrap_or_default());
        let nanos = u32::from_le_bytes(b[26..30].try_into().unwrap_or_default());
        secs.saturating_mul(1000)
            .saturating_add(i64::from(nanos / 1_000_000))
    }
    fn scadenza(&self) -> Option<NaiveDate> {
        if self.0[0] & SCADENZA == 0 {
            return None;
        }
        let giorni = i32::from_le_bytes(self.0[34..38].try_into().unwrap_or_default());
        NaiveDate::from_num_days_from_ce_opt(giorni)
    }
    fn ammesso(&self, c: &Criteri) -> bool {
        let Some(s) = self.scheda() else {
            return false;
        };
        let giorno = i32::from_le_bytes(self.0[GIORNO..CODICE].try_into().unwrap_or_default());
        NaiveDate::from_num_days_from_ce_opt(giorno).is_some_and(|g| c.ammette(&s, g))
    }
}

/// The search fields of a packed summary, borrowed from it.
struct SchedaCompatta<'a> {
    /// The summary, where its professioni begin, and how many.
    professioni: (&'a Compatto, usize, usize),
    comune: Option<&'a str>,
    provincia: Option<&'a str>,
    regione: Option<&'a str>,
    testo: &'a str,
}

impl Cercabile for SchedaCompatta<'_> {
    fn professioni(&self) -> impl Iterator<Item = &str> {
        let (c, mut at, quante) = self.professioni;
        (0..quante).map(move |_| {
            let (s, dopo) = c.stringa(at);
            at = dopo;
            s
        })
    }
    fn comune(&self) -> Option<&str> {
        self.comune
    }
    fn provincia(&self) -> Option<&str> {
        self.provincia
    }
    fn regione(&self) -> Option<&str> {
        self.regione
    }
    fn testo(&self) -> &str {
        self.testo
    }
}

impl PartialEq for Compatto {
    fn eq(&self, o: &Compatto) -> bool {
        self.codice() == o.codice()
    }
}

impl Eq for Compatto {}

impl PartialOrd for Compatto {
    fn partial_cmp(&self, o: &Compatto) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Compatto {
    fn cmp(&self, o: &Compatto) -> std::cmp::Ordering {
        self.codice().cmp(o.codice())
    }
}

impl std::borrow::Borrow<str> for Compatto {
    fn borrow(&self) -> &str {
        self.codice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ora(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn sommario(codice: &str, scheda: Option<Ricercabile>) -> Sommario {
        Sommario {
            codice: codice.into(),
            stato: StatoModulo::Rettificato,
            inserita: ora("2026-11-20T10:15:30.123456789+01:00"),
            aggiornata: ora("2026-12-01T23:59:59-05:30"),
            scadenza: NaiveDate::from_ymd_opt(2027, 1, 14),
            scheda,
        }
    }

    fn ricercabile(testo: &str) -> Ricercabile {
        Ricercabile {
            professioni: vec![
                Box::from("3.3.1.2.1"),
                Box::from("5.1.2.2.0"),
                Box::from(""),
            ]
            .into_boxed_slice(),
            comune: Some(Box::from("H501")),
            provincia: None,
            regione: Some(Box::from("12")),
            testo: Box::from(testo),
        }
    }

    #[test]
    fn a_packed_summary_reads_back_whole() {
        let lungo = "città ".repeat(40_000);
        let casi = [
            sommario(
                "SILRM2026000000000000001",
                Some(ricercabile("contabile roma")),
            ),
            sommario("C", None),
            sommario("", Some(ricercabile(""))),
            // A search text over 127, over 16,383 bytes: lengths of two and three bytes.
            sommario("V1", Some(ricercabile(&lungo[..200]))),
            sommario("V2", Some(ricercabile(&lungo))),
            Sommario {
                stato: StatoModulo::Attivo,
                scadenza: None,
                scheda: Some(Ricercabile {
                    professioni: Box::new([]),
                    comune: None,
                    provincia: Some(Box::from("RM")),
                    regione: None,
                    testo: Box::from("x"),
                }),
                ..sommario("V3", None)
            },
        ];
        for s in casi {
            let c = Compatto::di(&s);
            assert_eq!(c.sommario(), s);
            assert_eq!(c.codice(), s.codice);
            assert_eq!(c.stato(), s.stato);
            assert_eq!(c.aggiornata(), s.aggiornata);
            assert_eq!(c.aggiornata().offset(), s.aggiornata.offset());
            assert_eq!(c.aggiornata_ms(), s.aggiornata.timestamp_millis());
            assert_eq!(c.scadenza(), s.scadenza);
        }
        for stato in STATI {
            let s = Sommario {
                stato,
                ..sommario("K", None)
            };
            assert_eq!(Compatto::di(&s).stato(), stato);
        }
    }

    #[test]
    fn a_search_reads_a_packed_summary_as_the_summary() {
        let s = sommario("C1", Some(ricercabile("addetta contabilità generale")));
        let c = Compatto::di(&s);
        let r = s.scheda.as_ref().unwrap();
        let v = c.scheda().unwrap();
        assert!(v.professioni().eq(r.professioni()));
        assert_eq!(v.comune(), r.comune());
        assert_eq!(v.provincia(), r.provincia());
        assert_eq!(v.regione(), r.regione());
        assert_eq!(v.testo(), r.testo());
        let oggi = s.aggiornata.date_naive();
        let dato = |f: fn(&mut Criteri, String), v: &str| {
            let mut c = Criteri::default();
            f(&mut c, v.to_string());
            c
        };
        for (criteri, atteso) in [
            (dato(|c, v| c.professione = Some(v), "3.3.1"), true),
            (dato(|c, v| c.professione = Some(v), "3.4"), false),
            (dato(|c, v| c.professione = Some(v), "5.1.2.2.0"), true),
            (dato(|c, v| c.comune = Some(v), "h501"), true),
            (dato(|c, v| c.comune = Some(v), "F205"), false),
            (dato(|c, v| c.provincia = Some(v), "RM"), false),
            (dato(|c, v| c.regione = Some(v), "12"), true),
            (dato(|c, v| c.q = Some(v), "contabilità GENERALE"), true),
            (dato(|c, v| c.q = Some(v), "commessa"), false),
        ] {
            assert_eq!(criteri.ammette(r, oggi), atteso, "{criteri:?}");
            assert_eq!(c.ammesso(&criteri), atteso, "{criteri:?}");
        }
        // By the day of the update where it was written (here 2 December in UTC).
        let giorno = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d);
        for (dal, al, atteso) in [
            (giorno(1), None, true),
            (giorno(2), None, false),
            (None, giorno(1), true),
            (None, NaiveDate::from_ymd_opt(2026, 11, 30), false),
        ] {
            let criteri = Criteri {
                dal,
                al,
                ..Criteri::default()
            };
            assert_eq!(criteri.ammette(r, oggi), atteso, "{criteri:?}");
            assert_eq!(c.ammesso(&criteri), atteso, "{criteri:?}");
        }
        assert!(!Compatto::di(&sommario("C2", None)).ammesso(&Criteri::default()));
    }

    #[test]
    fn the_index_orders_and_finds_by_code() {
        let mut set = std::collections::BTreeSet::new();
        for c in ["B", "A", "C", "AB"] {
            set.insert(Compatto::di(&sommario(c, None)));
        }
        let codici: Vec<&str> = set.iter().map(|c| c.codice()).collect();
        assert_eq!(codici, ["A", "AB", "B", "C"]);
        assert!(set.contains("AB"));
        assert!(!set.contains("D"));
        // A newer summary of the same code takes the older's place.
        let nuovo = Sommario {
            stato: StatoModulo::Chiuso,
            ..sommario("B", None)
        };
        set.replace(Compatto::di(&nuovo));
        assert_eq!(set.len(), 4);
        assert_eq!(set.get("B").unwrap().stato(), StatoModulo::Chiuso);
    }
}
