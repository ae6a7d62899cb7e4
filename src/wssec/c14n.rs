//! Exclusive XML Canonicalization 1.0 without comments
//! (<http://www.w3.org/2001/10/xml-exc-c14n#>), over the raw bytes of a document.
//!
//! The subtree rooted at an element (found by its byte offset) is written in canonical form:
//! UTF-8, no declaration, empty elements as start/end pairs, attribute values and text escaped
//! the canonical way, attributes sorted, and a namespace declaration written only where the
//! element or one of its attributes visibly uses the prefix and the nearest rendered ancestor
//! did not already declare it with the same value — plus the prefixes of an InclusiveNamespaces
//! PrefixList, treated as inclusive C14N would. Several subtrees can be produced in one pass.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::xml::{self, XmlError, NS_XML as XML_NS};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum C14nError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("no element starts at byte {0}")]
    NoElement(usize),
    #[error("namespace prefix '{0}' is not declared")]
    UnknownPrefix(String),
}

/// What to canonicalize: the element starting at `start`, and the InclusiveNamespaces prefixes
/// (`#default` for the default namespace).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub start: usize,
    pub inclusive: Vec<String>,
}

/// One output in progress.
struct Active {
    out: String,
    /// Depth below the apex (1 = the apex element is open).
    depth: usize,
    /// Namespaces rendered by output ancestors, one frame per open element: (prefix, uri).
    rendered: Vec<Vec<(String, String)>>,
    inclusive: Vec<String>,
    done: bool,
}

impl Active {
    fn rendered(&self, prefix: &str) -> Option<&str> {
        self.rendered
            .iter()
            .rev()
            .flat_map(|f| f.iter().rev())
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }
}

/// In-scope namespace declarations of the document, one frame per open element.
struct Scope(Vec<Vec<(String, String)>>);

impl Scope {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        self.0
            .iter()
            .rev()
            .flat_map(|f| f.iter().rev())
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }
}

fn split(qname: &str) -> (&str, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname),
    }
}

/// Appends `v` to `out` with the bytes `replace` maps escaped. Unescaped runs are copied whole:
/// modulo text is long and mostly plain. The special characters are ASCII, so every cut is on
/// a character boundary.
fn escape_with(v: &str, out: &mut String, replace: impl Fn(u8) -> Option<&'static str>) {
    let mut from = 0;
    for (i, &b) in v.as_bytes().iter().enumerate() {
        if let Some(r) = replace(b) {
            out.push_str(&v[from..i]);
            out.push_str(r);
            from = i + 1;
        }
    }
    out.push_str(&v[from..]);
}

pub fn escape_attr_value(v: &str, out: &mut String) {
    escape_with(v, out, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'"' => Some("&quot;"),
        b'\t' => Some("&#x9;"),
        b'\n' => Some("&#xA;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    })
}

pub fn escape_text(v: &str, out: &mut String) {
    escape_with(v, out, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    })
}

fn syntax(pos: usize, msg: impl Into<String>) -> XmlError {
    XmlError::Syntax {
        pos,
        msg: msg.into(),
    }
}

/// A start tag split into namespace declarations and attributes (values normalized), borrowing
/// from the event where nothing needed rewriting.
struct Tag<'e> {
    qname: &'e str,
    decls: Vec<(&'e str, Cow<'e, str>)>,
    attrs: Vec<(&'e str, Cow<'e, str>)>,
}

fn read_tag<'e>(e: &'e BytesStart<'_>, pos: usize) -> Result<Tag<'e>, XmlError> {
    let mut decls = Vec::new();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| syntax(pos, err.to_string()))?;
        let k = a.key.0;
        // Literal whitespace is normalized before references are resolved (XML 1.0 §3.3.3).
        let raw = if a.value.contains(['\t', '\n', '\r']) {
            Cow::Owned(
                a.value
                    .replace("\r\n", " ")
                    .replace(['\t', '\n', '\r'], " "),
            )
        } else {
            a.value
        };
        let v = match raw {
            Cow::Borrowed(r) => xml::unescape(r)?,
            Cow::Owned(r) => Cow::Owned(xml::unescape(&r)?.into_owned()),
        };
        if k == "xmlns" {
            decls.push(("", v));
        } else if let Some(p) = k.strip_prefix("xmlns:") {
            decls.push((p, v));
        } else {
            attrs.push((k, v));
        }
    }
    Ok(Tag {
        qname: e.name().0,
        decls,
        attrs,
    })
}

/// Writes the start tag of an element into one output, rendering the namespaces it needs.
fn start_tag(a: &mut Active, tag: &Tag<'_>, scope: &Scope) -> Result<(), C14nError> {
    let (eprefix, _) = split(tag.qname);
    let mut needed: Vec<&str> = vec![eprefix];
    for (k, _) in &tag.attrs {
        let (p, _) = split(k);
        if !p.is_empty() && p != "xml" && !needed.contains(&p) {
            needed.push(p);
        }
    }
    for p in &a.inclusive {
        let p = if p == "#default" { "" } else { p.as_str() };
        if !needed.contains(&p) {
            // An inclusive prefix is rendered only where it is in scope.
            if p.is_empty() || scope.lookup(p).is_some() {
                needed.push(p);
            }
        }
    }
    let mut decls: Vec<(String, String)> = Vec::new();
    for p in needed {
        let uri = match scope.lookup(p) {
            Some(u) => u,
            None if p.is_empty() => "",
            None => return Err(C14nError::UnknownPrefix(p.to_string())),
        };
        if p == "xml" {
            continue;
        }
        let already = a.rendered(p);
        let render = if p.is_empty() && uri.is_empty() {
            // xmlns="" only undoes a default rendered by an output ancestor.
            already.is_some_and(|u| !u.is_empty())
        } else {
            already != Some(uri)
        };
        if render {
            decls.push((p.to_string(), uri.to_string()));
        }
    }
    decls.sort_by(|x, y| x.0.cmp(&y.0));
    // Attributes sort by namespace URI, then local name; unqualified ones have no URI.
    let mut attrs: Vec<(&str, &str, &str)> = Vec::with_capacity(tag.attrs.len());
    for (k, _) in &tag.attrs {
        let (p, local) = split(k);
        let uri = if p.is_empty() {
            ""
        } else {
            scope
                .lookup(p)
                .ok_or_else(|| C14nError::UnknownPrefix(p.to_string()))?
        };
        attrs.push((uri, local, k));
    }
    let mut order: Vec<usize> = (0..attrs.len()).collect();
    order.sort_by(|&i, &j| (attrs[i].0, attrs[i].1).cmp(&(attrs[j].0, attrs[j].1)));

    a.out.push('<');
    a.out.push_str(tag.qname);
    for (p, u) in &decls {
        if p.is_empty() {
            a.out.push_str(" xmlns=\"");
        } else {
            a.out.push_str(" xmlns:");
            a.out.push_str(p);
            a.out.push_str("=\"");
        }
        escape_attr_value(u, &mut a.out);
        a.out.push('"');
    }
    for i in order {
        a.out.push(' ');
        a.out.push_str(attrs[i].2);
        a.out.push_str("=\"");
        escape_attr_value(&tag.attrs[i].1, &mut a.out);
        a.out.push('"');
    }
    a.out.push('>');
    a.rendered.push(decls);
    Ok(())
}

/// Canonicalizes the subtrees of `targets` (elements by byte offset in `src`), in one pass.
/// The targets whose apex element is open: those a node read now belongs to.
fn aperti(active: &mut [Option<Active>]) -> impl Iterator<Item = &mut Active> {
    active
        .iter_mut()
        .flatten()
        .filter(|a| !a.done && a.depth > 0)
}

/// An end tag into a target; true when it closes the target's apex.
fn chiudi(a: &mut Active, qname: &str) -> bool {
    a.out.push_str("</");
    a.out.push_str(qname);
    a.out.push('>');
    a.rendered.pop();
    a.depth -= 1;
    a.done = a.depth == 0;
    a.done
}

/// Character data (text, CDATA, a resolved reference) into every open target.
fn testo(active: &mut [Option<Active>], text: &str) {
    for a in aperti(active) {
        escape_text(text, &mut a.out);
    }
}

pub fn canonicalize(src: &str, targets: &[Target]) -> Result<Vec<String>, C14nError> {
    canonicalizza(src, targets, true)
}

/// [`canonicalize`], with character data read by [`xml::leggi_testo`] (`una_passata`) or as
/// quick-xml's events (the tests compare the two).
fn canonicalizza(
    src: &str,
    targets: &[Target],
    una_passata: bool,
) -> Result<Vec<String>, C14nError> {
    let mut reader = Reader::from_str(src);
    reader.config_mut().check_end_names = true;
    let mut scope = Scope(Vec::new());
    let mut active: Vec<Option<Active>> = targets.iter().map(|_| None).collect();
    let mut finished = 0;
    // Bytes of character data read here rather than by the reader (which does not count them).
    let mut saltati = 0usize;
    // The reader stands between markup (after a tag or a reference): character data may follow.
    let mut tra_markup = false;
    loop {
        if tra_markup {
            let at = reader.buffer_position() as usize + saltati;
            if let Some(raw) = xml::prendi_testo(src, reader.get_mut()) {
                saltati += raw.len();
                let errore = |e: XmlError| e.da(at);
                let mut dentro = aperti(&mut active);
                if let Some(primo) = dentro.next() {
                    let da = primo.out.len();
                    xml::leggi_testo(raw, xml::Modo::Canonico, &mut primo.out).map_err(errore)?;
                    let scritto = &primo.out[da..];
                    for a in dentro {
                        a.out.push_str(scritto);
                    }
                } else {
                    // Outside every target the text is still checked.
                    xml::leggi_testo(raw, xml::Modo::Verifica, &mut ()).map_err(errore)?;
                }
            }
        }
        let pos = reader.buffer_position() as usize + saltati;
        let ev = reader
            .read_event()
            .map_err(|e| syntax(reader.error_position() as usize + saltati, e.to_string()))?;
        tra_markup = una_passata && !matches!(ev, Event::Text(_) | Event::CData(_));
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let tag = read_tag(e, pos)?;
                // Owned copies only where there are declarations (an empty Vec allocates nothing).
                scope.0.push(
                    tag.decls
                        .iter()
                        .map(|(p, u)| (p.to_string(), u.to_string()))
                        .collect(),
                );
                for (i, t) in targets.iter().enumerate() {
                    if t.start == pos && active[i].is_none() {
                        active[i] = Some(Active {
                            out: String::new(),
                            depth: 0,
                            rendered: Vec::new(),
                            inclusive: t.inclusive.clone(),
                            done: false,
                        });
                    }
                }
                for a in active.iter_mut().flatten().filter(|a| !a.done) {
                    start_tag(a, &tag, &scope)?;
                    a.depth += 1;
                    if empty && chiudi(a, tag.qname) {
                        finished += 1;
                    }
                }
                if empty {
                    scope.0.pop();
                }
            }
            Event::End(ref e) => {
                let qname = e.name().0;
                for a in active.iter_mut().flatten().filter(|a| !a.done) {
                    if chiudi(a, qname) {
                        finished += 1;
                    }
                }
                scope.0.pop();
            }
            Event::Text(ref t) => testo(&mut active, &t.xml10_content()),
            Event::CData(ref c) => testo(&mut active, &c.xml10_content()),
            Event::GeneralRef(ref r) => {
                let c = xml::resolve_ref(r)?;
                let mut buf = [0u8; 4];
                testo(&mut active, c.encode_utf8(&mut buf));
            }
            Event::PI(ref p) => {
                for a in aperti(&mut active) {
                    a.out.push_str("<?");
                    a.out.push_str(p.target());
                    let content = p.content();
                    if !content.is_empty() {
                        a.out.push(' ');
                        a.out.push_str(content.trim_start());
                    }
                    a.out.push_str("?>");
                }
            }
            Event::DocType(_) => return Err(XmlError::DocType.into()),
            Event::Comment(_) | Event::Decl(_) => {}
            Event::Eof => break,
        }
        if finished == targets.len() {
            break;
        }
    }
    targets
        .iter()
        .zip(active)
        .map(|(t, a)| match a {
            Some(a) if a.done => Ok(a.out),
            _ => Err(C14nError::NoElement(t.start)),
        })
        .collect()
}

/// Canonicalizes one subtree.
pub fn canonicalize_one(src: &str, start: usize, inclusive: &[&str]) -> Result<String, C14nError> {
    let t = Target {
        start,
        inclusive: inclusive.iter().map(|s| s.to_string()).collect(),
    };
    Ok(canonicalize(src, &[t])?.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(doc: &str, start_tag: &str, inclusive: &[&str]) -> String {
        let start = doc.find(start_tag).expect("start tag");
        canonicalize_one(doc, start, inclusive).unwrap()
    }

    #[test]
    fn renders_only_visibly_used_namespaces() {
        let doc = r#"<s:E xmlns:s="urn:s" xmlns:a="urn:a" xmlns:b="urn:b"><s:B a:x="1" y="2"><b:c/><d xmlns="urn:d"/></s:B></s:E>"#;
        assert_eq!(
            c14n(doc, "<s:B", &[]),
            r#"<s:B xmlns:a="urn:a" xmlns:s="urn:s" y="2" a:x="1"><b:c xmlns:b="urn:b"></b:c><d xmlns="urn:d"></d></s:B>"#
        );
        // With an inclusive prefix, b is rendered at the apex (where it is in scope).
        assert_eq!(
            c14n(doc, "<s:B", &["b"]),
            r#"<s:B xmlns:a="urn:a" xmlns:b="urn:b" xmlns:s="urn:s" y="2" a:x="1"><b:c></b:c><d xmlns="urn:d"></d></s:B>"#
        );
    }

    /// Text read in one pass by `xml::leggi_testo` and text read as quick-xml's events must
    /// give the same canonical form, and the same refusals.
    #[test]
    fn text_read_in_one_pass_is_what_the_events_give() {
        for t in [
            "&lt;Candidatura xmlns=&quot;urn:x&quot;&gt;Rossi &amp; figli&lt;/Candidatura&gt;",
            "a > b &apos;q&apos; &#60;&#x3E;&#38; &#13;x\r\ny\rz\n\r\r\n",
            "été 😀 &#x1F600; ]]",
            "plain",
        ] {
            let doc = format!("<r><a>{t}</a></r>");
            let targets = [Target {
                start: 3,
                inclusive: vec![],
            }];
            let uno = canonicalizza(&doc, &targets, true).unwrap();
            let eventi = canonicalizza(&doc, &targets, false).unwrap();
            assert_eq!(uno, eventi, "{t}");
            assert!(!uno[0].contains("&quot;") && !uno[0].contains('\r'), "{t}");
        }
        for bad in ["x &bogus; y", "x &#0; y", "x &lt y"] {
            let doc = format!("<r><a>{bad}</a></r>");
            let targets = [Target {
                start: 3,
                inclusive: vec![],
            }];
            assert!(canonicalizza(&doc, &targets, true).is_err(), "{bad}");
            assert!(canonicalizza(&doc, &targets, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_and_normalizes() {
        let doc = "<r><t a=\"x&amp;y&#9;z\r\nw\" b='\"'>1 &lt; 2 &amp;&gt; 3&#13;<![CDATA[<x>]]><!-- c --><?pi  data?></t></r>";
        assert_eq!(
            c14n(doc, "<t", &[]),
            "<t a=\"x&amp;y&#x9;z w\" b=\"&quot;\">1 &lt; 2 &amp;&gt; 3&#xD;&lt;x&gt;<?pi data?></t>"
        );
    }

    #[test]
    fn default_namespace_undeclared_only_when_rendered() {
        let doc = r#"<r xmlns="urn:r"><a><b xmlns=""/></a></r>"#;
        assert_eq!(
            c14n(doc, "<a", &[]),
            r#"<a xmlns="urn:r"><b xmlns=""></b></a>"#
        );
        let doc = r#"<r xmlns="urn:r"><p:a xmlns:p="urn:p"><b xmlns=""/></p:a></r>"#;
        assert_eq!(
            c14n(doc, "<p:a", &[]),
            r#"<p:a xmlns:p="urn:p"><b></b></p:a>"#
        );
    }

    #[test]
    fn several_targets_in_one_pass_and_nested() {
        let doc = r#"<E xmlns:w="urn:w"><H><I w:Id="i"><M w:Id="m">x</M></I></H><B w:Id="b"/></E>"#;
        let t = |tag: &str| Target {
            start: doc.find(tag).unwrap(),
            inclusive: vec![],
        };
        let out = canonicalize(doc, &[t("<I"), t("<M"), t("<B")]).unwrap();
        assert_eq!(
            out[0],
            r#"<I xmlns:w="urn:w" w:Id="i"><M w:Id="m">x</M></I>"#
        );
        assert_eq!(out[1], r#"<M xmlns:w="urn:w" w:Id="m">x</M>"#);
        assert_eq!(out[2], r#"<B xmlns:w="urn:w" w:Id="b"></B>"#);
        assert_eq!(canonicalize_one(doc, 3, &[]), Err(C14nError::NoElement(3)));
    }
}
