//! Codice fiscale: the 16-character personal code (check letter, omocodia, date, sex,
//! birthplace) and the 11-digit numeric code of companies and provisional personal codes
//! (Luhn check digit, office code). Facts from cliclavoro-standard.md §9.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CfError {
    #[error("deve avere 16 caratteri alfanumerici o 11 cifre")]
    Formato,
    #[error("carattere di controllo errato (atteso {0})")]
    Controllo(char),
    #[error("cifra di controllo errata (attesa {0})")]
    CifraControllo(char),
    #[error("il mese '{0}' non esiste")]
    Mese(char),
    #[error("il giorno di nascita {0} non esiste")]
    Giorno(u32),
    #[error("codice dell'ufficio {0} non attribuito")]
    Ufficio(String),
    #[error("matricola nulla")]
    Matricola,
}

/// What a valid 16-character code says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    /// Two-digit year: the century is not in the code.
    pub anno: u32,
    pub mese: u32,
    pub giorno: u32,
    pub femmina: bool,
    /// Belfiore code of the birthplace (omocodia undone).
    pub belfiore: String,
}

impl Persona {
    /// Whether a birth date agrees with the code (either century).
    pub fn nato_il(&self, d: NaiveDate) -> bool {
        use chrono::Datelike;
        d.year().rem_euclid(100) as u32 == self.anno
            && d.month() == self.mese
            && d.day() == self.giorno
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codice {
    Persona(Persona),
    Numerico,
}

const MESI: &[u8; 12] = b"ABCDEHLMPRST";
/// Omocodia: the digits 0-9 may be written as these letters.
const OMOCODICI: &[u8; 10] = b"LMNPQRSTUV";
/// Positions (0-based) that hold digits in a 16-character code.
const POSIZIONI_CIFRE: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

fn dispari(c: u8) -> u32 {
    const T: [u32; 36] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // 0-9
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23, // A-Z
    ];
    match c {
        b'0'..=b'9' => T[(c - b'0') as usize],
        b'A'..=b'Z' => T[10 + (c - b'A') as usize],
        _ => 0,
    }
}

fn pari(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => (c - b'0') as u32,
        b'A'..=b'Z' => (c - b'A') as u32,
        _ => 0,
    }
}

/// The check letter of the first 15 characters.
pub fn carattere_controllo(first15: &[u8]) -> char {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &c)| if i % 2 == 0 { dispari(c) } else { pari(c) })
        .sum();
    (b'A' + (sum % 26) as u8) as char
}

/// Checks a codice fiscale; lower case is accepted (and read as upper case).
pub fn verifica(cf: &str) -> Result<Codice, CfError> {
    let up = cf.trim().to_ascii_uppercase();
    let b = up.as_bytes();
    if b.len() == 11 && b.iter().all(u8::is_ascii_digit) {
        return numerico(b).map(|_| Codice::Numerico);
    }
    if b.len() != 16 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return Err(CfError::Formato);
    }
    // Letters where letters go; digit positions hold a digit or an omocodia letter.
    for (i, &c) in b.iter().enumerate() {
        let ok = if POSIZIONI_CIFRE.contains(&i) {
            c.is_ascii_digit() || OMOCODICI.contains(&c)
        } else {
            c.is_ascii_uppercase()
        };
        if !ok {
            return Err(CfError::Formato);
        }
    }
    let atteso = carattere_controllo(&b[..15]);
    if b[15] as char != atteso {
        return Err(CfError::Controllo(atteso));
    }
    // Undo omocodia before reading date and place.
    let mut d = b.to_vec();
    for &i in &POSIZIONI_CIFRE {
        if let Some(p) = OMOCODICI.iter().position(|&o| o == d[i]) {
            d[i] = b'0' + p as u8;
        }
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        std::str::from_utf8(&d[r])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let mese = MESI
        .iter()
        .position(|&m| m == d[8])
        .ok_or(CfError::Mese(d[8] as char))? as u32
        + 1;
    let g = num(9..11);
    let (giorno, femmina) = if g > 40 { (g - 40, true) } else { (g, false) };
    let max = match mese {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if giorno == 0 || giorno > max {
        return Err(CfError::Giorno(g));
    }
    Ok(Codice::Persona(Persona {
        anno: num(6..8),
        mese,
        giorno,
        femmina,
        belfiore: String::from_utf8_lossy(&d[11..15]).into_owned(),
    }))
}

/// The 11-digit code: matricola (7), office (3), Luhn check digit.
fn numerico(b: &[u8]) -> Result<(), CfError> {
    let d: Vec<u32> = b.iter().map(|c| (c - b'0') as u32).collect();
    let sum: u32 = d[..10]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                x
            } else {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    if d[10] != check {
        return Err(CfError::CifraControllo(
            char::from_digit(check, 10).unwrap_or('?'),
        ));
    }
    if d[..7].iter().all(|&x| x == 0) {
        return Err(CfError::Matricola);
    }
    // Offices as python-stdnum knows them: 001-100, 120, 121, 888, 999.
    let ufficio = d[7] * 100 + d[8] * 10 + d[9];
    if !((1..=100).contains(&ufficio) || [120, 121, 888, 999].contains(&ufficio)) {
        return Err(CfError::Ufficio(format!("{ufficio:03}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_the_standard() {
        // cliclavoro-standard.md §9.
        for ok in [
            "RSSMRA80A01H501U",
            "RSSMRA80A01H50MM",
            "RSSMRA80A01H5L1F",
            "RSSMRA80A01HR01P",
            "RSSMRAULALMHRLMD",
            "BNCNNA92L55F205P",
            "MLLHNS75C03Z112N",
            "RCCMNL83S18D969H",
            "CNTCHR83T41D969D",
            "rssmra80a01h501u",
            "00743110157",
            "80213330584",
        ] {
            assert!(verifica(ok).is_ok(), "{ok}: {:?}", verifica(ok));
        }
        assert_eq!(verifica("RSSMRA80A01H501A"), Err(CfError::Controllo('U')));
        assert!(matches!(
            verifica("RSSMRA80F01H501U"),
            Err(CfError::Controllo(_) | CfError::Mese('F'))
        ));
        assert!(verifica("RSSMRA80A32H501U").is_err());
        assert_eq!(verifica("RSSMRA80A01H501"), Err(CfError::Formato));
        assert_eq!(verifica("00743110158"), Err(CfError::CifraControllo('7')));
        assert_eq!(verifica("12345678903"), Err(CfError::Ufficio("890".into())));
        assert!(verifica("00000000000").is_err());
    }

    #[test]
    fn month_and_day_are_read_even_with_the_right_check_letter() {
        // F is not a month: build a code whose check letter is right to reach that test.
        let mut s = b"RSSMRA80F01H501".to_vec();
        s.push(carattere_controllo(&s) as u8);
        assert_eq!(
            verifica(std::str::from_utf8(&s).unwrap()),
            Err(CfError::Mese('F'))
        );
        let mut s = b"RSSMRA80A32H501".to_vec();
        s.push(carattere_controllo(&s) as u8);
        assert_eq!(
            verifica(std::str::from_utf8(&s).unwrap()),
            Err(CfError::Giorno(32))
        );
    }

    #[test]
    fn reads_the_holder() {
        let Ok(Codice::Persona(p)) = verifica("BNCNNA92L55F205P") else {
            panic!()
        };
        assert_eq!(
            (p.anno, p.mese, p.giorno, p.femmina, p.belfiore.as_str()),
            (92, 7, 15, true, "F205")
        );
        assert!(p.nato_il(NaiveDate::from_ymd_opt(1992, 7, 15).unwrap()));
        let Ok(Codice::Persona(p)) = verifica("RSSMRAULALMHRLMD") else {
            panic!()
        };
        assert_eq!(
            (p.anno, p.mese, p.giorno, p.belfiore.as_str()),
            (80, 1, 1, "H501")
        );
    }
}
