//! YAML text → a tree of nodes that remember their line and column, so that every later check
//! can point at the exact place. Uses serde-saphyr (duplicate keys rejected where they stand,
//! merge keys, no unsafe). No I/O.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key (keys are always read as strings).
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
    /// The node as JSON without positions, mapping keys sorted: equal for two texts that
    /// differ only in layout, comments, key order or quoting.
    pub fn canonical(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::canonical).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.canonical()))
                    .collect(),
            ),
        }
    }
}

impl Value {
    /// What a person would call this kind of value, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error with its position and a message without saphyr's own prefix.
#[derive(Debug)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    match serde_saphyr::from_str::<Spanned<RawValue>>(text) {
        Ok(root) => Ok(convert(root)),
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or(Pos { line: 1, column: 1 });
            Err(SyntaxError {
                pos,
                message: clean_message(&e.to_string()),
            })
        }
    }
}

/// saphyr renders `error: line L column C: message` and then a snippet; keep the message.
fn clean_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or(rendered);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.find(": ") {
        Some(i) if first.starts_with("line ") => &first[i + 2..],
        _ => first,
    };
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    if message.contains("multiple YAML documents") {
        "a second YAML document begins here, after `---`; a file holds one policy or a YAML list of policies (`- name: a` ... `- name: b`), or put each policy in a file of its own".to_string()
    } else if message.contains("tab") {
        format!("{message}; indent YAML with spaces, not tabs")
    } else if message.is_empty() {
        "not valid YAML".to_string()
    } else {
        format!("not valid YAML: {message}")
    }
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: s.referenced.line(),
        column: s.referenced.column(),
    }
}

fn convert(raw: Spanned<RawValue>) -> Node {
    let pos = pos_of(&raw);
    let value = match raw.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(convert).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = Key {
                        pos: pos_of(&k),
                        name: k.value,
                    };
                    (key, convert(v))
                })
                .collect(),
        ),
    };
    Node { value, pos }
}

/// What serde-saphyr builds; `Spanned` children carry their positions.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<String>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let node = parse("name: x\nkeep:\n  daily: 7\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!()
        };
        let (key, keep) = &entries[1];
        assert_eq!(
            (key.name.as_str(), key.pos),
            ("keep", Pos { line: 2, column: 1 })
        );
        let Value::Map(inner) = &keep.value else {
            panic!()
        };
        assert_eq!(
            inner[0].1.pos,
            Pos {
                line: 3,
                column: 10
            }
        );
        assert_eq!(inner[0].1.value, Value::Int(7));
    }

    #[test]
    fn duplicate_keys_tabs_and_garbage_are_located_errors() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            (e.pos.line, e.message.as_str()),
            (2, "not valid YAML: duplicate mapping key: a")
        );
        let e = parse("a:\n\tb: 1\n").unwrap_err();
        assert!(e.message.contains("spaces, not tabs"), "{}", e.message);
        let e = parse("[1, 2").unwrap_err();
        assert!(e.message.starts_with("not valid YAML"), "{}", e.message);
    }

    #[test]
    fn a_second_document_is_explained_in_our_words() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.starts_with("a second YAML document begins here, after `---`; a file holds one policy or a YAML list"), "{}", e.message);
        assert!(!e.message.contains("from_str_multiple"));
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap().value, Value::Null);
    }
}
