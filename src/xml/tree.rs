//! Writing XML from a tree of elements built in code (the Europass CV): elements without text,
//! attributes or non-empty children are dropped when written, so a builder can pass absent data
//! along without checking it. Indented, two spaces a level.

use super::{escape_attr, escape_text};

/// An element to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: &'static str,
    pub attrs: Vec<(&'static str, String)>,
    pub text: Option<String>,
    pub children: Vec<Node>,
    /// Written even when empty.
    pub always: bool,
}

impl Node {
    /// An element with children.
    pub fn el(name: &'static str, children: Vec<Node>) -> Node {
        Node {
            name,
            attrs: Vec::new(),
            text: None,
            children,
            always: false,
        }
    }

    /// An element with text, absent when `text` is None.
    pub fn leaf(name: &'static str, text: Option<String>) -> Node {
        Node {
            text,
            ..Node::el(name, Vec::new())
        }
    }

    /// An element with attributes only, absent when there are none.
    pub fn attrs(name: &'static str, attrs: Vec<(&'static str, String)>) -> Node {
        Node {
            attrs,
            ..Node::el(name, Vec::new())
        }
    }

    /// Whether it would be dropped.
    pub fn is_empty(&self) -> bool {
        !self.always
            && self.text.is_none()
            && self.attrs.is_empty()
            && self.children.iter().all(Node::is_empty)
    }

    /// The element at `level` of indentation. An element has text or children, not both.
    pub fn write(&self, out: &mut String, level: usize) {
        for _ in 0..level {
            out.push_str("  ");
        }
        out.push('<');
        out.push_str(self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape_attr(v));
            out.push('"');
        }
        let children: Vec<&Node> = self.children.iter().filter(|f| !f.is_empty()).collect();
        match (&self.text, children.is_empty()) {
            (None, true) => out.push_str("/>\n"),
            (Some(t), true) => {
                out.push('>');
                out.push_str(&escape_text(t));
                out.push_str("</");
                out.push_str(self.name);
                out.push_str(">\n");
            }
            (_, false) => {
                out.push_str(">\n");
                for f in children {
                    f.write(out, level + 1);
                }
                for _ in 0..level {
                    out.push_str("  ");
                }
                out.push_str("</");
                out.push_str(self.name);
                out.push_str(">\n");
            }
        }
    }

    /// A whole document: the XML declaration and this element as its root.
    pub fn document(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_elements_are_dropped_and_text_escaped() {
        let mut root = Node::el(
            "R",
            vec![
                Node::leaf("A", Some("x < y & \"z\"".into())),
                Node::leaf("B", None),
                Node::el("C", vec![Node::leaf("D", None)]),
                Node::attrs("E", vec![("year", "2026".into())]),
            ],
        );
        root.attrs = vec![("xmlns", "urn:x".into())];
        assert_eq!(
            root.document(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"urn:x\">\n  <A>x &lt; y &amp; \"z\"</A>\n  <E year=\"2026\"/>\n</R>\n"
        );
        let mut vuoto = Node::el("V", vec![]);
        assert!(vuoto.is_empty());
        vuoto.always = true;
        assert_eq!(vuoto.document().lines().nth(1), Some("<V/>"));
    }
}
