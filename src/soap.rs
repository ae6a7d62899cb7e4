//! SOAP 1.1 envelope: reading (header blocks as trees, the Body kept as raw bytes and, for a
//! caller that reads it, its first element as a tree) and writing (envelopes and Faults). No I/O.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::events::Event;

use crate::xml::{self, Cursor, Element, Identificato, Limits, XmlError};

pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SoapError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("SOAP 1.2 envelope: only SOAP 1.1 is accepted")]
    Soap12,
    #[error("the root element is not a SOAP 1.1 Envelope")]
    NotEnvelope,
    #[error("the Envelope has no Body")]
    NoBody,
    #[error("unexpected element '{0}' in the Envelope")]
    Unexpected(String),
}

/// A parsed SOAP 1.1 message. Byte ranges point into `src`.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub src: &'a str,
    /// Offset of `src` in the bytes received (a skipped byte order mark).
    pub offset: usize,
    pub envelope: Range<usize>,
    /// The Header element, if present, and its blocks.
    pub header: Option<Range<usize>>,
    pub header_blocks: Vec<Element>,
    /// The whole Body element.
    pub body: Range<usize>,
    /// The Body's content, between its start and end tags.
    pub body_content: Range<usize>,
    /// The first element inside the Body: (namespace, local name).
    pub body_first: Option<(Option<String>, String)>,
    /// The Body's Fault, when the first child is one.
    pub fault: Option<Fault>,
    /// Namespace declarations on the Envelope and Body start tags, in scope for the Body's
    /// content: carried along whenever that content is moved into another envelope.
    pub body_ns: Vec<(String, String)>,
    /// The first element inside the Body as a tree, when built in the envelope's own pass
    /// ([`Envelope::parse_con_corpo`]); [`Envelope::body_tree`] lends it.
    corpo: Option<Element>,
    /// Every element of the message carrying an id attribute, in document order: what a
    /// signature's references resolve against (noted in the same pass).
    pub ids: Vec<Identificato>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: String,
    pub string: String,
    pub actor: Option<String>,
    pub detail: Option<Element>,
}

impl<'a> Envelope<'a> {
    pub fn parse(bytes: &'a [u8], limits: Limits) -> Result<Envelope<'a>, SoapError> {
        Envelope::leggi(bytes, limits, false)
    }

    /// As [`Envelope::parse`], building the tree of the Body's first element in the same pass
    /// instead of only checking it: for a caller that reads the Body ([`Envelope::body_tree`]),
    /// one pass over a large modulo rather than two.
    pub fn parse_con_corpo(bytes: &'a [u8], limits: Limits) -> Result<Envelope<'a>, SoapError> {
        Envelope::leggi(bytes, limits, true)
    }

    fn leggi(bytes: &'a [u8], limits: Limits, corpo: bool) -> Result<Envelope<'a>, SoapError> {
        let (src, offset) = xml::decode(bytes)?;
        let mut cur = Cursor::new(src, limits);
        cur.raccogli_ids();
        // Prolog up to the root element.
        let (root_at, root) = loop {
            let (at, ev) = cur.next_event()?;
            match ev {
                Event::Start(s) => break (at, s),
                Event::Empty(_) => return Err(SoapError::NoBody),
                Event::Text(t) if !t.trim().is_empty() => return Err(SoapError::NotEnvelope),
                Event::Eof => return Err(XmlError::Empty.into()),
                _ => {}
            }
        };
        let ns = cur.element_ns(&root)?;
        if root.local_name().into_inner() != "Envelope" {
            return Err(SoapError::NotEnvelope);
        }
        match ns.as_deref() {
            Some(SOAP11_NS) => {}
            Some(SOAP12_NS) => return Err(SoapError::Soap12),
            _ => return Err(SoapError::NotEnvelope),
        }
        cur.check_attributes(&root)?;
        let mut body_ns = ns_decls(&root);

        let mut env = Envelope {
            src,
            offset,
            envelope: root_at..src.len(),
            header: None,
            header_blocks: Vec::new(),
            body: 0..0,
            body_content: 0..0,
            body_first: None,
            fault: None,
            body_ns: Vec::new(),
            ids: Vec::new(),
            corpo: None,
        };
        let mut seen_body = false;
        loop {
            let (at, ev) = cur.next_event()?;
            match ev {
                Event::Start(s) | Event::Empty(s) if cur.depth <= 2 => {
                    let empty = cur.depth == 1;
                    let el_ns = cur.element_ns(&s)?;
                    let local = s.local_name().into_inner().to_string();
                    cur.check_attributes(&s)?;
                    let is_soap = el_ns.as_deref() == Some(SOAP11_NS);
                    if is_soap && local == "Header" && env.header.is_none() && !seen_body {
                        if empty {
                            env.header = Some(at..cur.pos());
                        } else {
                            env.header_blocks = read_blocks(&mut cur)?;
                            env.header = Some(at..cur.pos());
                        }
                    } else if is_soap && local == "Body" && !seen_body {
                        seen_body = true;
                        for d in ns_decls(&s) {
                            body_ns.retain(|(p, _)| *p != d.0);
                            body_ns.push(d);
                        }
                        if empty {
                            env.body = at..cur.pos();
                            env.body_content = cur.pos()..cur.pos();
                        } else {
                            let content_start = cur.pos();
                            let (first, fault, end, albero) = read_body(&mut cur, corpo)?;
                            env.body_first = first;
                            env.fault = fault;
                            env.corpo = albero;
                            env.body_content = content_start..end;
                            env.body = at..cur.pos();
                        }
                    } else {
                        return Err(SoapError::Unexpected(s.name().0.to_string()));
                    }
                }
                Event::End(_) if cur.depth == 0 => {
                    env.envelope.end = cur.pos();
                    break;
                }
                Event::Text(t) if !t.trim().is_empty() => {
                    return Err(SoapError::Unexpected("text".into()))
                }
                Event::Eof => return Err(xml::eof(cur.pos()).into()),
                _ => {}
            }
        }
        // Only comments, PIs and whitespace may follow the root.
        loop {
            let (at, ev) = cur.next_event()?;
            match ev {
                Event::Eof => break,
                Event::Start(_) | Event::Empty(_) => {
                    return Err(XmlError::Syntax {
                        pos: at,
                        msg: "content after the Envelope".into(),
                    }
                    .into())
                }
                Event::Text(t) if !t.trim().is_empty() => {
                    return Err(XmlError::Syntax {
                        pos: at,
                        msg: "text after the Envelope".into(),
                    }
                    .into())
                }
                _ => {}
            }
        }
        if !seen_body {
            return Err(SoapError::NoBody);
        }
        env.body_ns = body_ns;
        env.ids = cur.prendi_ids();
        Ok(env)
    }

    /// The message with one byte range removed (e.g. the eGov header after sbustamento);
    /// everything else stays byte for byte, so namespace context is untouched.
    pub fn without(&self, cut: Range<usize>) -> String {
        self.without_all(std::slice::from_ref(&cut))
    }

    /// The message with several (non-overlapping) byte ranges removed.
    pub fn without_all(&self, cuts: &[Range<usize>]) -> String {
        let mut cuts: Vec<&Range<usize>> = cuts.iter().collect();
        cuts.sort_by_key(|r| r.start);
        let mut s = String::with_capacity(self.src.len());
        let mut at = 0;
        for c in cuts {
            if c.start >= at {
                s.push_str(&self.src[at..c.start]);
                at = c.end;
            }
        }
        s.push_str(&self.src[at..]);
        s
    }

    /// The first element inside the Body as a tree (namespaces resolved in the message's scope):
    /// the one built in the envelope's pass, or built now.
    pub fn body_tree(&self, limits: Limits) -> Result<Option<Cow<'_, Element>>, SoapError> {
        if let Some(e) = &self.corpo {
            return Ok(Some(Cow::Borrowed(e)));
        }
        Ok(self.costruisci_corpo(limits)?.map(Cow::Owned))
    }

    fn costruisci_corpo(&self, limits: Limits) -> Result<Option<Element>, SoapError> {
        let mut cur = Cursor::new(self.src, limits);
        loop {
            let (at, ev) = cur.next_event()?;
            if at >= self.body_content.end {
                return Ok(None);
            }
            match ev {
                Event::Start(s) if at >= self.body_content.start => {
                    return Ok(Some(cur.build(at, &s, false)?))
                }
                Event::Empty(s) if at >= self.body_content.start => {
                    return Ok(Some(cur.build(at, &s, true)?))
                }
                Event::Eof => return Ok(None),
                _ => {}
            }
        }
    }

    pub fn body_content_str(&self) -> &'a str {
        &self.src[self.body_content.clone()]
    }
}

/// The `xmlns` / `xmlns:p` declarations of a start tag, as (prefix, URI); "" is the default.
fn ns_decls(e: &quick_xml::events::BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .flatten()
        .filter_map(|a| {
            let k = a.key.0;
            let prefix = if k == "xmlns" {
                ""
            } else {
                k.strip_prefix("xmlns:")?
            };
            let v = xml::namespace_name(&a.value).ok()?.into_owned();
            Some((prefix.to_string(), v))
        })
        .collect()
}

fn read_blocks(cur: &mut Cursor<'_>) -> Result<Vec<Element>, SoapError> {
    let mut blocks = Vec::new();
    loop {
        let (at, ev) = cur.next_event()?;
        match ev {
            Event::Start(s) => blocks.push(cur.build(at, &s, false)?),
            Event::Empty(s) => blocks.push(cur.build(at, &s, true)?),
            Event::End(_) => return Ok(blocks),
            Event::Text(t) if !t.trim().is_empty() => {
                return Err(SoapError::Unexpected("text in Header".into()))
            }
            Event::GeneralRef(_) => return Err(SoapError::Unexpected("text in Header".into())),
            Event::Eof => return Err(xml::eof(cur.pos()).into()),
            _ => {}
        }
    }
}

type BodyParts = (
    Option<(Option<String>, String)>,
    Option<Fault>,
    usize,
    Option<Element>,
);

/// Walks the Body, checking well-formedness; returns the first child's name, a Fault if the
/// first child is one, the offset of the Body's end tag and, with `corpo`, the first child's
/// tree (built where it would only be checked).
fn read_body(cur: &mut Cursor<'_>, corpo: bool) -> Result<BodyParts, SoapError> {
    let mut first = None;
    let mut fault = None;
    let mut albero = None;
    loop {
        let (at, ev) = cur.next_event()?;
        match ev {
            Event::Start(s) | Event::Empty(s) if first.is_none() => {
                let empty = cur.depth == 2;
                let ns = cur.element_ns(&s)?;
                let local = s.local_name().into_inner().to_string();
                if ns.as_deref() == Some(SOAP11_NS) && local == "Fault" {
                    let el = cur.build(at, &s, empty)?;
                    fault = Some(fault_from(&el));
                } else if corpo {
                    albero = Some(cur.build(at, &s, empty)?);
                } else if !empty {
                    cur.check_attributes(&s)?;
                    cur.skip_to_end()?;
                } else {
                    cur.check_attributes(&s)?;
                }
                first = Some((ns, local));
            }
            Event::Start(s) => {
                cur.element_ns(&s)?;
                cur.check_attributes(&s)?;
                cur.skip_to_end()?;
            }
            Event::Empty(s) => {
                cur.element_ns(&s)?;
                cur.check_attributes(&s)?;
            }
            Event::End(_) => return Ok((first, fault, at, albero)),
            Event::GeneralRef(r) => {
                xml::resolve_ref(&r)?;
            }
            Event::Eof => return Err(xml::eof(cur.pos()).into()),
            _ => {}
        }
    }
}

fn fault_from(el: &Element) -> Fault {
    let text = |name: &str| el.child(name).map(|c| c.value().to_string());
    Fault {
        code: text("faultcode").unwrap_or_default(),
        string: text("faultstring").unwrap_or_default(),
        actor: text("faultactor"),
        detail: el.child("detail").cloned(),
    }
}

/// Builds a SOAP 1.1 envelope around header blocks and body content (all already serialised).
pub fn envelope(header_blocks: &[&str], body: &str) -> String {
    envelope_ns(header_blocks, body, &[])
}

/// As [`envelope`], declaring `body_ns` on the Body so that moved content keeps its bindings.
/// A declaration of our own `SOAP_ENV` prefix to another URI cannot be honoured and is dropped.
pub fn envelope_ns(header_blocks: &[&str], body: &str, body_ns: &[(String, String)]) -> String {
    let mut s = String::with_capacity(
        body.len() + header_blocks.iter().map(|h| h.len()).sum::<usize>() + 200,
    );
    s.push_str(r#"<SOAP_ENV:Envelope xmlns:SOAP_ENV="http://schemas.xmlsoap.org/soap/envelope/">"#);
    if !header_blocks.is_empty() {
        s.push_str("<SOAP_ENV:Header>");
        for h in header_blocks {
            s.push_str(h);
        }
        s.push_str("</SOAP_ENV:Header>");
    }
    s.push_str("<SOAP_ENV:Body");
    for (p, uri) in body_ns {
        if p == "SOAP_ENV" {
            continue;
        }
        if p.is_empty() {
            s.push_str(" xmlns=\"");
        } else {
            s.push_str(" xmlns:");
            s.push_str(p);
            s.push_str("=\"");
        }
        s.push_str(&xml::escape_attr(uri));
        s.push('"');
    }
    s.push('>');
    s.push_str(body);
    s.push_str("</SOAP_ENV:Body></SOAP_ENV:Envelope>");
    s
}

/// Fault codes of SOAP 1.1 §4.4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    VersionMismatch,
    MustUnderstand,
    Client,
    Server,
}

impl FaultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::VersionMismatch => "VersionMismatch",
            FaultCode::MustUnderstand => "MustUnderstand",
            FaultCode::Client => "Client",
            FaultCode::Server => "Server",
        }
    }
}

/// A SOAP 1.1 Fault element. The faultcode carries its own `soap:` prefix declaration, as
/// OpenSPCoop v1 clients expect (busta-egov.md §2.2).
pub fn fault(code: FaultCode, string: &str, actor: Option<&str>, detail: Option<&str>) -> String {
    let mut s = String::with_capacity(256 + detail.map_or(0, str::len));
    s.push_str("<SOAP_ENV:Fault><faultcode xmlns:soap=\"");
    s.push_str(SOAP11_NS);
    s.push_str("\">soap:");
    s.push_str(code.as_str());
    s.push_str("</faultcode><faultstring>");
    s.push_str(&xml::escape_text(string));
    s.push_str("</faultstring>");
    if let Some(a) = actor {
        s.push_str("<faultactor>");
        s.push_str(&xml::escape_text(a));
        s.push_str("</faultactor>");
    }
    if let Some(d) = detail {
        s.push_str("<detail>");
        s.push_str(d);
        s.push_str("</detail>");
    }
    s.push_str("</SOAP_ENV:Fault>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="urn:t">
 <s:Header><h:One xmlns:h="urn:h" s:mustUnderstand="1">x</h:One><h:Two xmlns:h="urn:h"/></s:Header>
 <s:Body><t:op><t:arg>1 &amp; 2</t:arg></t:op></s:Body>
</s:Envelope>"#;

    /// The ids a signature's references resolve against, noted in the envelope's one pass:
    /// `wsu:Id` under whatever prefix, `xml:id`, unqualified `Id`/`ID`/`id`, anywhere (the Body's
    /// depths included), and not an `Id` of another namespace.
    #[test]
    fn notes_every_element_carrying_an_id() {
        let msg = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:A xmlns:h="urn:h" xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" u:Id="uno"><h:B xml:id="due" h:Id="non"/></h:A></s:Header><s:Body Id="tre"><t:op xmlns:t="urn:t"><t:x ID="qu&amp;attro"><t:y id="cinque"/></t:x></t:op></s:Body></s:Envelope>"#;
        let env = Envelope::parse(msg.as_bytes(), Limits::default()).unwrap();
        let visti: Vec<(&str, &str)> = env
            .ids
            .iter()
            .map(|x| (x.id.as_str(), &msg[x.start..x.start + 4]))
            .collect();
        assert_eq!(
            visti,
            [
                ("uno", "<h:A"),
                ("due", "<h:B"),
                ("tre", "<s:B"),
                ("qu&attro", "<t:x"),
                ("cinque", "<t:y")
            ]
        );
    }

    #[test]
    fn reads_header_blocks_and_body() {
        let env = Envelope::parse(MSG.as_bytes(), Limits::default()).unwrap();
        assert_eq!(env.header_blocks.len(), 2);
        assert!(env.header_blocks[0].is("urn:h", "One"));
        assert_eq!(
            env.header_blocks[0].attr_ns(SOAP11_NS, "mustUnderstand"),
            Some("1")
        );
        assert_eq!(
            env.body_content_str(),
            "<t:op><t:arg>1 &amp; 2</t:arg></t:op>"
        );
        assert_eq!(env.body_first, Some((Some("urn:t".into()), "op".into())));
        // The body content moves into a new envelope with its bindings.
        let moved = envelope_ns(&[], env.body_content_str(), &env.body_ns);
        let again = Envelope::parse(moved.as_bytes(), Limits::default()).unwrap();
        assert_eq!(again.body_first, Some((Some("urn:t".into()), "op".into())));
        let op = env.body_tree(Limits::default()).unwrap().unwrap();
        assert!(op.is("urn:t", "op"));
        assert_eq!(op.children[0].text, "1 & 2");
        let stripped = env.without(env.header_blocks[0].span.clone());
        assert!(!stripped.contains("h:One"));
        assert!(Envelope::parse(stripped.as_bytes(), Limits::default()).is_ok());
    }

    /// The Body's tree built in the envelope's pass is the one built afterwards, and a Body
    /// either way refuses is refused by both: its ids, spans, namespaces and errors alike.
    #[test]
    fn the_body_built_in_the_envelopes_pass_is_the_body_built_after() {
        let s = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/""#;
        let messaggi = [
            MSG.to_string(),
            format!(
                r#"{s}><s:Body><t:op xmlns:t="urn:t" Id="x"><t:a>&lt;C&gt;&#233;<![CDATA[<&>]]></t:a><t:b/></t:op><t:due xmlns:t="urn:t"/></s:Body></s:Envelope>"#
            ),
            format!(r#"{s}><s:Body><t:op xmlns:t="urn:t"/></s:Body></s:Envelope>"#),
            format!(r#"{s}><s:Body/></s:Envelope>"#),
            format!(
                r#"{s}><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>"#
            ),
            // Refused: an undeclared prefix, an unknown entity, a mismatched tag, a repeated
            // attribute.
            format!(r#"{s}><s:Body><t:op xmlns:t="urn:t"><u:a/></t:op></s:Body></s:Envelope>"#),
            format!(r#"{s}><s:Body><op>&e;</op></s:Body></s:Envelope>"#),
            format!(r#"{s}><s:Body><op><a></op></s:Body></s:Envelope>"#),
            format!(r#"{s}><s:Body><op><a b="1" b="2"/></op></s:Body></s:Envelope>"#),
        ];
        for m in &messaggi {
            let dopo = Envelope::parse(m.as_bytes(), Limits::default());
            let insieme = Envelope::parse_con_corpo(m.as_bytes(), Limits::default());
            match (dopo, insieme) {
                (Ok(d), Ok(i)) => {
                    assert!(i.corpo.is_some() == (d.body_first.is_some() && d.fault.is_none()));
                    assert_eq!(d.ids, i.ids, "{m}");
                    assert_eq!(d.body_content, i.body_content, "{m}");
                    assert_eq!(d.fault, i.fault, "{m}");
                    let d = d.body_tree(Limits::default()).unwrap().map(Cow::into_owned);
                    let i = i.body_tree(Limits::default()).unwrap().map(Cow::into_owned);
                    assert_eq!(d, i, "{m}");
                }
                (Err(d), Err(i)) => assert_eq!(d, i, "{m}"),
                (d, i) => panic!("{m}: {:?} against {:?}", d.err(), i.err()),
            }
        }
    }

    #[test]
    fn refuses_soap12_and_non_envelopes() {
        let s12 = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#;
        assert_eq!(
            Envelope::parse(s12.as_bytes(), Limits::default()).unwrap_err(),
            SoapError::Soap12
        );
        assert_eq!(
            Envelope::parse(b"<a/>", Limits::default()).unwrap_err(),
            SoapError::NoBody
        );
        assert_eq!(
            Envelope::parse(b"<a></a>", Limits::default()).unwrap_err(),
            SoapError::NotEnvelope
        );
        let nobody = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/></s:Envelope>"#;
        assert_eq!(
            Envelope::parse(nobody.as_bytes(), Limits::default()).unwrap_err(),
            SoapError::NoBody
        );
        let cut = &MSG[..MSG.len() - 30];
        assert!(Envelope::parse(cut.as_bytes(), Limits::default()).is_err());
    }

    #[test]
    fn reads_a_fault() {
        let body = fault(
            FaultCode::Client,
            "EGOV_IT_001 - Formato Busta non corretto",
            None,
            Some("<d>x</d>"),
        );
        let msg = envelope(&[], &body);
        let env = Envelope::parse(msg.as_bytes(), Limits::default()).unwrap();
        let f = env.fault.unwrap();
        assert_eq!(f.code, "soap:Client");
        assert_eq!(f.string, "EGOV_IT_001 - Formato Busta non corretto");
        assert_eq!(f.detail.unwrap().children[0].text, "x");
    }
}
