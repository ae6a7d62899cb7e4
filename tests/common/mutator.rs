//! A small, seeded, deterministic XML mutator for differential tests of the moduli validator
//! (project validator vs `xmllint --schema`). It works on the text itself, with a tiny
//! tokenizer that records where every element's tags start and end, so every mutation is a
//! splice of the original string: indentation, comments and the XML declaration survive.
//!
//! Each call applies one mutation, or two (about one call in three). The kinds:
//! structure (drop / duplicate / swap adjacent siblings / move among siblings), leaf values
//! (pattern breakers, over-long strings, empty, whitespace padding, bad dates and dateTimes,
//! enumeration violations, non-ASCII, character references), an unknown extra element, an
//! attribute, a comment or processing instruction, a renamed element or one put in another
//! namespace (or the same namespace under another prefix, which stays valid), and — rarely, about
//! 3% of the mutations — a deliberately broken document whose `what` contains "not well-formed"
//! (or "not namespace-well-formed" for an undeclared prefix).
//!
//! No dependencies: the PRNG is splitmix64, and nothing iterates over a hash map, so the same
//! `(xml, seed)` always gives the same `Mutation`.
#![allow(dead_code)]

/// The mutated document and a human-readable description of what was changed.
pub struct Mutation {
    pub xml: String,
    pub what: String,
}

/// Seeded, deterministic: the same (xml, seed) always gives the same mutation.
pub fn mutate(xml: &str, seed: u64) -> Mutation {
    let mut rng = Rng::new(seed);
    let rounds = if rng.below(3) == 0 { 2 } else { 1 };
    let mut cur = xml.to_string();
    let mut whats: Vec<String> = Vec::new();
    for _ in 0..rounds {
        let Some(doc) = parse(&cur) else {
            if whats.is_empty() {
                // Not an XML document we can walk: still produce a deterministic change.
                let (x, w) = fallback(&cur, &mut rng);
                cur = x;
                whats.push(w);
            }
            break;
        };
        let (x, w, broken) = mutate_once(&cur, &doc, &mut rng);
        cur = x;
        whats.push(w);
        if broken {
            break;
        }
    }
    Mutation {
        xml: cur,
        what: whats.join(" + "),
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Decorrelate nearby seeds (0, 1, 2, …) before the first draw.
        let mut r = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        r.next();
        r
    }
    /// splitmix64
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        ((self.next() >> 11) % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    /// Index chosen with the given weights (at least one weight > 0).
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total as usize) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal tokenizer: element spans only.

struct Elem {
    /// Qualified name as written (`cl:nome`).
    name: String,
    /// Byte offset of the `<` of the start tag.
    start: usize,
    /// Byte offset just after the `>` of the start tag.
    start_end: usize,
    /// Byte offset of the `<` of the end tag (== start_end for `<x/>`).
    end_start: usize,
    /// Byte offset just after the element (end tag included).
    end: usize,
    self_closing: bool,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Doc {
    elems: Vec<Elem>,
    root: usize,
}

fn find_from(s: &str, from: usize, pat: &str) -> Option<usize> {
    s.get(from..)?.find(pat).map(|p| p + from)
}

/// Parses just enough XML to know the element tree. Returns None when the text is not a
/// single well-nested element tree (mismatched or unclosed tags, several roots, …).
fn parse(s: &str) -> Option<Doc> {
    let b = s.as_bytes();
    let mut elems: Vec<Elem> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut root: Option<usize> = None;
    let mut i = if s.starts_with('\u{FEFF}') { 3 } else { 0 };
    while i < b.len() {
        if b[i] != b'<' {
            if stack.is_empty() && !b[i].is_ascii_whitespace() {
                return None; // text outside the root element
            }
            i += 1;
            continue;
        }
        let rest = &s[i..];
        if rest.starts_with("<!--") {
            i = find_from(s, i + 4, "-->")? + 3;
        } else if rest.starts_with("<![CDATA[") {
            if stack.is_empty() {
                return None;
            }
            i = find_from(s, i + 9, "]]>")? + 3;
        } else if rest.starts_with("<?") {
            i = find_from(s, i + 2, "?>")? + 2;
        } else if rest.starts_with("<!") {
            // DOCTYPE, possibly with an internal subset in brackets.
            let mut j = i + 2;
            let mut depth = 0i32;
            loop {
                match *b.get(j)? {
                    b'[' => depth += 1,
                    b']' => depth -= 1,
                    b'>' if depth <= 0 => break,
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
        } else if rest.starts_with("</") {
            let gt = find_from(s, i + 2, ">")?;
            let name = s[i + 2..gt].trim_end();
            let top = stack.pop()?;
            if elems[top].name != name {
                return None;
            }
            elems[top].end_start = i;
            elems[top].end = gt + 1;
            i = gt + 1;
        } else {
            // Start tag: find the closing '>' outside attribute quotes.
            let mut j = i + 1;
            let mut quote: Option<u8> = None;
            loop {
                let c = *b.get(j)?;
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => break,
                    None if c == b'<' => return None,
                    None => {}
                }
                j += 1;
            }
            let name_end = s[i + 1..j]
                .find(|c: char| c.is_ascii_whitespace() || c == '/')
                .map(|p| p + i + 1)
                .unwrap_or(j);
            let name = &s[i + 1..name_end];
            if name.is_empty() {
                return None;
            }
            let self_closing = b[j - 1] == b'/';
            let idx = elems.len();
            let parent = stack.last().copied();
            match parent {
                Some(p) => elems[p].children.push(idx),
                None => {
                    if root.is_some() {
                        return None; // a second root element
                    }
                    root = Some(idx);
                }
            }
            elems.push(Elem {
                name: name.to_string(),
                start: i,
                start_end: j + 1,
                end_start: j + 1,
                end: j + 1,
                self_closing,
                parent,
                children: Vec::new(),
            });
            if !self_closing {
                stack.push(idx);
            }
            i = j + 1;
        }
    }
    if !stack.is_empty() {
        return None;
    }
    Some(Doc { elems, root: root? })
}

impl Doc {
    fn path(&self, i: usize) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            parts.push(local(&self.elems[c].name).to_string());
            cur = self.elems[c].parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }
    fn leaves(&self) -> Vec<usize> {
        (0..self.elems.len())
            .filter(|&i| self.elems[i].children.is_empty())
            .collect()
    }
    fn non_root(&self) -> Vec<usize> {
        (0..self.elems.len()).filter(|&i| i != self.root).collect()
    }
    fn parents_with(&self, min_children: usize) -> Vec<usize> {
        (0..self.elems.len())
            .filter(|&i| self.elems[i].children.len() >= min_children)
            .collect()
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn prefix(name: &str) -> Option<&str> {
    name.find(':').map(|p| &name[..p])
}

/// Start of the run of whitespace just before `pos`.
fn lead_start(s: &str, pos: usize) -> usize {
    let b = s.as_bytes();
    let mut p = pos;
    while p > 0 && matches!(b[p - 1], b' ' | b'\t' | b'\n' | b'\r') {
        p -= 1;
    }
    p
}

/// Namespace URI bound to `pfx` (None = default namespace) at element `i`, from the
/// `xmlns` declarations written on it and its ancestors.
fn ns_of(s: &str, doc: &Doc, i: usize, pfx: Option<&str>) -> Option<String> {
    let attr = match pfx {
        Some(p) => format!("xmlns:{p}="),
        None => "xmlns=".to_string(),
    };
    let mut cur = Some(i);
    while let Some(c) = cur {
        let e = &doc.elems[c];
        let tag = &s[e.start..e.start_end];
        let mut from = 0;
        while let Some(p) = tag[from..].find(&attr) {
            let at = from + p;
            let ok_before = at > 0 && tag.as_bytes()[at - 1].is_ascii_whitespace();
            from = at + attr.len();
            if ok_before {
                let q = tag.as_bytes().get(from).copied()?;
                if q == b'"' || q == b'\'' {
                    let close = tag[from + 1..].find(q as char)? + from + 1;
                    return Some(tag[from + 1..close].to_string());
                }
            }
        }
        cur = e.parent;
    }
    None
}

fn has_attr(tag: &str, name: &str) -> bool {
    let b = tag.as_bytes();
    let pat = format!("{name}=");
    let mut from = 0;
    while let Some(p) = tag[from..].find(&pat) {
        let at = from + p;
        if at > 0 && b[at - 1].is_ascii_whitespace() {
            return true;
        }
        from = at + pat.len();
    }
    false
}

/// Replaces byte ranges; the ranges must not overlap (insertions are empty ranges).
fn apply(s: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = s.to_string();
    for (a, b, t) in edits {
        out.replace_range(a..b, &t);
    }
    out
}

fn escape_text(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Raw text content of a leaf (may contain comments or references).
fn raw_text<'a>(s: &'a str, e: &Elem) -> &'a str {
    if e.self_closing {
        ""
    } else {
        &s[e.start_end..e.end_start]
    }
}

/// Replaces the content of leaf `e` with already-escaped `content`.
fn set_content(s: &str, e: &Elem, content: &str) -> String {
    if e.self_closing {
        // `<x a="1"/>` → `<x a="1">content</x>`
        let tag = &s[e.start..e.start_end];
        let open = tag[..tag.len() - 2].trim_end();
        apply(
            s,
            vec![(
                e.start,
                e.start_end,
                format!("{open}>{content}</{}>", e.name),
            )],
        )
    } else {
        apply(s, vec![(e.start_end, e.end_start, content.to_string())])
    }
}

/// Byte positions inside `t` that are char boundaries and lie outside markup and references.
fn safe_positions(t: &str) -> Vec<usize> {
    let mut v = Vec::new();
    let mut in_ref = false;
    let mut in_markup = false;
    for (p, c) in t.char_indices() {
        if !in_ref && !in_markup {
            v.push(p);
        }
        match c {
            '&' if !in_markup => in_ref = true,
            ';' if in_ref => in_ref = false,
            '<' if !in_ref => in_markup = true,
            '>' if in_markup => in_markup = false,
            _ => {}
        }
    }
    if !in_ref && !in_markup {
        v.push(t.len());
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Mutations

const W_DROP: u32 = 10;
const W_DUP: u32 = 8;
const W_SWAP: u32 = 8;
const W_MOVE: u32 = 6;
const W_LEAF: u32 = 42;
const W_EXTRA: u32 = 6;
const W_ATTR: u32 = 5;
const W_COMMENT: u32 = 6;
const W_RENAME: u32 = 6;
const W_BROKEN: u32 = 3;

/// One mutation of a parsed document: (new text, description, whether it is deliberately
/// not well-formed).
fn mutate_once(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let non_root = doc.non_root();
    let swappable = doc.parents_with(2);
    let weights = [
        if non_root.is_empty() { 0 } else { W_DROP },
        if non_root.is_empty() { 0 } else { W_DUP },
        if swappable.is_empty() { 0 } else { W_SWAP },
        if doc.parents_with(3).is_empty() {
            0
        } else {
            W_MOVE
        },
        W_LEAF,
        W_EXTRA,
        W_ATTR,
        W_COMMENT,
        W_RENAME,
        W_BROKEN,
    ];
    match rng.weighted(&weights) {
        0 => {
            let i = *rng.pick(&non_root);
            let e = &doc.elems[i];
            let a = lead_start(s, e.start);
            (
                apply(s, vec![(a, e.end, String::new())]),
                format!("drop element {}", doc.path(i)),
                false,
            )
        }
        1 => {
            let i = *rng.pick(&non_root);
            let e = &doc.elems[i];
            let lead = &s[lead_start(s, e.start)..e.start];
            let copy = format!("{lead}{}", &s[e.start..e.end]);
            (
                apply(s, vec![(e.end, e.end, copy)]),
                format!("duplicate element {}", doc.path(i)),
                false,
            )
        }
        2 => {
            let p = *rng.pick(&swappable);
            let ch = &doc.elems[p].children;
            let k = rng.below(ch.len() - 1);
            let (a, b) = (&doc.elems[ch[k]], &doc.elems[ch[k + 1]]);
            let text = format!(
                "{}{}{}",
                &s[b.start..b.end],
                &s[a.end..b.start],
                &s[a.start..a.end]
            );
            (
                apply(s, vec![(a.start, b.end, text)]),
                format!(
                    "swap adjacent siblings {} and {}",
                    doc.path(ch[k]),
                    local(&b.name)
                ),
                false,
            )
        }
        3 => mutate_move(s, doc, rng),
        4 => mutate_leaf(s, doc, rng),
        5 => mutate_extra(s, doc, rng),
        6 => mutate_attr(s, doc, rng),
        7 => mutate_comment(s, doc, rng),
        8 => mutate_rename(s, doc, rng),
        _ => mutate_broken(s, doc, rng),
    }
}

fn mutate_move(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let parents = doc.parents_with(3);
    let p = *rng.pick(&parents);
    let ch = &doc.elems[p].children;
    let k = rng.below(ch.len());
    // Destinations: "first" (before child 0) or "after child m"; skip those that leave the
    // element where it is (first when k == 0, after k-1, after k itself).
    let mut dests: Vec<Option<usize>> = Vec::new();
    if k != 0 {
        dests.push(None);
    }
    for m in 0..ch.len() {
        if m != k && m + 1 != k {
            dests.push(Some(m));
        }
    }
    let e = &doc.elems[ch[k]];
    let ls = lead_start(s, e.start);
    let lead = &s[ls..e.start];
    let body = &s[e.start..e.end];
    let dest = *rng.pick(&dests);
    let mut edits = vec![(ls, e.end, String::new())];
    let where_ = match dest {
        None => {
            let first = &doc.elems[ch[0]];
            let lead0 = &s[lead_start(s, first.start)..first.start];
            edits.push((first.start, first.start, format!("{body}{lead0}")));
            "to the first position".to_string()
        }
        Some(m) => {
            let after = &doc.elems[ch[m]];
            edits.push((after.end, after.end, format!("{lead}{body}")));
            format!("after {}", local(&after.name))
        }
    };
    (
        apply(s, edits),
        format!("move element {} {where_}", doc.path(ch[k])),
        false,
    )
}

fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn is_datetime(v: &str) -> bool {
    v.len() >= 19 && v.get(..10).is_some_and(is_date) && v.as_bytes()[10] == b'T'
}

/// Candidate replacement values that break the likely type of `v` (raw, unescaped text),
/// each with a short label.
fn pattern_breakers(name: &str, v: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |val: String, label: &str| out.push((val, label.to_string()));
    let n = v.chars().count();
    if is_datetime(v) {
        let d = &v[..10];
        add(d.to_string(), "a date in a dateTime field");
        add(
            "2011-02-30T10:00:00".into(),
            "impossible dateTime (30 February)",
        );
        add(format!("{d}T25:00:00"), "hour 25");
        add(format!("{d} {}", &v[11..]), "space instead of T");
        add(format!("{d}T10:00"), "dateTime without seconds");
        add(format!("{v}Z"), "dateTime with a Z timezone");
        add(format!("{v}+02:00"), "dateTime with a +02:00 offset");
    } else if is_date(v) || (v.is_empty() && name.starts_with("data")) {
        for (bad, label) in [
            ("2011-02-30", "impossible date (30 February)"),
            ("2011-13-01", "month 13"),
            ("2011-1-01", "one-digit month"),
            ("11-01-01", "two-digit year"),
            ("2011-01-01Z", "date with a Z timezone"),
            ("2011-01-01+02:00", "date with a +02:00 offset"),
            ("2011-01-01T10:00:00", "a dateTime in a date field"),
            ("01/02/2011", "dd/mm/yyyy date"),
            ("2011-00-10", "month 00"),
        ] {
            add(bad.into(), label);
        }
    }
    match v {
        "SI" => {
            add("si".into(), "enumeration SI lowercased");
            add("Si".into(), "enumeration SI mixed case");
            add("S".into(), "enumeration SI abbreviated");
            add("YES".into(), "enumeration SI in English");
        }
        "NO" => {
            add("no".into(), "enumeration NO lowercased");
            add("N".into(), "enumeration NO abbreviated");
        }
        "M" | "F" => {
            add("X".into(), "sex X");
            add(v.to_lowercase(), "sex lowercased");
        }
        _ => {}
    }
    if n == 2 && v.starts_with('0') && v.as_bytes()[1].is_ascii_digit() {
        add(
            v[1..].to_string(),
            "two-digit code without its leading zero",
        );
        add(format!("0{v}"), "two-digit code with three digits");
        add("99".into(), "two-digit code outside the table");
    }
    if n == 1 && v.as_bytes()[0].is_ascii_uppercase() {
        add(v.to_lowercase(), "one-letter code lowercased");
        add("Z".into(), "one-letter code outside the enumeration");
    }
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        let mid = v.len() / 2;
        add(
            format!("{}O{}", &v[..mid], &v[mid + 1..]),
            "letter O in a digit field",
        );
        add(format!("{v}0"), "one digit too many");
        if v.len() > 1 {
            add(v[..v.len() - 1].to_string(), "one digit too few");
        }
        add(format!("-{v}"), "negative number");
        add(format!("{v}.5"), "decimal in a digit field");
    }
    if n == 25 {
        let mut c: Vec<char> = v.chars().collect();
        c.pop();
        add(c.iter().collect(), "25-character code cut to 24");
        add(format!("{v}0"), "25-character code grown to 26");
    }
    if v.chars().any(|c| c.is_ascii_uppercase()) && v.to_lowercase() != v && n <= 16 {
        add(v.to_lowercase(), "code lowercased");
    }
    if n == 16 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
        let mut c: Vec<char> = v.chars().collect();
        c[8] = '1';
        add(
            c.iter().collect(),
            "codice fiscale month letter replaced by a digit",
        );
        add(v[..15].to_string(), "codice fiscale cut to 15 characters");
    }
    if v.contains('.')
        && v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    {
        add(format!("{v}.1"), "dotted code with one segment more");
        if let Some(p) = v.rfind('.') {
            add(v[..p].to_string(), "dotted code with one segment less");
        }
        add(v.replace('.', ","), "dotted code with commas");
        add(v.replace('.', ""), "dotted code without dots");
    }
    if v.contains('@') {
        add(v.replace('@', ""), "e-mail without @");
        add(v.replace('@', "@@"), "e-mail with @@");
        add(format!("nome cognome {v}"), "e-mail with spaces");
        add(format!("{v}."), "e-mail with a trailing dot");
    }
    if v.len() == 4
        && v.as_bytes()[0].is_ascii_uppercase()
        && v[1..].bytes().all(|c| c.is_ascii_digit())
    {
        add(
            format!("{}{}", &v[..1].to_lowercase(), &v[1..]),
            "comune code lowercased",
        );
        add(v[..3].to_string(), "comune code with 3 characters");
        add(format!("{v}0"), "comune code with 5 characters");
    }
    out
}

fn long_string(seed_text: &str, n: usize) -> String {
    let base: Vec<char> = if seed_text.trim().is_empty() {
        "ABCDEFGHIJ".chars().collect()
    } else {
        format!("{} ", seed_text.trim()).chars().collect()
    };
    (0..n).map(|i| base[i % base.len()]).collect()
}

fn mutate_leaf(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let leaves = doc.leaves();
    let i = *rng.pick(&leaves);
    let e = &doc.elems[i];
    let raw = raw_text(s, e);
    // The value as a validator would see it (good enough: no references in our moduli).
    let v = raw.trim();
    let lname = local(&e.name);
    // Categories: 0 pattern, 1 over-long, 2 empty, 3 padding, 4 non-ASCII, 5 char reference.
    let breakers = pattern_breakers(lname, v);
    let cat = rng.weighted(&[if breakers.is_empty() { 0 } else { 40 }, 14, 10, 14, 14, 8]);
    let (content, label) = match cat {
        0 => {
            let (val, label) = rng.pick(&breakers).clone();
            (escape_text(&val), format!("{label}: {val:?}"))
        }
        1 => {
            let n = *rng.pick(&[51usize, 101, 251, 301, 1001, 2001, 5001]);
            (
                escape_text(&long_string(v, n)),
                format!("over-long string ({n} characters)"),
            )
        }
        2 => (String::new(), "empty string".to_string()),
        3 => {
            let (val, label) = match rng.below(6) {
                0 => (format!(" {v} "), "spaces around the value"),
                1 => (format!("\t{v}"), "leading tab"),
                2 => (format!("{v}\n"), "trailing newline"),
                3 => (
                    format!("\n      {v}\n    "),
                    "value on its own indented line",
                ),
                4 => (format!("{v} "), "trailing space"),
                _ => ("   ".to_string(), "whitespace only"),
            };
            (escape_text(&val), label.to_string())
        }
        4 => {
            let (val, label) = match rng.below(7) {
                0 => (format!("{v}àèéìòù"), "accented vowels appended"),
                1 => ("àèéìòù".to_string(), "accented vowels only"),
                2 => (format!("{v}ß"), "ß appended"),
                3 => (format!("{v}😀"), "emoji appended"),
                4 => ("日本語テキスト".to_string(), "CJK text"),
                5 => (
                    v.chars()
                        .map(|c| {
                            if c == 'U' {
                                'Ü'
                            } else if c == 'A' {
                                'Á'
                            } else {
                                c
                            }
                        })
                        .collect::<String>()
                        + "Ñ",
                    "Latin letters with diacritics",
                ),
                _ => (format!("\u{00A0}{v}"), "leading no-break space"),
            };
            (escape_text(&val), label.to_string())
        }
        _ => {
            // Same or similar value spelled with references: a validator must decode them.
            let (val, label) = match rng.below(3) {
                0 if !v.is_empty() => {
                    let c = v.chars().next().unwrap();
                    let rest: String = v.chars().skip(1).collect();
                    (
                        format!("&#{};{}", c as u32, escape_text(&rest)),
                        "first character as a numeric character reference",
                    )
                }
                1 => (
                    format!("{}&amp;", escape_text(v)),
                    "ampersand (escaped) appended",
                ),
                _ => (
                    format!("{}&lt;x&gt;", escape_text(v)),
                    "escaped <x> appended",
                ),
            };
            (val, label.to_string())
        }
    };
    (
        set_content(s, e, &content),
        format!("leaf {}: {label}", doc.path(i)),
        false,
    )
}

fn mutate_extra(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let i = rng.below(doc.elems.len());
    let e = &doc.elems[i];
    let pfx = prefix(&e.name).map(|p| format!("{p}:")).unwrap_or_default();
    let lname = *rng.pick(&["campoextra", "note", "Allegato", "codicefiscale2", "x"]);
    let value = *rng.pick(&["valore", "", "01", "SI"]);
    let new = if value.is_empty() {
        format!("<{pfx}{lname}/>")
    } else {
        format!("<{pfx}{lname}>{value}</{pfx}{lname}>")
    };
    let ch = &e.children;
    if e.self_closing {
        let tag = &s[e.start..e.start_end];
        let open = tag[..tag.len() - 2].trim_end();
        let text = format!("{open}>{new}</{}>", e.name);
        return (
            apply(s, vec![(e.start, e.start_end, text)]),
            format!(
                "unknown element {pfx}{lname} inside empty element {}",
                doc.path(i)
            ),
            false,
        );
    }
    if ch.is_empty() {
        // Inside a leaf: mixed content.
        let raw = raw_text(s, e);
        let pos = *rng.pick(&safe_positions(raw));
        return (
            apply(s, vec![(e.start_end + pos, e.start_end + pos, new)]),
            format!(
                "unknown element {pfx}{lname} inside the text of leaf {}",
                doc.path(i)
            ),
            false,
        );
    }
    let k = rng.below(ch.len() + 1);
    let (at, lead) = if k < ch.len() {
        let c = &doc.elems[ch[k]];
        let ls = lead_start(s, c.start);
        (ls, s[ls..c.start].to_string())
    } else {
        let last = &doc.elems[ch[ch.len() - 1]];
        (
            last.end,
            s[lead_start(s, last.start)..last.start].to_string(),
        )
    };
    (
        apply(s, vec![(at, at, format!("{lead}{new}"))]),
        format!(
            "unknown element {pfx}{lname} as child #{k} of {}",
            doc.path(i)
        ),
        false,
    )
}

fn mutate_attr(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let i = rng.below(doc.elems.len());
    let e = &doc.elems[i];
    let tag = &s[e.start..e.start_end];
    let pfx = prefix(&e.name);
    let mut options: Vec<(String, String)> = vec![
        ("id".into(), "id=\"m1\"".into()),
        ("xml:lang".into(), "xml:lang=\"it\"".into()),
        ("tipo".into(), "tipo=\"01\"".into()),
        (
            "xsi:nil".into(),
            "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"".into(),
        ),
    ];
    if let Some(p) = pfx {
        options.push((format!("{p}:versione"), format!("{p}:versione=\"2.0\"")));
    }
    let k = rng.below(options.len());
    let (mut aname, mut text) = options[k].clone();
    if has_attr(tag, &aname) || (aname == "xsi:nil" && has_attr(tag, "xmlns:xsi")) {
        aname = "pddmut".into();
        text = "pddmut=\"1\"".into();
        if has_attr(tag, "pddmut") {
            return mutate_comment(s, doc, rng);
        }
    }
    let at = e.start + 1 + e.name.len();
    (
        apply(s, vec![(at, at, format!(" {text}"))]),
        format!("attribute {aname} on {}", doc.path(i)),
        false,
    )
}

fn mutate_comment(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let (node, kind) = match rng.below(4) {
        0 => ("<!-- commento di test -->", "comment"),
        1 => ("<!--è-->", "comment"),
        2 => ("<?pdd-test mutazione=\"1\"?>", "processing instruction"),
        _ => ("<![CDATA[]]>", "empty CDATA section"),
    };
    let root = doc.root;
    if kind == "empty CDATA section" && doc.elems[root].self_closing {
        // `<r/>`: CDATA can only go inside the root, so give it content.
        return (
            set_content(s, &doc.elems[root], node),
            format!("{kind} inside empty root {}", doc.path(root)),
            false,
        );
    }
    // Where: before an element's start tag, inside a leaf's text, or after the root.
    let leaves = doc.leaves();
    match rng.below(3) {
        0 => {
            let i = rng.below(doc.elems.len());
            if i == root && kind == "empty CDATA section" {
                // CDATA is not allowed outside the root element.
                let e = &doc.elems[root];
                return (
                    apply(s, vec![(e.start_end, e.start_end, node.to_string())]),
                    format!("{kind} as first content of {}", doc.path(root)),
                    false,
                );
            }
            let e = &doc.elems[i];
            (
                apply(s, vec![(e.start, e.start, node.to_string())]),
                format!("{kind} before {}", doc.path(i)),
                false,
            )
        }
        1 => {
            let i = *rng.pick(&leaves);
            let e = &doc.elems[i];
            if e.self_closing {
                return (
                    set_content(s, e, node),
                    format!("{kind} inside empty {}", doc.path(i)),
                    false,
                );
            }
            let raw = raw_text(s, e);
            let pos = *rng.pick(&safe_positions(raw));
            (
                apply(
                    s,
                    vec![(e.start_end + pos, e.start_end + pos, node.to_string())],
                ),
                format!("{kind} inside the text of {} at byte {pos}", doc.path(i)),
                false,
            )
        }
        _ => {
            let e = &doc.elems[root];
            if kind == "empty CDATA section" {
                return (
                    apply(s, vec![(e.end_start, e.end_start, node.to_string())]),
                    format!("{kind} as last content of {}", doc.path(root)),
                    false,
                );
            }
            (
                apply(s, vec![(e.end, e.end, format!("\n{node}"))]),
                format!("{kind} after the root element"),
                false,
            )
        }
    }
}

const OTHER_NS: [&str; 4] = [
    "http://servizi.lavoro.gov.it/candidatura",
    "http://servizi.lavoro.gov.it/vacancy",
    "http://servizi.lavoro.gov.it/messaggio",
    "urn:pdd:test:altro",
];

fn mutate_rename(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let i = rng.below(doc.elems.len());
    let e = &doc.elems[i];
    let pfx = prefix(&e.name);
    let lname = local(&e.name);
    let own_ns = ns_of(s, doc, i, pfx);
    let (new_name, decl, label) = match rng.below(5) {
        0 => {
            let mut c = lname.chars();
            let first = c.next().unwrap_or('x');
            let flipped: String = if first.is_uppercase() {
                first.to_lowercase().chain(c).collect()
            } else {
                first.to_uppercase().chain(c).collect()
            };
            let q = pfx.map(|p| format!("{p}:{flipped}")).unwrap_or(flipped);
            (q, String::new(), "first letter case flipped".to_string())
        }
        1 => {
            let typo = if lname.len() > 3 {
                format!("{}s", &lname[..lname.len() - 1])
            } else {
                format!("{lname}s")
            };
            let q = pfx.map(|p| format!("{p}:{typo}")).unwrap_or(typo);
            (q, String::new(), "typo in the local name".to_string())
        }
        2 => {
            // No namespace at all.
            if pfx.is_some() {
                let label = match ns_of(s, doc, i, None) {
                    Some(uri) if !uri.is_empty() => {
                        format!("prefix removed (default namespace {uri})")
                    }
                    _ => "prefix removed (no namespace)".to_string(),
                };
                (lname.to_string(), String::new(), label)
            } else {
                (
                    lname.to_string(),
                    " xmlns=\"\"".to_string(),
                    "default namespace undeclared (no namespace)".to_string(),
                )
            }
        }
        3 => {
            let others: Vec<&str> = OTHER_NS
                .iter()
                .copied()
                .filter(|u| Some(*u) != own_ns.as_deref())
                .collect();
            let uri = *rng.pick(&others);
            (
                format!("alt:{lname}"),
                format!(" xmlns:alt=\"{uri}\""),
                format!("put in namespace {uri}"),
            )
        }
        _ => match own_ns {
            // Same namespace under another prefix: must stay valid.
            Some(uri) => (
                format!("alt:{lname}"),
                format!(" xmlns:alt=\"{uri}\""),
                "same namespace, prefix alt (still valid)".to_string(),
            ),
            None => (
                format!("{lname}X"),
                String::new(),
                "local name suffixed".to_string(),
            ),
        },
    };
    let tag = &s[e.start..e.start_end];
    let decl = if !decl.is_empty() && has_attr(tag, decl.trim().split('=').next().unwrap_or("")) {
        // Already declared on this element: a second declaration would be a duplicate attribute.
        return mutate_comment(s, doc, rng);
    } else {
        decl
    };
    let mut edits = vec![(
        e.start + 1,
        e.start + 1 + e.name.len(),
        format!("{new_name}{decl}"),
    )];
    if !e.self_closing {
        edits.push((
            e.end_start + 2,
            e.end_start + 2 + e.name.len(),
            new_name.clone(),
        ));
    }
    (
        apply(s, edits),
        format!("rename {} to {new_name}: {label}", doc.path(i)),
        false,
    )
}

fn mutate_broken(s: &str, doc: &Doc, rng: &mut Rng) -> (String, String, bool) {
    let non_root = doc.non_root();
    let closed: Vec<usize> = (0..doc.elems.len())
        .filter(|&i| !doc.elems[i].self_closing)
        .collect();
    let leaves: Vec<usize> = doc
        .leaves()
        .into_iter()
        .filter(|&i| !doc.elems[i].self_closing)
        .collect();
    match rng.below(6) {
        0 if !closed.is_empty() => {
            let i = *rng.pick(&closed);
            let e = &doc.elems[i];
            (
                apply(s, vec![(e.end_start, e.end, String::new())]),
                format!("end tag of {} removed (not well-formed)", doc.path(i)),
                true,
            )
        }
        1 if !closed.is_empty() => {
            let i = *rng.pick(&closed);
            let e = &doc.elems[i];
            let bad = format!("{}Z", e.name);
            (
                apply(
                    s,
                    vec![(e.end_start + 2, e.end_start + 2 + e.name.len(), bad)],
                ),
                format!("end tag of {} misspelt (not well-formed)", doc.path(i)),
                true,
            )
        }
        2 if !leaves.is_empty() => {
            let i = *rng.pick(&leaves);
            let e = &doc.elems[i];
            let t = if rng.below(2) == 0 { " & " } else { " < " };
            (
                apply(s, vec![(e.end_start, e.end_start, t.to_string())]),
                format!(
                    "raw {:?} in the text of {} (not well-formed)",
                    t.trim(),
                    doc.path(i)
                ),
                true,
            )
        }
        3 => {
            let i = rng.below(doc.elems.len());
            let e = &doc.elems[i];
            let at = e.start + 1 + e.name.len();
            (
                apply(s, vec![(at, at, " a=\"1\" a=\"2\"".to_string())]),
                format!("duplicate attribute on {} (not well-formed)", doc.path(i)),
                true,
            )
        }
        4 if !non_root.is_empty() => {
            let i = *rng.pick(&non_root);
            let e = &doc.elems[i];
            let lname = local(&e.name);
            let mut edits = vec![(
                e.start + 1,
                e.start + 1 + e.name.len(),
                format!("zz:{lname}"),
            )];
            if !e.self_closing {
                edits.push((
                    e.end_start + 2,
                    e.end_start + 2 + e.name.len(),
                    format!("zz:{lname}"),
                ));
            }
            (
                apply(s, edits),
                format!(
                    "undeclared prefix zz on {} (not namespace-well-formed)",
                    doc.path(i)
                ),
                true,
            )
        }
        _ => {
            let e = &doc.elems[doc.root];
            let lo = e.start_end;
            let hi = e.end_start.max(lo + 1);
            let mut cut = lo + rng.below(hi - lo);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            (
                s[..cut].to_string(),
                format!("document truncated at byte {cut} (not well-formed)"),
                true,
            )
        }
    }
}

/// Input that our tokenizer cannot walk: append a comment (or, if even that is pointless,
/// return it unchanged) so the caller still gets a deterministic result.
fn fallback(s: &str, rng: &mut Rng) -> (String, String) {
    if rng.below(2) == 0 {
        (
            format!("{s}<!-- pdd mutator -->"),
            "input not walkable: comment appended".to_string(),
        )
    } else {
        (s.to_string(), "input not walkable: unchanged".to_string())
    }
}
