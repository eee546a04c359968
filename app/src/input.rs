//! Strict JSON for every edge that takes JSON from outside (HTTP bodies, NATS lead events):
//! a body is read into a `serde_json::Value` only when it is valid UTF-8 without a byte-order
//! mark, nests at most [`MAX_DEPTH`] deep, repeats no key within an object, and holds no
//! NUL or other control character (but tab, line feed, carriage return) and no text longer
//! than [`MAX_TEXT_CHARS`](leadroute_domain::limits::MAX_TEXT_CHARS) in any key or string.
//! A refusal names the path of the value at fault (`fields.company`, `entries[0].target`).
//! Typed deserialization happens after this, from the checked value; nothing here knows the
//! shape of any body.

use leadroute_domain::limits::{self, TextFault};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Deepest nesting of arrays and objects in a body.
pub const MAX_DEPTH: usize = 32;

/// Why a body is not acceptable JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFault {
    /// Path of the value at fault below the body (`fields.company`); empty for the body as a
    /// whole (syntax errors).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// True when the body is not JSON at all (syntax, encoding); false when it is JSON
    /// whose content breaks a limit.
    pub syntax: bool,
}

impl fmt::Display for JsonFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parse `bytes` as strict JSON (see the module docs).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonFault> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(syntax(
            "the body starts with a byte-order mark; send plain UTF-8",
        ));
    }
    let fault = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let node = Node {
        fault: &fault,
        parent: None,
        segment: Segment::Root,
        depth: 0,
    };
    let parsed = node.deserialize(&mut de).and_then(|value| {
        de.end()?;
        Ok(value)
    });
    match (parsed, fault.into_inner()) {
        (Ok(value), None) => Ok(value),
        (_, Some(fault)) => Err(fault),
        (Err(e), None) => Err(syntax(&e.to_string())),
    }
}

fn syntax(message: &str) -> JsonFault {
    JsonFault {
        path: String::new(),
        message: message.to_string(),
        syntax: true,
    }
}

/// Where a value sits below its parent.
#[derive(Clone, Copy)]
enum Segment<'a> {
    /// The body itself.
    Root,
    /// A key of an object.
    Key(&'a str),
    /// An index of an array.
    Index(usize),
}

/// One value being read, with the way to it (built into a path only for a refusal, so a
/// valid body costs no path strings).
struct Node<'a> {
    fault: &'a RefCell<Option<JsonFault>>,
    parent: Option<&'a Node<'a>>,
    segment: Segment<'a>,
    depth: usize,
}

impl<'a> Node<'a> {
    fn child(&'a self, segment: Segment<'a>) -> Node<'a> {
        Node {
            fault: self.fault,
            parent: Some(self),
            segment,
            depth: self.depth + 1,
        }
    }

    /// `fields.company`, `entries[0].target`; empty for the body.
    fn path(&self) -> String {
        let mut segments = Vec::new();
        let mut node = Some(self);
        while let Some(n) = node {
            segments.push(n.segment);
            node = n.parent;
        }
        let mut path = String::new();
        for segment in segments.into_iter().rev() {
            match segment {
                Segment::Root => {}
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&limits::printable(key));
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        path
    }

    /// Record the fault at this node and abort the parse.
    fn refuse<E: de::Error>(&self, message: impl FnOnce(&str) -> String) -> E {
        let path = self.path();
        let message = message(&path);
        *self.fault.borrow_mut() = Some(JsonFault {
            path,
            message,
            syntax: false,
        });
        E::custom("refused")
    }

    fn check_text<E: de::Error>(&self, text: &str) -> Result<(), E> {
        limits::text("", text, limits::MAX_TEXT_CHARS).map_err(|fault: TextFault| {
            self.refuse(|path| {
                let shown = if path.is_empty() { "body" } else { path };
                fault.named(shown).to_string()
            })
        })
    }

    fn nest<E: de::Error>(&self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(|_| format!("the body nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| self.refuse(|_| "not a finite number".into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.check_text(v)?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_text(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.nest()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(Segment::Index(items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.nest()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(Segment::Key(&key));
            child.check_text(&key)?;
            if object.contains_key(&key) {
                return Err(child.refuse(|path| format!("`{path}` appears twice")));
            }
            let value = map.next_value_seed(child)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(body: &str) -> JsonFault {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_plain_json() {
        let value = parse(br#"{"a": [1, 2.5, "x\ny", null, true], "b": {"c": -3}}"#).unwrap();
        assert_eq!(value["b"]["c"], -3);
    }

    #[test]
    fn refuses_nul_in_values_and_keys_naming_the_path() {
        let nul_value = fault(r#"{"fields": {"company": "Glo\u0000bex"}}"#);
        assert_eq!(
            (nul_value.path.as_str(), nul_value.syntax),
            ("fields.company", false)
        );
        assert!(nul_value.message.contains("NUL"), "{nul_value:?}");
        let nul_key = fault(r#"{"fields": {"comp\u0000any": 1}}"#);
        assert_eq!(nul_key.path, "fields.comp\\0any");
        assert_eq!(fault(r#"["\u0001"]"#).path, "[0]");
    }

    #[test]
    fn refuses_duplicate_keys_deep_nesting_and_long_text() {
        assert_eq!(fault(r#"{"a": 1, "a": 2}"#).path, "a");
        assert!(fault(r#"{"a": 1, "a": 2}"#).message.contains("twice"));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(fault(&deep).message.contains("deeper"));
        let shallow = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(shallow.as_bytes()).is_ok());
        let long = format!(r#"{{"t": "{}"}}"#, "x".repeat(limits::MAX_TEXT_CHARS + 1));
        assert_eq!(fault(&long).path, "t");
    }

    #[test]
    fn refuses_encodings_other_than_plain_utf8() {
        assert!(fault("\u{feff}{}").syntax);
        assert!(parse(b"{\"a\": \"\xff\"}").unwrap_err().syntax);
        assert!(fault("{\"a\": 1} trailing").syntax);
        assert!(fault(r#"{"a": 1e400}"#).syntax);
    }

    #[test]
    fn a_pathological_depth_never_overflows_the_stack() {
        let deep = "[".repeat(1_000_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
