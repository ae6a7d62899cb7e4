//! A stored message as the console shows it: indented, one element a line (an element holding
//! only text on one line), the busta's lines (`eGov_IT:Intestazione`) marked. For reading
//! only: the stored bytes stay as they were; what does not read as XML is shown as it is.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One line of the view.
#[derive(Debug, PartialEq, Eq)]
pub struct Riga {
    pub livello: usize,
    /// Markup and text as in the message (not escaped for HTML).
    pub testo: String,
    /// Inside the busta e-Gov header.
    pub busta: bool,
}

/// At most this many lines (a large message is cut, and says so).
pub const MAX_RIGHE: usize = 4000;

enum Ev {
    Apre(String, bool),
    Chiude(String),
    Vuoto(String, bool),
    Testo(String),
    Altro(String),
}

fn locale(nome: &str) -> &str {
    nome.rsplit(':').next().unwrap_or(nome)
}

fn eventi(xml: &str) -> Option<Vec<Ev>> {
    let mut r = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut testo = String::new();
    loop {
        let ev = r.read_event().ok()?;
        if !matches!(ev, Event::Text(_) | Event::GeneralRef(_)) && !testo.trim().is_empty() {
            out.push(Ev::Testo(testo.trim().to_string()));
        }
        if !matches!(ev, Event::Text(_) | Event::GeneralRef(_)) {
            testo.clear();
        }
        let s = |b: &str| b.to_string();
        match ev {
            Event::Start(e) => {
                let busta = locale(e.name().0) == "Intestazione";
                out.push(Ev::Apre(s(&e), busta));
            }
            Event::End(e) => out.push(Ev::Chiude(s(e.name().0))),
            Event::Empty(e) => {
                let busta = locale(e.name().0) == "Intestazione";
                out.push(Ev::Vuoto(s(&e), busta));
            }
            Event::Text(e) => testo.push_str(&s(&e)),
            Event::GeneralRef(e) => {
                testo.push('&');
                testo.push_str(&s(&e));
                testo.push(';');
            }
            Event::CData(e) => out.push(Ev::Altro(format!("<![CDATA[{}]]>", s(&e)))),
            Event::Comment(e) => out.push(Ev::Altro(format!("<!--{}-->", s(&e)))),
            Event::Decl(e) => out.push(Ev::Altro(format!("<?{}?>", s(&e)))),
            Event::PI(e) => out.push(Ev::Altro(format!("<?{}?>", s(&e)))),
            Event::DocType(e) => out.push(Ev::Altro(format!("<!DOCTYPE {}>", s(&e)))),
            Event::Eof => break,
        }
    }
    Some(out)
}

/// The view of a message.
pub fn righe(messaggio: &[u8]) -> Vec<Riga> {
    let testo = String::from_utf8_lossy(messaggio);
    let Some(ev) = eventi(&testo) else {
        // Not XML (or broken): as it is, line by line.
        return testo
            .lines()
            .take(MAX_RIGHE)
            .map(|l| Riga {
                livello: 0,
                testo: l.to_string(),
                busta: false,
            })
            .collect();
    };
    let mut out = Vec::new();
    let mut livello = 0usize;
    // The level at which the busta opened, while inside it.
    let mut busta: Option<usize> = None;
    let mut i = 0;
    while i < ev.len() && out.len() < MAX_RIGHE {
        let mut riga = |livello: usize, testo: String, b: bool| {
            out.push(Riga {
                livello,
                testo,
                busta: b,
            })
        };
        match &ev[i] {
            Ev::Apre(tag, e_busta) => {
                if *e_busta && busta.is_none() {
                    busta = Some(livello);
                }
                let b = busta.is_some();
                match (ev.get(i + 1), ev.get(i + 2)) {
                    (Some(Ev::Testo(t)), Some(Ev::Chiude(fine))) => {
                        riga(livello, format!("<{tag}>{t}</{fine}>"), b);
                        i += 3;
                        if busta == Some(livello) {
                            busta = None;
                        }
                        continue;
                    }
                    (Some(Ev::Chiude(fine)), _) => {
                        riga(livello, format!("<{tag}></{fine}>"), b);
                        i += 2;
                        if busta == Some(livello) {
                            busta = None;
                        }
                        continue;
                    }
                    _ => {
                        riga(livello, format!("<{tag}>"), b);
                        livello += 1;
                    }
                }
            }
            Ev::Chiude(nome) => {
                livello = livello.saturating_sub(1);
                riga(livello, format!("</{nome}>"), busta.is_some());
                if busta == Some(livello) {
                    busta = None;
                }
            }
            Ev::Vuoto(tag, e_busta) => {
                riga(livello, format!("<{tag}/>"), busta.is_some() || *e_busta)
            }
            Ev::Testo(t) => riga(livello, t.clone(), busta.is_some()),
            Ev::Altro(t) => riga(livello, t.clone(), busta.is_some()),
        }
        i += 1;
    }
    if out.len() >= MAX_RIGHE {
        out.push(Riga {
            livello: 0,
            testo: format!("… (mostrate le prime {MAX_RIGHE} righe)"),
            busta: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busta_is_marked_and_text_stays_on_its_element_line() {
        let xml = br#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Header><e:Intestazione xmlns:e="y"><e:Mittente>A &amp; B</e:Mittente><e:Vuoto/></e:Intestazione></s:Header><s:Body><b>ok</b></s:Body></s:Envelope>"#;
        let r = righe(xml);
        let testi: Vec<(&str, usize, bool)> = r
            .iter()
            .map(|r| (r.testo.as_str(), r.livello, r.busta))
            .collect();
        assert_eq!(
            testi,
            vec![
                ("<?xml version=\"1.0\"?>", 0, false),
                ("<s:Envelope xmlns:s=\"x\">", 0, false),
                ("<s:Header>", 1, false),
                ("<e:Intestazione xmlns:e=\"y\">", 2, true),
                ("<e:Mittente>A &amp; B</e:Mittente>", 3, true),
                ("<e:Vuoto/>", 3, true),
                ("</e:Intestazione>", 2, true),
                ("</s:Header>", 1, false),
                ("<s:Body>", 1, false),
                ("<b>ok</b>", 2, false),
                ("</s:Body>", 1, false),
                ("</s:Envelope>", 0, false),
            ]
        );
    }

    #[test]
    fn what_is_not_xml_is_shown_as_it_is() {
        let r = righe(b"non xml <a>\n</b> seconda");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].testo, "</b> seconda");
        assert!(righe(b"").is_empty());
    }
}
