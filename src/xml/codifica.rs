//! Messages in encodings other than UTF-8: a Porta di Dominio meets ISO-8859-1 (Java stacks
//! default to it), windows-1252 and UTF-16. The document is converted to UTF-8 before it is
//! parsed, its XML declaration rewritten to say so. Signatures still verify: exclusive C14N is
//! defined on the characters, not on the bytes, and its output is UTF-8 whatever the input.

use std::borrow::Cow;

use super::XmlError;

/// The encodings read, by what the label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codifica {
    Utf8,
    Latin1,
    Windows1252,
    Utf16,
}

fn codifica(etichetta: &str) -> Option<Codifica> {
    let e = etichetta.trim().trim_matches('"').to_ascii_lowercase();
    Some(match e.as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => Codifica::Utf8,
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "cp819"
        | "ibm819" => Codifica::Latin1,
        "windows-1252" | "cp1252" | "x-cp1252" => Codifica::Windows1252,
        "utf-16" | "utf16" | "utf-16le" | "utf-16be" => Codifica::Utf16,
        _ => return None,
    })
}

/// windows-1252's characters for the bytes 0x80–0x9F (where it differs from ISO-8859-1);
/// U+FFFD for the five bytes it leaves undefined.
const CP1252_80: [char; 32] = [
    '€', '\u{FFFD}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{FFFD}', 'Ž',
    '\u{FFFD}', '\u{FFFD}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{FFFD}',
    'ž', 'Ÿ',
];

/// The `encoding` of a leading XML declaration read from the bytes (it is ASCII in every
/// ASCII-compatible encoding).
fn dichiarata(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let testo: String = head
        .iter()
        .take_while(|b| b.is_ascii())
        .map(|&b| b as char)
        .collect();
    super::declared_encoding(&testo).map(str::to_string)
}

/// The document as UTF-8. `charset`: the HTTP Content-Type's, which wins over the XML
/// declaration (RFC 7303 §3.2). UTF-16 is read with its byte order mark; an encoding not listed
/// in [`codifica`] is refused.
pub fn in_utf8<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, [u8]>, XmlError> {
    let bom16 = bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE");
    let etichetta = match charset.filter(|c| !c.trim().is_empty()) {
        Some(c) => Some(c.to_string()),
        None if bom16 => Some("UTF-16".to_string()),
        None => dichiarata(bytes),
    };
    let Some(etichetta) = etichetta else {
        return Ok(Cow::Borrowed(bytes));
    };
    let c = codifica(&etichetta).ok_or_else(|| XmlError::UnsupportedEncoding(etichetta.clone()))?;
    let testo: String = match c {
        // Checked (and a UTF-8 declaration confirmed) by the parser.
        Codifica::Utf8 => return Ok(Cow::Borrowed(bytes)),
        Codifica::Latin1 => bytes.iter().map(|&b| b as char).collect(),
        Codifica::Windows1252 => bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9F => CP1252_80[(b - 0x80) as usize],
                b => b as char,
            })
            .collect(),
        Codifica::Utf16 => {
            let (be, resto) = match bytes {
                [0xFE, 0xFF, r @ ..] => (true, r),
                [0xFF, 0xFE, r @ ..] => (false, r),
                // XML 1.0 §4.3.3: UTF-16 begins with its byte order mark.
                _ => {
                    return Err(XmlError::UnsupportedEncoding(
                        "UTF-16 without a byte order mark".into(),
                    ))
                }
            };
            if resto.len() % 2 != 0 {
                return Err(XmlError::Encoding(bytes.len() - 1));
            }
            let unita = resto.chunks_exact(2).map(|p| {
                if be {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            });
            char::decode_utf16(unita)
                .enumerate()
                .map(|(i, c)| c.map_err(|_| XmlError::Encoding(2 + 2 * i)))
                .collect::<Result<String, _>>()?
        }
    };
    Ok(Cow::Owned(dichiara_utf8(testo).into_bytes()))
}

/// The text with its XML declaration's encoding changed to UTF-8.
fn dichiara_utf8(testo: String) -> String {
    let Some(decl) = testo.strip_prefix("<?xml") else {
        return testo;
    };
    let Some(fine) = decl.find("?>") else {
        return testo;
    };
    let Some(enc) = super::declared_encoding(&testo) else {
        return testo;
    };
    let inizio = "<?xml".len();
    let pezzo = &testo[inizio..inizio + fine];
    let nuovo = pezzo.replacen(enc, "UTF-8", 1);
    format!("<?xml{nuovo}{}", &testo[inizio + fine..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_windows1252_and_utf16_become_utf8() {
        let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>citt\xE0</a>";
        let u = in_utf8(latin, None).unwrap();
        assert_eq!(
            std::str::from_utf8(&u).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>città</a>"
        );
        // The HTTP charset wins over the declaration.
        let u = in_utf8(b"<a>\x80 \xE0</a>", Some("windows-1252")).unwrap();
        assert_eq!(std::str::from_utf8(&u).unwrap(), "<a>€ à</a>");
        let mut le = vec![0xFF, 0xFE];
        for c in "<?xml version='1.0' encoding='UTF-16'?><a>è</a>".encode_utf16() {
            le.extend_from_slice(&c.to_le_bytes());
        }
        let u = in_utf8(&le, None).unwrap();
        assert_eq!(
            std::str::from_utf8(&u).unwrap(),
            "<?xml version='1.0' encoding='UTF-8'?><a>è</a>"
        );
        // UTF-8 passes as it is; unknown encodings and UTF-16 without its mark are refused.
        assert!(matches!(
            in_utf8(b"<a/>", Some("utf-8")).unwrap(),
            Cow::Borrowed(_)
        ));
        assert!(in_utf8(b"<?xml version=\"1.0\" encoding=\"EBCDIC\"?><a/>", None).is_err());
        assert!(in_utf8(b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>", None).is_err());
    }
}
