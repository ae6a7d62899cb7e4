//! A small, bounded element tree over quick-xml, for the parts of a message that the gateway
//! must inspect closely (SOAP header blocks, a Fault, a modulo). Every node keeps the byte range
//! it came from, so callers can always go back to the exact bytes received.

pub mod codifica;
pub mod swar;
pub mod tree;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use compact_str::CompactString;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The longest text a CompactString keeps inline (on 64-bit targets; elsewhere a run this
/// long is still best written through a String).
const MAX_INLINE: usize = 24;

/// Hard limits that keep hostile input cheap to refuse.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum element nesting depth in the whole document.
    pub max_depth: usize,
    /// Maximum namespace bindings in scope at once.
    pub max_ns_bindings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 256,
            max_ns_bindings: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlError {
    #[error("not well-formed XML at byte {pos}: {msg}")]
    Syntax { pos: usize, msg: String },
    #[error("a DOCTYPE is not allowed in a SOAP message")]
    DocType,
    #[error("elements nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("undefined entity &{0};")]
    UndefinedEntity(String),
    #[error("namespace prefix '{0}' is not declared")]
    UnknownPrefix(String),
    #[error("the document is empty")]
    Empty,
    #[error("the message is not valid UTF-8 (byte {0})")]
    Encoding(usize),
    #[error("unsupported encoding '{0}': only UTF-8 is accepted")]
    UnsupportedEncoding(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Namespace URI of a prefixed attribute, shared as the elements' are; `None` for
    /// unprefixed ones.
    pub ns: Option<Ns>,
    /// Names and values of up to 24 bytes, most of them, are kept inline, without allocating.
    pub local: CompactString,
    /// The attribute name as written (`SOAP_ENV:actor`).
    pub qname: CompactString,
    pub value: CompactString,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI, shared between the elements of a document.
    pub ns: Option<Ns>,
    /// Local name (short names are stored inline, without allocating).
    pub local: CompactString,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// The character data directly inside this element, unescaped and concatenated (up to 24
    /// bytes, most leaves' text, kept inline without allocating). In a tree that
    /// [`parse_document`] or [`Cursor::build`] read, an element with element children leaves
    /// out the runs of blanks that stand alone between them (indentation): only a leaf's
    /// blanks are a value.
    pub text: CompactString,
    /// Whether a CDATA section (even an empty one) stands directly inside this element.
    pub cdata: bool,
    /// Byte range of the whole element (start tag to end tag) in the source.
    pub span: Range<usize>,
}

/// A namespace name. The ones the gateway reads (SOAP, the busta, the moduli, WS-Security,
/// XML Signature, XSD) are static and cost an element nothing to copy; any other is one copy
/// shared by the elements of its document.
#[derive(Debug, Clone)]
pub enum Ns {
    Noto(&'static str),
    Condiviso(Arc<str>),
}

impl std::ops::Deref for Ns {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Ns::Noto(s) => s,
            Ns::Condiviso(a) => a,
        }
    }
}

impl PartialEq for Ns {
    fn eq(&self, other: &Ns) -> bool {
        **self == **other
    }
}

impl Eq for Ns {}

impl From<&str> for Ns {
    fn from(uri: &str) -> Ns {
        match NOTI.iter().find(|n| **n == uri) {
            Some(n) => Ns::Noto(n),
            None => Ns::Condiviso(Arc::from(uri)),
        }
    }
}

/// The namespaces of [`Ns::Noto`].
const NOTI: [&str; 16] = [
    "http://schemas.xmlsoap.org/soap/envelope/",
    "http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/",
    "http://www.cnipa.it/schemas/2003/eGovIT/Exception1_0/",
    "http://www.cnipa.it/schemas/2003/eGovIT/Tracciamento1_0/",
    "http://www.cnipa.it/eGov_it/portadominio",
    "http://servizi.lavoro.gov.it/candidatura",
    "http://servizi.lavoro.gov.it/vacancy",
    "http://servizi.lavoro.gov.it/messaggio",
    "http://servizi.lavoro.gov.it/cliclavoro/types",
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    NS_WSU,
    "http://www.w3.org/2000/09/xmldsig#",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/XMLSchema",
    "http://www.w3.org/2001/XMLSchema-instance",
    NS_XML,
];

/// The document's one copy of the namespace name `uri`, among those met so far.
fn condividi(namespaces: &mut Vec<Ns>, uri: &str) -> Ns {
    if let Some(a) = namespaces.iter().find(|a| &***a == uri) {
        return a.clone();
    }
    let a = Ns::from(uri);
    namespaces.push(a.clone());
    a
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// Children with the given local name (any namespace).
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.local == local)
    }

    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.local == local)
    }

    /// An unprefixed attribute.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// An attribute in a namespace.
    pub fn attr_ns(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.as_deref() == Some(ns) && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Trimmed text content.
    pub fn value(&self) -> &str {
        self.text.trim()
    }
}

/// Checks the byte-level encoding and returns the document as text. A UTF-8 byte order mark is
/// skipped; an XML declaration naming any encoding but UTF-8 (or its ASCII subset) is refused
/// rather than misread.
pub fn decode(bytes: &[u8]) -> Result<(&str, usize), XmlError> {
    let (bytes, offset) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, 3),
        None => (bytes, 0),
    };
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        return Err(XmlError::UnsupportedEncoding("UTF-16".into()));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| XmlError::Encoding(e.valid_up_to() + offset))?;
    if let Some(at) = not_a_char(text) {
        return Err(XmlError::Syntax {
            pos: at + offset,
            msg: "a character that XML does not allow (control character, U+FFFE, U+FFFF)".into(),
        });
    }
    if let Some(enc) = declared_encoding(text) {
        let e = enc.to_ascii_lowercase();
        if e != "utf-8" && e != "utf8" && e != "us-ascii" && e != "ascii" {
            return Err(XmlError::UnsupportedEncoding(enc.to_string()));
        }
    }
    Ok((text, offset))
}

/// Where the first character outside XML 1.0's `Char` production is: quick-xml does not check
/// them, and a reference to one (`&#1;`) is already refused.
fn not_a_char(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let bad = |i: usize, c: u8| {
        (c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r')
            || (c == 0xEF
                && b.get(i + 1) == Some(&0xBF)
                && matches!(b.get(i + 2), Some(0xBE | 0xBF)))
    };
    // A branch-free test of a whole chunk (which the compiler vectorizes) rules most of the
    // message out; only chunks with a control character or an 0xEF lead byte get the exact test.
    let suspect = |c: u8| (c < 0x20) & (c != b'\t') & (c != b'\n') & (c != b'\r') | (c == 0xEF);
    let mut base = 0;
    for chunk in b.chunks(64) {
        if chunk.iter().fold(false, |acc, &c| acc | suspect(c)) {
            if let Some(j) = chunk
                .iter()
                .enumerate()
                .position(|(j, &c)| bad(base + j, c))
            {
                return Some(base + j);
            }
        }
        base += chunk.len();
    }
    None
}

/// The `encoding` pseudo-attribute of a leading XML declaration, if any.
fn declared_encoding(text: &str) -> Option<&str> {
    let decl = text.strip_prefix("<?xml")?;
    let end = decl.find("?>")?;
    let decl = &decl[..end];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let rest = &rest[1..];
    let close = rest.find(quote)?;
    Some(&rest[..close])
}

/// A namespace-aware event cursor over a document held in memory, tracking depth and byte
/// positions. Shared by the SOAP reader and the tree builder.
pub struct Cursor<'a> {
    pub reader: NsReader<&'a [u8]>,
    pub src: &'a str,
    pub depth: usize,
    limits: Limits,
    /// Namespace URIs seen so far, so that elements share them.
    namespaces: Vec<Ns>,
    /// The shared namespace URI of the last element, when written without references.
    ultimo_ns: Option<Ns>,
    /// Bytes of character data read by [`leggi_testo`] rather than by the reader (which does
    /// not count them).
    saltati: usize,
    /// The reader stands between markup (after a tag or a reference): character data may follow.
    tra_markup: bool,
    /// Character data read in one pass where it can be (off only to compare, in the tests).
    una_passata: bool,
    /// Where the last start (or empty) tag began.
    inizio: usize,
    /// The elements carrying an id attribute, when asked for ([`Cursor::raccogli_ids`]).
    ids: Option<Vec<Identificato>>,
}

/// An element carrying an id attribute (`wsu:Id`, `xml:id`, or an unqualified `Id`, `ID` or
/// `id`): what an XML Signature's `#id` reference may point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identificato {
    pub id: CompactString,
    /// Where the element's start tag begins.
    pub start: usize,
    /// The attribute is a `wsu:Id` (under whatever prefix).
    pub wsu: bool,
}

/// The WS-Security utility namespace, whose `Id` attribute is the one WS-Security references.
pub const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// The namespace the `xml` prefix is bound to without a declaration.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

fn is_id(ns: Option<&str>, local: &str) -> bool {
    match ns {
        Some(NS_WSU) => local == "Id",
        Some(NS_XML) => local == "id",
        Some(_) => false,
        None => matches!(local, "Id" | "ID" | "id"),
    }
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str, limits: Limits) -> Self {
        let mut reader = NsReader::from_str(src);
        reader.config_mut().check_end_names = true;
        reader.config_mut().expand_empty_elements = false;
        reader
            .resolver_mut()
            .set_max_namespace_bindings(limits.max_ns_bindings);
        Cursor {
            reader,
            src,
            depth: 0,
            limits,
            namespaces: Vec::new(),
            ultimo_ns: None,
            saltati: 0,
            tra_markup: false,
            una_passata: true,
            inizio: 0,
            ids: None,
        }
    }

    /// Has the cursor note every element carrying an id attribute from now on, as it reads
    /// their attributes: one pass for the envelope and the ids a signature's references need.
    pub fn raccogli_ids(&mut self) {
        self.ids.get_or_insert_with(Vec::new);
    }

    /// The elements carrying an id noted so far (empty unless [`Cursor::raccogli_ids`]).
    pub fn prendi_ids(&mut self) -> Vec<Identificato> {
        self.ids.take().unwrap_or_default()
    }

    pub fn pos(&self) -> usize {
        self.reader.buffer_position() as usize + self.saltati
    }

    /// Reads the character data that follows in one pass ([`leggi_testo`]) when the reader
    /// stands between markup and markup follows it; otherwise the reader's events carry it.
    fn testo(&mut self, modo: Modo, out: &mut impl Uscita) -> Result<(), XmlError> {
        match self.prendi_run() {
            Some((at, raw)) => leggi_testo(raw, modo, out).map_err(|e| e.da(at)),
            None => Ok(()),
        }
    }

    /// The text of `top` as [`Cursor::testo`] reads it, but for a run of blanks between its
    /// children (indentation): an element with element content has no use for it, and an
    /// indented modulo has such a run before each of its elements.
    fn testo_figli(&mut self, top: &mut Element) -> Result<(), XmlError> {
        let Some((at, raw)) = self.prendi_run() else {
            return Ok(());
        };
        if raw
            .bytes()
            .all(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
        {
            // The run ends at a `<`: a name after it opens a child.
            let resto: &[u8] = self.reader.get_mut();
            let figlio = resto
                .get(1)
                .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80);
            if figlio || !top.children.is_empty() {
                return Ok(());
            }
        }
        if top.text.is_empty() && raw.len() > MAX_INLINE {
            // A long run (the escaped modulo in a Body has a reference every few bytes) is
            // written into a String, whose pushes cost less than a CompactString's, and the
            // String then becomes the text without a copy.
            let mut testo = String::new();
            leggi_testo(raw, Modo::Valore, &mut testo).map_err(|e| e.da(at))?;
            top.text = CompactString::from(testo);
            return Ok(());
        }
        leggi_testo(raw, Modo::Valore, &mut top.text).map_err(|e| e.da(at))
    }

    /// The run of character data up to the next `<`, with where it starts, taken from the
    /// reader's input when the reader stands between markup (None otherwise: its events carry
    /// the text).
    fn prendi_run(&mut self) -> Option<(usize, &'a str)> {
        if !self.tra_markup || !self.una_passata {
            return None;
        }
        let at = self.pos();
        let raw = prendi_testo(self.src, self.reader.get_mut())?;
        self.saltati += raw.len();
        Some((at, raw))
    }

    /// The next event with its start byte offset; depth is updated. DOCTYPE is refused here so
    /// that no caller can forget it.
    pub fn next_event(&mut self) -> Result<(usize, Event<'a>), XmlError> {
        let start = self.pos();
        let ev = self.reader.read_event().map_err(|e| XmlError::Syntax {
            pos: self.reader.error_position() as usize + self.saltati,
            msg: e.to_string(),
        })?;
        self.tra_markup = !matches!(ev, Event::Text(_) | Event::CData(_));
        match &ev {
            Event::Start(s) => {
                self.inizio = start;
                check_element_name(s.name().0, start)?;
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(XmlError::TooDeep(self.limits.max_depth));
                }
            }
            Event::Empty(s) => {
                self.inizio = start;
                check_element_name(s.name().0, start)?
            }
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            Event::DocType(_) => return Err(XmlError::DocType),
            _ => {}
        }
        Ok((start, ev))
    }

    /// Namespace URI of an element name in the current scope.
    pub fn element_ns(&self, e: &BytesStart<'_>) -> Result<Option<String>, XmlError> {
        match self.reader.resolver().resolve_element(e.name()).0 {
            ResolveResult::Bound(ns) => Ok(Some(namespace_name(ns.0)?.into_owned())),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(p) => Err(XmlError::UnknownPrefix(p)),
        }
    }

    /// The attributes of a start tag, namespace-resolved and unescaped. Namespace declarations
    /// are not returned. Duplicate attributes are a well-formedness error.
    pub fn attributes(&mut self, e: &BytesStart<'_>) -> Result<Vec<Attr>, XmlError> {
        let mut out = Vec::new();
        self.leggi_attributi(e, Some(&mut out))?;
        Ok(out)
    }

    /// Checks the attributes of a start tag as [`Cursor::attributes`] does, keeping none.
    pub fn check_attributes(&mut self, e: &BytesStart<'_>) -> Result<(), XmlError> {
        self.leggi_attributi(e, None)
    }

    fn leggi_attributi(
        &mut self,
        e: &BytesStart<'_>,
        mut out: Option<&mut Vec<Attr>>,
    ) -> Result<(), XmlError> {
        for a in e.attributes() {
            let a = a.map_err(|err| XmlError::Syntax {
                pos: self.pos(),
                msg: err.to_string(),
            })?;
            let qname = a.key.0;
            check_qname(qname, self.pos())?;
            if qname == "xmlns" || qname.starts_with("xmlns:") {
                // Not returned, but checked: a malformed reference here is not well-formed.
                namespace_name(&a.value)?;
                continue;
            }
            let (res, local) = self.reader.resolver().resolve_attribute(a.key);
            let ns = match res {
                ResolveResult::Bound(ns) => Some(namespace_name(ns.0)?),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(p) => {
                    if p == "xml" {
                        Some(Cow::Borrowed(NS_XML))
                    } else {
                        return Err(XmlError::UnknownPrefix(p));
                    }
                }
            };
            // Literal whitespace is normalised before references are resolved (XML 1.0 §3.3.3),
            // so `&#10;` survives as a newline.
            let normale = normalize_attr_ws(Cow::Borrowed(&a.value));
            let value = unescape(&normale)?;
            let local = local.into_inner();
            if let Some(ids) = &mut self.ids {
                if is_id(ns.as_deref(), local) {
                    ids.push(Identificato {
                        id: CompactString::from(&*value),
                        start: self.inizio,
                        wsu: ns.as_deref() == Some(NS_WSU),
                    });
                }
            }
            if let Some(out) = out.as_deref_mut() {
                out.push(Attr {
                    ns: ns.map(|n| condividi(&mut self.namespaces, &n)),
                    local: CompactString::from(local),
                    qname: CompactString::from(qname),
                    value: CompactString::from(value),
                });
            }
        }
        Ok(())
    }

    /// Builds the tree of the element whose start (or empty) tag was just read.
    pub fn build(
        &mut self,
        start_at: usize,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<Element, XmlError> {
        let mut root = self.open(start_at, e)?;
        if empty {
            root.span = start_at..self.pos();
            return Ok(root);
        }
        let mut stack: Vec<Element> = vec![root];
        loop {
            if let Some(top) = stack.last_mut() {
                self.testo_figli(top)?;
            }
            let (at, ev) = self.next_event()?;
            match ev {
                Event::Start(s) => {
                    let el = self.open(at, &s)?;
                    stack.push(el);
                }
                Event::Empty(s) => {
                    let mut el = self.open(at, &s)?;
                    el.span = at..self.pos();
                    push_child(&mut stack, el);
                }
                Event::End(_) => {
                    let mut el = stack.pop().ok_or(XmlError::Empty)?;
                    el.span.end = self.pos();
                    if stack.is_empty() {
                        return Ok(el);
                    }
                    push_child(&mut stack, el);
                }
                Event::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t.xml10_content());
                    }
                }
                Event::CData(c) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&c.xml10_content());
                        top.cdata = true;
                    }
                }
                Event::GeneralRef(r) => {
                    let s = resolve_ref(&r)?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push(s);
                    }
                }
                Event::Eof => return Err(eof(self.pos())),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
            }
        }
    }

    /// The shared copy of a namespace URI.
    fn shared_ns(&mut self, e: &BytesStart<'_>) -> Result<Option<Ns>, XmlError> {
        let raw = match self.reader.resolver().resolve_element(e.name()).0 {
            ResolveResult::Bound(ns) => ns.0,
            ResolveResult::Unbound => return Ok(None),
            ResolveResult::Unknown(p) => return Err(XmlError::UnknownPrefix(p)),
        };
        // Most elements are in their parent's namespace: the URI met last, as written, is
        // looked for first.
        if let Some(a) = self.ultimo_ns.as_ref().filter(|a| ***a == *raw) {
            return Ok(Some(a.clone()));
        }
        let uri = namespace_name(raw)?;
        let a = condividi(&mut self.namespaces, &uri);
        // One with references differs from its shared copy: it is not kept.
        self.ultimo_ns = matches!(uri, Cow::Borrowed(_)).then(|| a.clone());
        Ok(Some(a))
    }

    fn open(&mut self, at: usize, e: &BytesStart<'_>) -> Result<Element, XmlError> {
        Ok(Element {
            ns: self.shared_ns(e)?,
            local: CompactString::from(e.local_name().into_inner()),
            attrs: self.attributes(e)?,
            children: Vec::new(),
            text: CompactString::default(),
            cdata: false,
            span: at..at,
        })
    }

    /// Skips the content of the element whose start tag was just read, checking that it is
    /// well-formed. Returns the byte offset where its end tag begins.
    pub fn skip_to_end(&mut self) -> Result<usize, XmlError> {
        let target = self.depth - 1;
        loop {
            self.testo(Modo::Verifica, &mut ())?;
            let (at, ev) = self.next_event()?;
            match ev {
                Event::End(_) if self.depth == target => return Ok(at),
                Event::Start(s) | Event::Empty(s) => {
                    // Resolve names so an undeclared prefix is caught anywhere in the message.
                    self.element_ns(&s)?;
                    self.check_attributes(&s)?;
                }
                Event::GeneralRef(r) => {
                    resolve_ref(&r)?;
                }
                Event::Eof => return Err(eof(self.pos())),
                _ => {}
            }
        }
    }
}

/// NameStartChar of XML 1.0 (fifth edition) §2.3, without ':'.
fn is_name_start(c: char) -> bool {
    matches!(c, 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// NameChar of XML 1.0 §2.3, without ':'.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

fn is_ncname(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(is_name_start) && c.all(is_name_char)
}

/// An element or attribute name must be a QName (`NCName` or `NCName:NCName`): quick-xml takes
/// whatever precedes the first blank as the name, so `<a//>` or `<a"b>` would pass otherwise.
fn check_qname(name: &str, pos: usize) -> Result<(), XmlError> {
    let ok = qname_ascii(name.as_bytes()).unwrap_or_else(|| match name.split_once(':') {
        Some((p, l)) => is_ncname(p) && is_ncname(l),
        None => is_ncname(name),
    });
    if ok {
        Ok(())
    } else {
        Err(XmlError::Syntax {
            pos,
            msg: format!("'{name}' is not a valid XML name"),
        })
    }
}

/// What each byte may be in an ASCII name: 0 a name character, [`DUE_PUNTI`], [`NON_ASCII`],
/// or [`VIETATO`].
const CLASSE: [u8; 256] = {
    let mut t = [VIETATO; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            t[c] = 0;
        } else if b == b':' {
            t[c] = DUE_PUNTI;
        } else if !b.is_ascii() {
            t[c] = NON_ASCII;
        }
        c += 1;
    }
    t
};
const DUE_PUNTI: u8 = 1;
const NON_ASCII: u8 = 2;
const VIETATO: u8 = 4;

/// Whether an ASCII name is a QName, judged with a table and no branch per byte (it runs for
/// every tag); `None` for a name with other characters, which the full productions judge.
fn qname_ascii(name: &[u8]) -> Option<bool> {
    let classi = name.iter().fold(0, |acc, &c| acc | CLASSE[c as usize]);
    if classi & NON_ASCII != 0 {
        return None;
    }
    if classi & VIETATO != 0 {
        return Some(false);
    }
    let inizia = |n: &[u8]| {
        n.first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    };
    if classi & DUE_PUNTI == 0 {
        return Some(inizia(name));
    }
    let Some(i) = memchr::memchr(b':', name) else {
        return Some(false);
    };
    let (prefisso, locale) = (&name[..i], &name[i + 1..]);
    Some(inizia(prefisso) && inizia(locale) && !locale.contains(&b':'))
}

/// An element name is a QName whose prefix is not `xmlns` (Namespaces in XML 1.0 §3).
fn check_element_name(name: &str, pos: usize) -> Result<(), XmlError> {
    check_qname(name, pos)?;
    if name.as_bytes().get(..6) == Some(b"xmlns:".as_slice()) {
        return Err(XmlError::Syntax {
            pos,
            msg: format!("'{name}': the prefix xmlns is reserved for declarations"),
        });
    }
    Ok(())
}

/// The error for a document that ends inside an element.
pub fn eof(pos: usize) -> XmlError {
    XmlError::Syntax {
        pos,
        msg: "unexpected end of document".into(),
    }
}

fn push_child(stack: &mut [Element], el: Element) {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(el);
    }
}

/// Resolves a general entity reference: the five predefined ones and character references.
/// With DOCTYPE refused, any other entity is undefined.
pub fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Result<char, XmlError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c),
            _ => Err(XmlError::Syntax {
                pos: 0,
                msg: format!("invalid character reference &{};", &**r),
            }),
        };
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(XmlError::UndefinedEntity(other.to_string())),
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Unescapes entity and character references in raw markup text.
pub fn unescape(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or_else(|| XmlError::Syntax {
            pos: 0,
            msg: "unterminated entity reference".into(),
        })?;
        let name = &after[..end];
        let r = quick_xml::events::BytesRef::new(name);
        out.push(resolve_ref(&r)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// The namespace name of an `xmlns` / `xmlns:p` declaration as written (what quick-xml binds):
/// normalised and with its references resolved, as every other XML stack (and our C14N) reads
/// it, so that `http&#58;//…` is the same namespace as `http://…`. A malformed reference is
/// an error.
pub fn namespace_name(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    // A test of bytes, not of chars: it runs for every element.
    if !raw
        .bytes()
        .any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(Cow::Borrowed(raw));
    }
    Ok(Cow::Owned(
        unescape(&normalize_attr_ws(Cow::Borrowed(raw)))?.into_owned(),
    ))
}

/// Attribute-value normalisation of XML 1.0 §3.3.3 for CDATA attributes.
fn normalize_attr_ws(v: Cow<'_, str>) -> Cow<'_, str> {
    if v.contains(['\t', '\n', '\r']) {
        Cow::Owned(v.replace("\r\n", " ").replace(['\t', '\n', '\r'], " "))
    } else {
        v
    }
}

/// What [`leggi_testo`] makes of character data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modo {
    /// Only checked (references well-formed and defined).
    Verifica,
    /// Its value: references resolved, line ends normalized.
    Valore,
    /// Its exclusive-C14N form: the value escaped again the canonical way.
    Canonico,
}

/// Where [`leggi_testo`] writes: a String, or nowhere ([`Modo::Verifica`]).
pub trait Uscita {
    fn push_str(&mut self, s: &str);
    /// Room for `n` more bytes, made once before a run of text is written in pieces.
    fn riserva(&mut self, _n: usize) {}
    /// One ASCII character (a predefined entity's).
    fn push_ascii(&mut self, c: u8) {
        self.push_str(char::from(c).encode_utf8(&mut [0; 4]))
    }
}

impl Uscita for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s)
    }
    fn push_ascii(&mut self, c: u8) {
        // Not a copy of one byte through memcpy.
        self.push(char::from(c))
    }
    fn riserva(&mut self, n: usize) {
        self.reserve(n)
    }
}

impl Uscita for CompactString {
    fn push_str(&mut self, s: &str) {
        CompactString::push_str(self, s)
    }
    fn riserva(&mut self, n: usize) {
        // Most text fits the inline buffer: no call into the reserve.
        if self.capacity() - self.len() < n {
            self.reserve(n)
        }
    }
}

impl Uscita for () {
    fn push_str(&mut self, _: &str) {}
}

/// Takes the character data that stands next in a reader's unread input `resto` (its
/// `get_mut()`), up to the next `<`, and moves the reader past it. None when markup follows at
/// once or the input ends first (the reader's to handle). The run is found in the input itself,
/// `resto` being the tail of `src`, not from the position the reader reports: after a byte
/// order mark that counts from past it. The reader does not count what is taken: its callers
/// add it to the positions it reports.
pub fn prendi_testo<'a>(src: &'a str, resto: &mut &'a [u8]) -> Option<&'a str> {
    let n = memchr::memchr(b'<', resto).filter(|&n| n > 0)?;
    let dove = src.len() - resto.len();
    *resto = &resto[n..];
    src.get(dove..dove + n)
}

impl XmlError {
    /// The error of a piece of text that starts at byte `at`, placed in the whole.
    pub fn da(self, at: usize) -> XmlError {
        match self {
            XmlError::Syntax { pos, msg } => XmlError::Syntax { pos: at + pos, msg },
            e => e,
        }
    }
}

/// Reads character data as it stands in the source (`raw` holds no `<`) in one pass, in the
/// form `modo` asks. The escaped modulo a Body carries has a reference every few bytes: read as
/// quick-xml's events it costs an event per reference, here a scan; in [`Modo::Canonico`]
/// `&lt;`, `&gt;` and `&amp;` come out as they went in, so such a run is copied whole.
pub fn leggi_testo(raw: &str, modo: Modo, out: &mut impl Uscita) -> Result<(), XmlError> {
    let b = raw.as_bytes();
    // What is read is at most as long as what is written, but for the canonical form's `&gt;`:
    // a large escaped modulo grows once, not by a copy at each of its pieces' growth.
    out.riserva(raw.len());
    // The run copied as it stands so far starts at `from`; the scan goes on from `i`.
    let mut from = 0;
    let mut i = 0;
    let mut buf = [0u8; 4];
    while let Some(at) = prossimo_speciale(b, i) {
        let dopo = &b[at + 1..];
        if b[at] == b'&' && modo != Modo::Valore {
            if dopo.get(..3) == Some(b"lt;") || dopo.get(..3) == Some(b"gt;") {
                i = at + 4;
                continue;
            }
            if dopo.get(..4) == Some(b"amp;") {
                i = at + 5;
                continue;
            }
        }
        if b[at] == b'>' && modo != Modo::Canonico {
            i = at + 1;
            continue;
        }
        out.push_str(&raw[from..at]);
        // The predefined entities without a search for the ';' nor a general resolution: a
        // modulo escaped in a Body has four of them per element.
        if b[at] == b'&' && modo == Modo::Valore {
            if let Some((c, n)) = predefinita(dopo) {
                out.push_ascii(c);
                i = at + 1 + n;
                from = i;
                continue;
            }
        }
        match b[at] {
            b'>' => {
                out.push_str("&gt;");
                i = at + 1;
            }
            b'\r' => {
                // A literal CR is a line end (XML 1.0 §2.11), CRLF one line end.
                out.push_str("\n");
                i = at + 1 + usize::from(dopo.first() == Some(&b'\n'));
            }
            _ => {
                let end = memchr::memchr(b';', dopo).ok_or_else(|| XmlError::Syntax {
                    pos: at,
                    msg: "unterminated entity reference".into(),
                })?;
                let c = resolve_ref(&quick_xml::events::BytesRef::new(
                    &raw[at + 1..at + 1 + end],
                ))?;
                out.push_str(match (modo, c) {
                    (Modo::Canonico, '&') => "&amp;",
                    (Modo::Canonico, '<') => "&lt;",
                    (Modo::Canonico, '>') => "&gt;",
                    (Modo::Canonico, '\r') => "&#xD;",
                    _ => c.encode_utf8(&mut buf),
                });
                i = at + 1 + end + 1;
            }
        }
        from = i;
    }
    out.push_str(&raw[from..]);
    Ok(())
}

/// Where the next `&`, `>` or CR stands in `b` from `i`. The first 32 bytes are looked at
/// eight at a time ([`swar`]), the rest by memchr: in an escaped modulo they stand every few
/// bytes.
fn prossimo_speciale(b: &[u8], mut i: usize) -> Option<usize> {
    let fine = i.saturating_add(32).min(b.len());
    while i + 8 <= fine {
        let w = swar::parola(b, i)?;
        let m = swar::uguali(w, b'&') | swar::uguali(w, b'>') | swar::uguali(w, b'\r');
        if m != 0 {
            return Some(i + swar::primo(m));
        }
        i += 8;
    }
    memchr::memchr3(b'&', b'>', b'\r', b.get(i..)?).map(|k| i + k)
}

/// What [`escape_text`] writes for a byte of element content it escapes; None for one it
/// leaves as it is.
/// The character of a predefined entity at the start of `dopo` (what follows a `&`), and the
/// bytes its name and `;` take.
fn predefinita(dopo: &[u8]) -> Option<(u8, usize)> {
    match dopo {
        [b'l', b't', b';', ..] => Some((b'<', 3)),
        [b'g', b't', b';', ..] => Some((b'>', 3)),
        [b'a', b'm', b'p', b';', ..] => Some((b'&', 4)),
        [b'q', b'u', b'o', b't', b';', ..] => Some((b'"', 5)),
        [b'a', b'p', b'o', b's', b';', ..] => Some((b'\'', 5)),
        _ => None,
    }
}

pub fn escape_text_byte(b: u8) -> Option<&'static str> {
    match b {
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'&' => Some("&amp;"),
        b'\r' => Some("&#13;"),
        _ => None,
    }
}

/// Escapes text for element content.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '\r']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut da = 0;
    // The escaped bytes are ASCII: the runs between them are whole UTF-8.
    for (i, b) in s.bytes().enumerate() {
        if let Some(e) = escape_text_byte(b) {
            out.push_str(&s[da..i]);
            out.push_str(e);
            da = i + 1;
        }
    }
    out.push_str(&s[da..]);
    Cow::Owned(out)
}

/// Escapes text for a double-quoted attribute value.
pub fn escape_attr(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\t', '\n', '\r']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Parses a whole document into a tree (for small documents: moduli, faults, test fixtures).
pub fn parse_document(bytes: &[u8], limits: Limits) -> Result<Element, XmlError> {
    let (src, offset) = decode(bytes)?;
    let mut cur = Cursor::new(src, limits);
    let mut root = None;
    loop {
        let (at, ev) = cur.next_event()?;
        match ev {
            Event::Start(s) if root.is_none() => root = Some(cur.build(at, &s, false)?),
            Event::Empty(s) if root.is_none() => root = Some(cur.build(at, &s, true)?),
            Event::Start(_) | Event::Empty(_) => {
                return Err(XmlError::Syntax {
                    pos: at + offset,
                    msg: "more than one root element".into(),
                })
            }
            Event::Text(t) if !t.trim().is_empty() => {
                return Err(XmlError::Syntax {
                    pos: at + offset,
                    msg: "text outside the root element".into(),
                })
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = root.ok_or(XmlError::Empty)?;
    if offset != 0 {
        shift(&mut root, offset);
    }
    Ok(root)
}

fn shift(el: &mut Element, by: usize) {
    el.span = el.span.start + by..el.span.end + by;
    for c in &mut el.children {
        shift(c, by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_every_predefined_entity_reads_as_the_general_resolution_reads_it() {
        let src = "<a>&lt;b&gt;&amp;&quot;&apos;&#60;&#x3E;x&amp;lt;&gt;&gt;y</a>";
        let root = parse_document(src.as_bytes(), Limits::default()).unwrap();
        assert_eq!(root.text, "<b>&\"'<>x&lt;>>y");
        for cattivo in ["<a>&lt</a>", "<a>&ltx;</a>", "<a>&amp</a>", "<a>&nbsp;</a>"] {
            assert!(
                parse_document(cattivo.as_bytes(), Limits::default()).is_err(),
                "{cattivo}"
            );
        }
    }

    #[test]
    fn ascii_names_are_judged_as_the_full_productions_judge_them() {
        let pieno = |name: &str| match name.split_once(':') {
            Some((p, l)) => is_ncname(p) && is_ncname(l),
            None => is_ncname(name),
        };
        let nomi = [
            "a",
            "cl:Candidatura",
            "_x",
            "a-b.c_9",
            "x:_y",
            "",
            ":",
            "a:",
            ":a",
            "a:b:c",
            "9a",
            "a:9b",
            "-a",
            "a:-b",
            ".a",
            "a b",
            "a\"b",
            "a/",
            "a>",
            "xmlns:x",
            "A.B-C",
            "a::b",
            "à",
            "a:è",
            "è:a",
            "a\u{300}",
            "a:b\u{B7}",
        ];
        for n in nomi {
            match qname_ascii(n.as_bytes()) {
                Some(ok) => assert_eq!(ok, pieno(n), "{n:?}"),
                None => assert!(!n.is_ascii(), "{n:?} is ASCII"),
            }
            assert_eq!(check_qname(n, 0).is_ok(), pieno(n), "{n:?}");
        }
        // Every one- and two-byte ASCII name.
        for a in 0u8..128 {
            for b in 0u8..128 {
                for n in [vec![a], vec![a, b], vec![a, b':', b], vec![b'p', a, b]] {
                    let n = String::from_utf8(n).unwrap();
                    assert_eq!(qname_ascii(n.as_bytes()), Some(pieno(&n)), "{n:?}");
                }
            }
        }
    }

    #[test]
    fn builds_tree_with_namespaces_and_spans() {
        let src = r#"<a:x xmlns:a="urn:a" k="v&amp;w"><a:y>t&lt;1<![CDATA[<z>]]></a:y><b xmlns="urn:b"/></a:x>"#;
        let root = parse_document(src.as_bytes(), Limits::default()).unwrap();
        assert!(root.is("urn:a", "x"));
        assert_eq!(root.attr("k"), Some("v&w"));
        assert_eq!(root.children[0].text, "t<1<z>");
        assert!(root.children[1].is("urn:b", "b"));
        assert_eq!(&src[root.children[1].span.clone()], r#"<b xmlns="urn:b"/>"#);
        assert_eq!(&src[root.span.clone()], src);
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let xxe = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
        assert_eq!(
            parse_document(xxe.as_bytes(), Limits::default()),
            Err(XmlError::DocType)
        );
        let undef = "<x>&e;</x>";
        assert_eq!(
            parse_document(undef.as_bytes(), Limits::default()),
            Err(XmlError::UndefinedEntity("e".into()))
        );
    }

    #[test]
    fn refuses_deep_nesting_and_bad_encoding() {
        let deep = "<a>".repeat(1000) + &"</a>".repeat(1000);
        assert_eq!(
            parse_document(deep.as_bytes(), Limits::default()),
            Err(XmlError::TooDeep(256))
        );
        assert!(matches!(
            parse_document(b"<a>\xff</a>", Limits::default()),
            Err(XmlError::Encoding(3))
        ));
        // Characters XML does not allow, raw as by reference.
        for bad in [
            "<a>\u{1}</a>",
            "<a b=\"\u{1b}\"/>",
            "<a>\u{FFFE}</a>",
            "<a><!--\u{FFFF}--></a>",
        ] {
            assert!(
                matches!(
                    parse_document(bad.as_bytes(), Limits::default()),
                    Err(XmlError::Syntax { pos: 3.., .. })
                ),
                "{bad:?}"
            );
        }
        assert!(parse_document(
            "<a>\t\r\n\u{FFFD}\u{10000}</a>".as_bytes(),
            Limits::default()
        )
        .is_ok());
        let latin = r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#;
        assert!(matches!(
            parse_document(latin.as_bytes(), Limits::default()),
            Err(XmlError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn refuses_duplicate_attributes_and_mismatched_tags() {
        assert!(parse_document(br#"<a t="1" t="2"/>"#, Limits::default()).is_err());
        assert!(parse_document(b"<a><b></a>", Limits::default()).is_err());
        assert!(parse_document(b"<p:a/>", Limits::default()).is_err());
    }

    #[test]
    fn namespace_declarations_are_read_as_other_xml_stacks_read_them() {
        // Found by fuzzing (fuzz/regressions/c14n): quick-xml binds the raw value, so a
        // malformed reference passed, and `&#58;` made another namespace than C14N's.
        assert!(parse_document(br#"<a xmlns:p="c&a1_0/"/>"#, Limits::default()).is_err());
        assert!(parse_document(br#"<a xmlns="c&a1_0/"/>"#, Limits::default()).is_err());
        let escaped = "<p:a xmlns:p=\"urn&#58;x&#10;y\"><p:b p:k=\"1\"/></p:a>";
        let root = parse_document(escaped.as_bytes(), Limits::default()).unwrap();
        assert!(root.is("urn:x\ny", "a"));
        assert_eq!(root.children[0].attr_ns("urn:x\ny", "k"), Some("1"));
        let spaced = "<p:a xmlns:p=\"urn:x\ny\"/>";
        let root = parse_document(spaced.as_bytes(), Limits::default()).unwrap();
        assert!(root.is("urn:x y", "a"));
    }

    #[test]
    fn the_next_special_byte_is_the_one_memchr_finds() {
        // Runs of every length around the eight-byte steps and the 32 bytes scanned before
        // memchr, with `&`, `>` and CR (and bytes one off them) anywhere.
        let mut x: u32 = 7;
        let mut casuale = move || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as usize
        };
        let alfabeto = b"ab&>\r%=?\x0c\x0e\xc3";
        for _ in 0..3_000 {
            let n = casuale() % 90;
            let densita = 1 + casuale() % 40;
            let b: Vec<u8> = (0..n)
                .map(|_| {
                    if casuale() % densita == 0 {
                        alfabeto[casuale() % alfabeto.len()]
                    } else {
                        b'x'
                    }
                })
                .collect();
            for i in 0..=n {
                let atteso = memchr::memchr3(b'&', b'>', b'\r', &b[i..]).map(|k| i + k);
                assert_eq!(prossimo_speciale(&b, i), atteso, "{b:?} from {i}");
            }
        }
    }

    #[test]
    fn blanks_between_children_are_left_out_and_a_leafs_are_kept() {
        let doc = "<r xmlns=\"urn:r\">\n  <a>  </a>\r\n\t<b> x <!-- c --> y </b>\n  <c>  <!-- c -->  </c>\n  <m> m <i/> n \n</m>\n</r>";
        let root = parse_document(doc.as_bytes(), Limits::default()).unwrap();
        assert_eq!(root.text, "");
        let testi: Vec<&str> = root.children.iter().map(|c| c.text.as_str()).collect();
        // A leaf's blanks are its value, even around a comment; mixed content keeps its text
        // whole, and only the blanks that stand alone between children go.
        assert_eq!(testi, ["  ", " x  y ", "    ", " m  n \n"]);
        assert_eq!(root.children[3].children.len(), 1);
        // The namespaces the gateway knows are static, others shared: both read the same.
        assert!(matches!(root.children[0].ns, Some(Ns::Condiviso(_))));
        let busta = parse_document(
            b"<e:E xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:B/></e:E>",
            Limits::default(),
        )
        .unwrap();
        assert!(matches!(busta.ns, Some(Ns::Noto(_))));
        assert!(busta.children[0].is("http://schemas.xmlsoap.org/soap/envelope/", "B"));
        assert_eq!(
            busta.ns,
            Some(Ns::from("http://schemas.xmlsoap.org/soap/envelope/"))
        );
    }

    #[test]
    fn names_must_be_qnames() {
        // Found by fuzzing (fuzz/regressions/c14n): `<a//>` was an element named "a/".
        for bad in [
            "<a//>",
            "<a/ ></a/ >",
            "<a\"b/>",
            "<a x/y=\"1\"/>",
            "<a:b:c xmlns:a=\"urn:a\"/>",
            "<a xmlns:=\"urn:a\"/>",
            "<1a/>",
            "<a><b=/></a>",
            "<a><xmlns:b/></a>",
        ] {
            assert!(
                parse_document(bad.as_bytes(), Limits::default()).is_err(),
                "{bad}"
            );
        }
        for good in [
            "<a/>",
            "<a-b.c_d·é/>",
            "<x:a xmlns:x=\"urn:x\" x:b=\"1\" xml:lang=\"it\"/>",
        ] {
            assert!(
                parse_document(good.as_bytes(), Limits::default()).is_ok(),
                "{good}"
            );
        }
    }

    /// Text after a tag is read in one pass (`leggi_testo`); the tree and the errors are those
    /// quick-xml's events give.
    #[test]
    fn text_read_in_one_pass_is_what_the_events_give() {
        let albero = |doc: &str, una_passata: bool| {
            let mut cur = Cursor::new(doc, Limits::default());
            cur.una_passata = una_passata;
            loop {
                match cur.next_event()? {
                    (at, Event::Start(s)) => return cur.build(at, &s, false),
                    (_, Event::Eof) => return Err(XmlError::Empty),
                    _ => {}
                }
            }
        };
        for t in [
            "&lt;Candidatura xmlns=&quot;urn:x&quot;&gt;Rossi &amp; figli&lt;/Candidatura&gt;",
            "a > b &apos;q&apos; &#60;&#x3E;&#38; &#13;x\r\ny\rz\n\r\r\n été &#x1F600;",
        ] {
            // Also after a byte order mark the reader skips (its count starts past it).
            for bom in ["", "\u{FEFF}"] {
                let doc = format!("{bom}<r>{t}<a>{t}</a>{t}<b/>{t}</r>");
                let uno = albero(&doc, true).unwrap();
                let eventi = albero(&doc, false).unwrap();
                assert_eq!(uno.text, eventi.text);
                assert_eq!(uno.children[0].text, eventi.children[0].text);
                assert_eq!(uno.children[0].span, eventi.children[0].span);
                assert_eq!(uno.children[1].span, eventi.children[1].span);
                assert!(!uno.text.contains("&lt;"), "{}", uno.text);
            }
        }
        for bad in ["x &bogus; y", "x &#0; y", "x &lt y"] {
            let doc = format!("<r><a>{bad}</a></r>");
            assert!(albero(&doc, true).is_err(), "{bad}");
            assert!(
                parse_document(doc.as_bytes(), Limits::default()).is_err(),
                "{bad}"
            );
        }
        // An error in a run read in one pass is placed where it is.
        let doc = "<r>abc &bogus; x</r>";
        let mut cur = Cursor::new(doc, Limits::default());
        cur.next_event().unwrap();
        match cur.skip_to_end() {
            Err(XmlError::UndefinedEntity(e)) => assert_eq!(e, "bogus"),
            other => panic!("{other:?}"),
        }
        let doc = "<r>abc &lt x</r>";
        let mut cur = Cursor::new(doc, Limits::default());
        cur.next_event().unwrap();
        assert!(matches!(
            cur.skip_to_end(),
            Err(XmlError::Syntax { pos: 7, .. })
        ));
    }

    #[test]
    fn escapes_round_trip() {
        let s = "a<b>&\"c\"\r\n";
        let doc = format!("<x y=\"{}\">{}</x>", escape_attr(s), escape_text(s));
        let root = parse_document(doc.as_bytes(), Limits::default()).unwrap();
        assert_eq!(root.attr("y"), Some(s));
        assert_eq!(root.text, s);
    }
}
