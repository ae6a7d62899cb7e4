//! A small interpreter of the XML Schema subset the ClicLavoro moduli use: one root element,
//! complex types made of one `xs:sequence`, simple types restricting `xs:string` with pattern,
//! enumeration and length facets, and the builtins `xs:string`, `xs:date`, `xs:dateTime`.
//! It reads the project's own XSD files (and, for comparison, the official ones, which use
//! global elements and `ref`), and validates a parsed document against them, reporting every
//! problem with its path. What it accepts must be exactly what `xmllint --schema` accepts; a
//! differential test holds it to that.

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use crate::xml::Element;

const XS: &str = "http://www.w3.org/2001/XMLSchema";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("schema: {0}")]
    Xml(#[from] crate::xml::XmlError),
    #[error("schema: {0}")]
    Unsupported(String),
    #[error("schema: type '{0}' is not defined")]
    UnknownType(String),
    #[error("schema: pattern '{0}': {1}")]
    Pattern(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    String,
    Date,
    DateTime,
}

/// A simple type: a builtin, possibly restricted by facets.
#[derive(Debug)]
pub struct SimpleType {
    pub name: Option<String>,
    pub base: Builtin,
    /// Alternatives (several `xs:pattern` in one restriction are OR-ed).
    pub patterns: Vec<(String, Regex)>,
    pub enumeration: Vec<String>,
    pub length: Option<usize>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
}

#[derive(Debug)]
pub enum Content {
    Sequence(Vec<Particle>),
    Simple(Arc<SimpleType>),
}

#[derive(Debug)]
pub struct Particle {
    pub name: String,
    pub min: u32,
    /// `None` = unbounded.
    pub max: Option<u32>,
    pub content: Arc<Content>,
}

#[derive(Debug)]
pub struct Schema {
    pub namespace: String,
    pub root: Particle,
}

/// What went wrong, in a form the modulo validator turns into its own codes and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difetto {
    Radice {
        atteso: String,
    },
    Mancante {
        elemento: String,
    },
    Inatteso {
        elemento: String,
    },
    FuoriOrdine {
        elemento: String,
    },
    Troppi {
        elemento: String,
        max: u32,
    },
    Testo,
    Figli,
    Attributo {
        nome: String,
    },
    Pattern {
        valore: String,
        patterns: Vec<String>,
    },
    Enumerazione {
        valore: String,
        ammessi: Vec<String>,
    },
    Lunghezza {
        valore: String,
        len: usize,
        min: Option<usize>,
        max: Option<usize>,
    },
    Data {
        valore: String,
    },
    DataOra {
        valore: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violazione {
    /// `Candidatura/Lavoratore/DatiAnagrafici/codicefiscale`, with `[n]` on repeated elements.
    pub path: String,
    pub difetto: Difetto,
}

// ---------------------------------------------------------------------------------------------
// Loading

struct Loader<'a> {
    root: &'a Element,
    complex: HashMap<&'a str, &'a Element>,
    simple: HashMap<&'a str, &'a Element>,
    elements: HashMap<&'a str, &'a Element>,
    simple_done: HashMap<String, Arc<SimpleType>>,
    complex_done: HashMap<String, Arc<Content>>,
    depth: usize,
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

impl Schema {
    /// Reads a schema document in the supported subset. The root is the global element named
    /// `root`, or the only global element no other refers to.
    pub fn load(xsd: &str, root: Option<&str>) -> Result<Schema, SchemaError> {
        let wanted = root;
        let root = crate::xml::parse_document(xsd.as_bytes(), crate::xml::Limits::default())?;
        if !root.is(XS, "schema") {
            return Err(SchemaError::Unsupported("the root is not xs:schema".into()));
        }
        let namespace = root
            .attr("targetNamespace")
            .ok_or_else(|| SchemaError::Unsupported("no targetNamespace".into()))?
            .to_string();
        if root.attr("elementFormDefault") != Some("qualified") {
            return Err(SchemaError::Unsupported(
                "elementFormDefault must be qualified".into(),
            ));
        }
        let mut l = Loader {
            root: &root,
            complex: HashMap::new(),
            simple: HashMap::new(),
            elements: HashMap::new(),
            simple_done: HashMap::new(),
            complex_done: HashMap::new(),
            depth: 0,
        };
        for c in &root.children {
            if c.ns.as_deref() != Some(XS) {
                continue;
            }
            let name = c.attr("name").unwrap_or("");
            match c.local.as_str() {
                "complexType" => {
                    l.complex.insert(name, c);
                }
                "simpleType" => {
                    l.simple.insert(name, c);
                }
                "element" => {
                    l.elements.insert(name, c);
                }
                "annotation" => {}
                other => {
                    return Err(SchemaError::Unsupported(format!(
                        "xs:{other} at the top level"
                    )))
                }
            }
        }
        // The root is the global element that no other global element refers to.
        let mut referenced = std::collections::HashSet::new();
        collect_refs(l.root, &mut referenced);
        let roots: Vec<&str> = l
            .elements
            .keys()
            .copied()
            .filter(|n| !referenced.contains(*n))
            .collect();
        let chosen: Vec<&str> = match wanted {
            Some(w) => l.elements.keys().copied().filter(|n| *n == w).collect(),
            None => roots,
        };
        let [root_name] = chosen.as_slice() else {
            return Err(SchemaError::Unsupported(format!(
                "expected one root element, found {chosen:?}"
            )));
        };
        let el = l.elements[root_name];
        let root = l.particle(el)?;
        Ok(Schema { namespace, root })
    }
}

fn collect_refs<'a>(e: &'a Element, out: &mut std::collections::HashSet<&'a str>) {
    if e.is(XS, "element") {
        if let Some(r) = e.attr("ref") {
            out.insert(local(r));
        }
    }
    for c in &e.children {
        collect_refs(c, out);
    }
}

impl<'a> Loader<'a> {
    fn particle(&mut self, el: &'a Element) -> Result<Particle, SchemaError> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(SchemaError::Unsupported(
                "types nested too deep (recursive?)".into(),
            ));
        }
        let occurs = |name: &str, default: u32| -> Result<Option<u32>, SchemaError> {
            match el.attr(name) {
                None => Ok(Some(default)),
                Some("unbounded") => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| SchemaError::Unsupported(format!("{name}=\"{v}\""))),
            }
        };
        let min = occurs("minOccurs", 1)?.unwrap_or(0);
        let max = occurs("maxOccurs", 1)?;
        // A reference takes the referenced global element's name and type, and our occurrence.
        let decl = match el.attr("ref") {
            Some(r) => *self
                .elements
                .get(local(r))
                .ok_or_else(|| SchemaError::UnknownType(r.to_string()))?,
            None => el,
        };
        let name = decl
            .attr("name")
            .ok_or_else(|| SchemaError::Unsupported("an element without name".into()))?
            .to_string();
        let content = self.content_of(decl)?;
        self.depth -= 1;
        Ok(Particle {
            name,
            min,
            max,
            content,
        })
    }

    fn content_of(&mut self, decl: &'a Element) -> Result<Arc<Content>, SchemaError> {
        if let Some(t) = decl.attr("type") {
            return self.named(t);
        }
        for c in &decl.children {
            if c.is(XS, "complexType") {
                return Ok(Arc::new(self.complex_type(c)?));
            }
            if c.is(XS, "simpleType") {
                return Ok(Arc::new(Content::Simple(Arc::new(
                    self.simple_type(c, None)?,
                ))));
            }
        }
        // An element with no type is xs:anyType: not used by the moduli.
        Err(SchemaError::Unsupported(format!(
            "element {} has no type",
            decl.attr("name").unwrap_or("?")
        )))
    }

    fn named(&mut self, qname: &str) -> Result<Arc<Content>, SchemaError> {
        let name = local(qname);
        if qname.starts_with("xs:") || qname.starts_with("xsd:") {
            return Ok(Arc::new(Content::Simple(Arc::new(builtin_type(name)?))));
        }
        if let Some(c) = self.complex_done.get(name) {
            return Ok(c.clone());
        }
        if let Some(s) = self.simple_done.get(name) {
            return Ok(Arc::new(Content::Simple(s.clone())));
        }
        if let Some(ct) = self.complex.get(name).copied() {
            let c = Arc::new(self.complex_type(ct)?);
            self.complex_done.insert(name.to_string(), c.clone());
            return Ok(c);
        }
        if let Some(st) = self.simple.get(name).copied() {
            let s = Arc::new(self.simple_type(st, Some(name))?);
            self.simple_done.insert(name.to_string(), s.clone());
            return Ok(Arc::new(Content::Simple(s)));
        }
        Err(SchemaError::UnknownType(qname.to_string()))
    }

    fn complex_type(&mut self, ct: &'a Element) -> Result<Content, SchemaError> {
        if ct.attr("mixed") == Some("true") {
            return Err(SchemaError::Unsupported("mixed content".into()));
        }
        let mut seq = None;
        for c in &ct.children {
            match c.local.as_str() {
                "sequence" => seq = Some(c),
                "annotation" => {}
                other => {
                    return Err(SchemaError::Unsupported(format!(
                        "xs:{other} in a complexType"
                    )))
                }
            }
        }
        let seq = seq
            .ok_or_else(|| SchemaError::Unsupported("a complexType without xs:sequence".into()))?;
        if seq.attr("minOccurs").is_some() || seq.attr("maxOccurs").is_some() {
            // Only the trivial optional sequence of a single optional element is met in practice.
            let all_optional = seq
                .children
                .iter()
                .all(|e| e.attr("minOccurs") == Some("0"));
            if !(seq.attr("minOccurs") == Some("0")
                && seq.attr("maxOccurs").is_none()
                && all_optional)
            {
                return Err(SchemaError::Unsupported(
                    "occurrence constraints on xs:sequence".into(),
                ));
            }
        }
        let mut particles = Vec::new();
        for e in &seq.children {
            match e.local.as_str() {
                "element" => particles.push(self.particle(e)?),
                "annotation" => {}
                other => {
                    return Err(SchemaError::Unsupported(format!(
                        "xs:{other} in a sequence"
                    )))
                }
            }
        }
        Ok(Content::Sequence(particles))
    }

    fn simple_type(
        &mut self,
        st: &'a Element,
        name: Option<&str>,
    ) -> Result<SimpleType, SchemaError> {
        let r = st
            .children
            .iter()
            .find(|c| c.is(XS, "restriction"))
            .ok_or_else(|| {
                SchemaError::Unsupported("a simpleType that is not a restriction".into())
            })?;
        let base = r.attr("base").unwrap_or("");
        let mut t = builtin_type(local(base))?;
        if !(base.starts_with("xs:") || base.starts_with("xsd:")) || t.base != Builtin::String {
            return Err(SchemaError::Unsupported(format!("restriction of {base}")));
        }
        t.name = name.map(str::to_string);
        for f in &r.children {
            let v = f.attr("value").unwrap_or("");
            let n = || {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| SchemaError::Unsupported(format!("xs:{} value=\"{v}\"", f.local)))
            };
            match f.local.as_str() {
                "pattern" => {
                    let re = Regex::new(&translate_pattern(v))
                        .map_err(|e| SchemaError::Pattern(v.to_string(), e.to_string()))?;
                    t.patterns.push((v.to_string(), re));
                }
                "enumeration" => t.enumeration.push(v.to_string()),
                "length" => t.length = Some(n()?),
                "minLength" => t.min_length = Some(n()?),
                "maxLength" => t.max_length = Some(n()?),
                "annotation" => {}
                other => return Err(SchemaError::Unsupported(format!("facet xs:{other}"))),
            }
        }
        Ok(t)
    }
}

fn builtin_type(name: &str) -> Result<SimpleType, SchemaError> {
    let base = match name {
        "string" => Builtin::String,
        "date" => Builtin::Date,
        "dateTime" => Builtin::DateTime,
        other => return Err(SchemaError::Unsupported(format!("builtin type xs:{other}"))),
    };
    Ok(SimpleType {
        name: None,
        base,
        patterns: Vec::new(),
        enumeration: Vec::new(),
        length: None,
        min_length: None,
        max_length: None,
    })
}

/// XSD regular expressions are implicitly anchored, know no `^`/`$` anchors, and their `.`
/// excludes CR and LF; the rest of the syntax these schemas use is shared with `regex`.
fn translate_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    out.push_str("^(?:");
    let mut in_class = 0usize;
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' => {
                in_class += 1;
                out.push('[');
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(']');
            }
            '^' | '$' if in_class == 0 => {
                out.push('\\');
                out.push(c);
            }
            '.' if in_class == 0 => out.push_str("[^\\n\\r]"),
            c => out.push(c),
        }
    }
    out.push_str(")$");
    out
}

// ---------------------------------------------------------------------------------------------
// Validation

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl Schema {
    /// Validates a document's root element; returns every violation found (empty: valid).
    pub fn validate(&self, root: &Element) -> Vec<Violazione> {
        let mut out = Vec::new();
        if root.local != self.root.name || root.ns.as_deref() != Some(self.namespace.as_str()) {
            out.push(Violazione {
                path: root.local.to_string(),
                difetto: Difetto::Radice {
                    atteso: format!("{{{}}}{}", self.namespace, self.root.name),
                },
            });
            return out;
        }
        let mut path = vec![(self.root.name.as_str(), None)];
        self.element(root, &self.root.content, &mut path, &mut out);
        out
    }

    fn element<'s>(
        &'s self,
        el: &Element,
        content: &'s Content,
        path: &mut Percorso<'s>,
        out: &mut Vec<Violazione>,
    ) {
        for a in &el.attrs {
            // Only the schema-location hints of XMLSchema-instance are allowed on undeclared attributes.
            let ok = a.ns.as_deref() == Some(XSI)
                && (a.local == "schemaLocation" || a.local == "noNamespaceSchemaLocation");
            if !ok {
                out.push(Violazione {
                    path: render(path, None),
                    difetto: Difetto::Attributo {
                        nome: a.qname.to_string(),
                    },
                });
            }
        }
        match content {
            Content::Simple(t) => {
                if !el.children.is_empty() {
                    out.push(Violazione {
                        path: render(path, None),
                        difetto: Difetto::Figli,
                    });
                    return;
                }
                if let Some(d) = check_value(t, &el.text) {
                    out.push(Violazione {
                        path: render(path, None),
                        difetto: d,
                    });
                }
            }
            Content::Sequence(particles) => {
                // libxml2 counts any CDATA section, even an empty one, as text here.
                if el.cdata || !el.text.chars().all(is_xml_space) {
                    out.push(Violazione {
                        path: render(path, None),
                        difetto: Difetto::Testo,
                    });
                }
                let start = out.len();
                self.sequence(el, particles, path, out);
                if out.len() > start {
                    // An element that is there, only out of order, is not also reported missing.
                    let misplaced: Vec<String> = out[start..]
                        .iter()
                        .filter(|v| matches!(v.difetto, Difetto::FuoriOrdine { .. }))
                        .map(|v| v.path.clone())
                        .collect();
                    let mut i = start;
                    while i < out.len() {
                        if matches!(out[i].difetto, Difetto::Mancante { .. })
                            && misplaced.contains(&out[i].path)
                        {
                            out.remove(i);
                        } else {
                            i += 1;
                        }
                    }
                }
            }
        }
    }

    fn sequence<'s>(
        &'s self,
        el: &Element,
        particles: &'s [Particle],
        path: &mut Percorso<'s>,
        out: &mut Vec<Violazione>,
    ) {
        let matches = |p: &Particle, c: &Element| {
            c.local == p.name && c.ns.as_deref() == Some(self.namespace.as_str())
        };
        let mut i = 0;
        let mut count = 0u32;
        let missing_up_to = |from: usize,
                             to: usize,
                             first_count: u32,
                             path: &Percorso<'_>,
                             out: &mut Vec<Violazione>| {
            for (k, p) in particles.iter().enumerate().take(to).skip(from) {
                let n = if k == from { first_count } else { 0 };
                if n < p.min {
                    out.push(Violazione {
                        path: render(path, Some(&p.name)),
                        difetto: Difetto::Mancante {
                            elemento: p.name.clone(),
                        },
                    });
                }
            }
        };
        for c in &el.children {
            if i < particles.len() && matches(&particles[i], c) {
                count += 1;
            } else if let Some(k) = (i + 1..particles.len()).find(|&k| matches(&particles[k], c)) {
                missing_up_to(i, k, count, path, out);
                i = k;
                count = 1;
            } else {
                let earlier = particles[..i.min(particles.len())]
                    .iter()
                    .any(|p| matches(p, c));
                out.push(Violazione {
                    path: render(path, Some(&c.local)),
                    difetto: if earlier {
                        Difetto::FuoriOrdine {
                            elemento: c.local.to_string(),
                        }
                    } else {
                        Difetto::Inatteso {
                            elemento: c.local.to_string(),
                        }
                    },
                });
                continue;
            }
            let p = &particles[i];
            let index = p.max.is_none_or(|m| m > 1).then_some(count);
            path.push((p.name.as_str(), index));
            if p.max.is_some_and(|m| count > m) {
                out.push(Violazione {
                    path: render(path, None),
                    difetto: Difetto::Troppi {
                        elemento: p.name.clone(),
                        max: p.max.unwrap_or(0),
                    },
                });
            } else {
                self.element(c, &p.content, path, out);
            }
            path.pop();
        }
        missing_up_to(i, particles.len(), count, path, out);
    }
}

/// Where the validator is: element names with the index of repeated ones. Rendered to text
/// only when something is wrong, so a valid document costs no path strings.
type Percorso<'s> = Vec<(&'s str, Option<u32>)>;

fn render(path: &Percorso<'_>, last: Option<&str>) -> String {
    let mut s = String::new();
    for (i, (name, index)) in path.iter().enumerate() {
        if i > 0 {
            s.push('/');
        }
        s.push_str(name);
        if let Some(n) = index {
            s.push_str(&format!("[{n}]"));
        }
    }
    if let Some(l) = last {
        s.push('/');
        s.push_str(l);
    }
    s
}

/// Checks a text value against a simple type; `None` when it is valid.
pub fn check_value(t: &SimpleType, raw: &str) -> Option<Difetto> {
    match t.base {
        // The XSD collapses whitespace around dates; xmllint (libxml2) does not, and the
        // verdict must be xmllint's: see is_date and is_date_time.
        Builtin::Date => (!is_date(raw)).then(|| Difetto::Data {
            valore: raw.to_string(),
        }),
        Builtin::DateTime => (!is_date_time(raw)).then(|| Difetto::DataOra {
            valore: raw.to_string(),
        }),
        Builtin::String => {
            let len = raw.chars().count();
            let short = t.length.is_some_and(|l| len != l) || t.min_length.is_some_and(|m| len < m);
            let long = t.length.is_some_and(|l| len != l) || t.max_length.is_some_and(|m| len > m);
            if short || long {
                return Some(Difetto::Lunghezza {
                    valore: raw.to_string(),
                    len,
                    min: t.length.or(t.min_length),
                    max: t.length.or(t.max_length),
                });
            }
            if !t.enumeration.is_empty() && !t.enumeration.iter().any(|e| e == raw) {
                return Some(Difetto::Enumerazione {
                    valore: raw.to_string(),
                    ammessi: t.enumeration.clone(),
                });
            }
            if !t.patterns.is_empty() && !t.patterns.iter().any(|(_, re)| re.is_match(raw)) {
                return Some(Difetto::Pattern {
                    valore: raw.to_string(),
                    patterns: t.patterns.iter().map(|(p, _)| p.clone()).collect(),
                });
            }
            None
        }
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// `-?YYYY-MM-DD`; returns the rest (a time zone or time).
fn date_part(s: &str) -> Option<&str> {
    let s = s.strip_prefix('-').unwrap_or(s);
    let dash = s.find('-')?;
    let (y, rest) = s.split_at(dash);
    if !digits(y) || y.len() < 4 || (y.len() > 4 && y.starts_with('0')) {
        return None;
    }
    let year: i64 = y.parse().ok()?;
    let rest = &rest[1..];
    let (m, rest) = (rest.get(..2)?, rest.get(2..)?);
    let rest = rest.strip_prefix('-')?;
    let (d, rest) = (rest.get(..2)?, rest.get(2..)?);
    if !digits(m) || !digits(d) || year == 0 {
        return None;
    }
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    let max = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap(year) => 29,
        2 => 28,
        _ => return None,
    };
    (1..=max).contains(&d).then_some(rest)
}

/// `Z` or `(+|-)hh:mm` with |offset| ≤ 14:00.
fn timezone(s: &str) -> bool {
    if s.is_empty() || s == "Z" {
        return true;
    }
    let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) else {
        return false;
    };
    let b = rest.as_bytes();
    if b.len() != 5 || b[2] != b':' || !digits(&rest[..2]) || !digits(&rest[3..]) {
        return false;
    }
    let (h, m): (u32, u32) = (
        rest[..2].parse().unwrap_or(99),
        rest[3..].parse().unwrap_or(99),
    );
    m <= 59 && (h < 14 || (h == 14 && m == 0))
}

/// An xs:date as libxml2 reads it: no whitespace around it.
pub fn is_date(s: &str) -> bool {
    date_part(s).is_some_and(timezone)
}

/// An xs:dateTime as libxml2 reads it: no leading whitespace; trailing whitespace only after
/// a time zone.
pub fn is_date_time(s: &str) -> bool {
    let Some(rest) = date_part(s) else {
        return false;
    };
    let Some(t) = rest.strip_prefix('T') else {
        return false;
    };
    let b = t.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (h, mi, se) = (&t[..2], &t[3..5], &t[6..8]);
    if !digits(h) || !digits(mi) || !digits(se) {
        return false;
    }
    let (h, mi, se): (u32, u32, u32) = (
        h.parse().unwrap_or(99),
        mi.parse().unwrap_or(99),
        se.parse().unwrap_or(99),
    );
    let mut rest = &t[8..];
    let mut frac_zero = true;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        frac_zero = f[..n].bytes().all(|b| b == b'0');
        rest = &f[n..];
    }
    let time_ok = (h < 24 && mi < 60 && se < 60) || (h == 24 && mi == 0 && se == 0 && frac_zero);
    let zoned = !rest.is_empty();
    let rest = if zoned {
        rest.trim_end_matches(is_xml_space)
    } else {
        rest
    };
    time_ok && timezone(rest) && !(zoned && rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSD: &str = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t" targetNamespace="urn:t" elementFormDefault="qualified">
  <xs:simpleType name="Codice"><xs:restriction base="xs:string"><xs:pattern value="[A-Z]\d{3}"/><xs:pattern value="0{4}"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="SiNo"><xs:restriction base="xs:string"><xs:enumeration value="SI"/><xs:enumeration value="NO"/></xs:restriction></xs:simpleType>
  <xs:complexType name="Riga"><xs:sequence>
    <xs:element name="codice" type="t:Codice"/>
    <xs:element name="nota" minOccurs="0"><xs:simpleType><xs:restriction base="xs:string"><xs:maxLength value="5"/></xs:restriction></xs:simpleType></xs:element>
  </xs:sequence></xs:complexType>
  <xs:element name="Radice"><xs:complexType><xs:sequence>
    <xs:element name="riga" type="t:Riga" maxOccurs="2"/>
    <xs:element name="flag" type="t:SiNo"/>
    <xs:element name="data" type="xs:date" minOccurs="0"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"#;

    fn check(doc: &str) -> Vec<Violazione> {
        let s = Schema::load(XSD, None).unwrap();
        let root =
            crate::xml::parse_document(doc.as_bytes(), crate::xml::Limits::default()).unwrap();
        s.validate(&root)
    }

    #[test]
    fn valid_and_invalid_documents() {
        let ok = r#"<t:Radice xmlns:t="urn:t"><t:riga><t:codice>H501</t:codice></t:riga><t:riga><t:codice>0000</t:codice><t:nota>ciao</t:nota></t:riga><t:flag>SI</t:flag><t:data>2024-02-29</t:data></t:Radice>"#;
        assert_eq!(check(ok), vec![]);
        let bad = r#"<t:Radice xmlns:t="urn:t"><t:flag>si</t:flag><t:riga><t:codice>h501</t:codice><t:nota>troppo lunga</t:nota></t:riga><t:data>2023-02-29</t:data><t:extra/></t:Radice>"#;
        let v = check(bad);
        let paths: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"Radice/riga"), "{v:?}"); // missing before flag
        assert!(v
            .iter()
            .any(|x| matches!(x.difetto, Difetto::Enumerazione { .. })));
        assert!(v.iter().any(
            |x| matches!(&x.difetto, Difetto::FuoriOrdine { elemento } if elemento == "riga")
        ));
        assert!(v.iter().any(|x| matches!(x.difetto, Difetto::Data { .. })));
        assert!(v
            .iter()
            .any(|x| matches!(&x.difetto, Difetto::Inatteso { elemento } if elemento == "extra")));
    }

    #[test]
    fn dates_follow_xsd() {
        for ok in [
            "2024-02-29",
            "2023-12-31Z",
            "2023-12-31+14:00",
            "-0044-03-15",
            "12024-01-01",
        ] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "2023-1-01",
            "23-01-01",
            "0000-01-01",
            "02024-01-01",
            "2023-01-01+15:00",
            "2023-01-01T00:00:00",
            " 2023-01-01",
            "2023-01-01Z ",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        for ok in [
            "2012-01-31T10:00:00",
            "2012-01-31T10:00:00.5Z",
            "2012-01-31T24:00:00",
            "2012-01-31T10:00:00+01:00 ",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "2012-01-31",
            "2012-01-31T10:00",
            "2012-01-31T25:00:00",
            "2012-01-31T10:00:00.",
            "2012-01-31T10:00:00 ",
            " 2012-01-31T10:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn xsd_patterns_are_anchored_and_literal() {
        assert_eq!(
            translate_pattern("a^b$.[^x]"),
            "^(?:a\\^b\\$[^\\n\\r][^x])$"
        );
    }
}
