//! YAML (and JSON, its subset) as CloudFormation writes it: a tree of
//! nodes that keep their line and their tag, so that the short-form
//! intrinsics (`!Ref X`, `!Sub "…"`, `!GetAtt A.B`) reach the template's
//! reader as tags and every error can name its line. Parsed with
//! `yaml-rust2`'s event parser; anchors and aliases are expanded.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line where the node starts.
    pub line: usize,
    /// A local tag without its `!` (`Ref`, `Sub`, `GetAtt`), if any.
    pub tag: Option<String>,
    /// What the node holds.
    pub value: Value,
}

/// A node's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar's text; `quoted` when it was written in quotes or as a
    /// block (so `"3"` stays a string where `3` is a number).
    Scalar {
        /// The text.
        text: String,
        /// Written quoted or as a block scalar.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in file order.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error, with its line.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Node {
    /// The node's text if it is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value at `key` if the node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The mapping's entries (nothing for another kind of node).
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A null scalar (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
            && self.tag.is_none()
    }
}

/// Parses one YAML document (an empty text is a null node).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|error| SyntaxError {
            line: error.marker().line().max(1),
            message: error.info().to_string(),
        })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok(builder.root.unwrap_or(Node {
        line: 1,
        tag: None,
        value: Value::Scalar {
            text: String::new(),
            quoted: false,
        },
    }))
}

/// Builds the tree from the parser's events.
#[derive(Default)]
struct Builder {
    /// Open collections: the node, its anchor, and a pending mapping key.
    stack: Vec<(Node, usize, Option<Node>)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    /// Adds a finished node to the collection being built, or makes it the root.
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some((parent, _, pending_key)) = self.stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return;
        };
        match &mut parent.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => *pending_key = Some(node),
            },
            Value::Scalar { .. } => {}
        }
    }
}

/// `!Ref` → `Ref`; a tag of any other handle keeps its full name.
fn local_tag(tag: Option<Tag>) -> Option<String> {
    tag.map(|tag| {
        if tag.handle == "!" {
            tag.suffix
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        }
    })
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line().max(1);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let node = Node {
                    line,
                    tag: local_tag(tag),
                    value: Value::Scalar { text, quoted },
                };
                self.push(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => self.stack.push((
                Node {
                    line,
                    tag: local_tag(tag),
                    value: Value::Seq(Vec::new()),
                },
                anchor,
                None,
            )),
            Event::MappingStart(anchor, tag) => self.stack.push((
                Node {
                    line,
                    tag: local_tag(tag),
                    value: Value::Map(Vec::new()),
                },
                anchor,
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, _)) = self.stack.pop() {
                    self.push(node, anchor);
                }
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(node) => self.push(node, 0),
                None => {
                    self.error.get_or_insert(SyntaxError {
                        line,
                        message: "an alias to an unknown anchor".into(),
                    });
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Node {
        parse(text).unwrap_or_else(|error| panic!("{}: {error}", error.line))
    }

    #[test]
    fn tags_lines_and_aliases() {
        let root = ok("A:\n  B: !Ref Stage\n  C: !Sub \"${X}-y\"\n  D: !GetAtt [F, Arn]\nE: &e [1, \"2\"]\nG: *e\n");
        let b = root.get("A").and_then(|a| a.get("B"));
        assert_eq!(
            b.map(|b| (b.line, b.tag.as_deref())),
            Some((2, Some("Ref")))
        );
        assert_eq!(b.and_then(Node::as_str), Some("Stage"));
        let d = root.get("A").and_then(|a| a.get("D"));
        assert!(matches!(d.map(|d| &d.value), Some(Value::Seq(items)) if items.len() == 2));
        assert_eq!(d.and_then(|d| d.tag.as_deref()), Some("GetAtt"));
        assert_eq!(
            root.get("G").map(|g| &g.value),
            root.get("E").map(|e| &e.value)
        );
        let Some(Value::Seq(items)) = root.get("E").map(|e| &e.value) else {
            panic!("sequence")
        };
        assert!(matches!(
            &items[1].value,
            Value::Scalar { quoted: true, .. }
        ));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let error = parse("A:\n  B: [1, 2\nC: 3\n").err();
        assert!(error.is_some_and(|e| e.line >= 2));
        let error = parse("A: 1\n B: 2\n").err();
        assert_eq!(error.map(|e| e.line), Some(2));
    }
}
