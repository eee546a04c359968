//! The bounds of everything a caller may store: lengths of names, ids and field values, the
//! number and nesting of lead fields, and the characters text may hold. One place for every
//! edge (HTTP, NATS intake, CLI) and for the aggregates themselves, so that no input can
//! produce an event too large for NATS or a read-model index, or text PostgreSQL cannot
//! store (a NUL). Pure: no I/O.

use serde_json::Value;
use std::collections::BTreeMap;

/// Most characters of a display name (accounts, contacts, queues, pools, orgs, keys).
pub const MAX_NAME_CHARS: usize = 200;
/// Most characters of an email address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most characters of an identifier given by a caller (upstream ids, idempotency keys).
pub const MAX_ID_CHARS: usize = 256;
/// Most characters of a lead field's name.
pub const MAX_FIELD_NAME_CHARS: usize = 100;
/// Most characters of one text value in a lead field.
pub const MAX_FIELD_VALUE_CHARS: usize = 10_000;
/// Most fields of one lead event.
pub const MAX_FIELDS: usize = 200;
/// Most items of one array or object inside a lead field value.
pub const MAX_FIELD_ITEMS: usize = 100;
/// Deepest nesting of a lead field value (a scalar is depth 0; `[1]` is depth 1).
pub const MAX_FIELD_DEPTH: usize = 3;
/// Most bytes of a lead event's fields written as JSON.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;
/// Most bytes of free text (templates, reasons) in one value.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Most characters of a note a person adds to a command (a decline's free text).
pub const MAX_NOTE_CHARS: usize = 2_000;
/// Most characters of a code a person or an admin names (a decline reason).
pub const MAX_CODE_CHARS: usize = 64;

/// Most bytes of one stored event's payload as JSON: far below NATS's default 1 MiB
/// message, including the envelope the publisher adds.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

/// What is wrong with a value, naming the field (`fields.company`, `name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextFault {
    /// A NUL character, which PostgreSQL cannot store in text.
    #[error("`{0}` contains a NUL character")]
    Nul(String),
    /// Another control character (only tab, line feed and carriage return are allowed).
    #[error("`{0}` contains the control character U+{1:04X}")]
    Control(String, u32),
    /// Longer than allowed.
    #[error("`{0}` is longer than {1} characters")]
    TooLong(String, usize),
    /// Empty (or only whitespace) where a value is required.
    #[error("`{0}` must not be empty")]
    Empty(String),
    /// More entries than allowed.
    #[error("`{0}` has more than {1} entries")]
    TooMany(String, usize),
    /// Nested deeper than allowed.
    #[error("`{0}` nests deeper than {1} levels")]
    TooDeep(String, usize),
    /// Larger than allowed as JSON.
    #[error("`{0}` is larger than {1} bytes as JSON")]
    TooLarge(String, usize),
}

impl TextFault {
    /// The same fault, naming `field` instead.
    pub fn named(self, field: impl Into<String>) -> TextFault {
        let field = field.into();
        match self {
            TextFault::Nul(_) => TextFault::Nul(field),
            TextFault::Control(_, c) => TextFault::Control(field, c),
            TextFault::TooLong(_, n) => TextFault::TooLong(field, n),
            TextFault::Empty(_) => TextFault::Empty(field),
            TextFault::TooMany(_, n) => TextFault::TooMany(field, n),
            TextFault::TooDeep(_, n) => TextFault::TooDeep(field, n),
            TextFault::TooLarge(_, n) => TextFault::TooLarge(field, n),
        }
    }

    /// The field the fault names.
    pub fn field(&self) -> &str {
        match self {
            TextFault::Nul(f)
            | TextFault::Control(f, _)
            | TextFault::TooLong(f, _)
            | TextFault::Empty(f)
            | TextFault::TooMany(f, _)
            | TextFault::TooDeep(f, _)
            | TextFault::TooLarge(f, _) => f,
        }
    }
}

/// `value` holds no NUL or control character other than tab, line feed and carriage
/// return, and at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), TextFault> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(match c {
            '\0' => TextFault::Nul(field.to_string()),
            c => TextFault::Control(field.to_string(), c as u32),
        });
    }
    // Counting stops at the first character past the limit.
    if value.chars().nth(max).is_some() {
        return Err(TextFault::TooLong(field.to_string(), max));
    }
    Ok(())
}

/// A one-line value: [`text`] without line breaks or tabs either, trimmed, not empty.
pub fn line(field: &str, value: &str, max: usize) -> Result<String, TextFault> {
    let trimmed = value.trim();
    if let Some(c) = trimmed.chars().find(|c| matches!(c, '\t' | '\n' | '\r')) {
        return Err(TextFault::Control(field.to_string(), c as u32));
    }
    text(field, trimmed, max)?;
    if trimmed.is_empty() {
        return Err(TextFault::Empty(field.to_string()));
    }
    Ok(trimmed.to_string())
}

/// Lead fields: at most [`MAX_FIELDS`] names of at most [`MAX_FIELD_NAME_CHARS`] one-line
/// characters; values nested at most [`MAX_FIELD_DEPTH`] deep, [`MAX_FIELD_ITEMS`] items
/// per array or object, text values at most [`MAX_FIELD_VALUE_CHARS`]; at most
/// [`MAX_FIELDS_BYTES`] as JSON in all.
pub fn lead_fields(root: &str, fields: &BTreeMap<String, Value>) -> Result<(), TextFault> {
    lead_fields_within(root, fields, usize::MAX)
}

/// [`lead_fields`] for fields known to take at most `upper_bound` bytes as JSON (the size
/// of the body they came in): the size is measured only when that bound is over the limit.
pub fn lead_fields_within(
    root: &str,
    fields: &BTreeMap<String, Value>,
    upper_bound: usize,
) -> Result<(), TextFault> {
    if fields.len() > MAX_FIELDS {
        return Err(TextFault::TooMany(root.to_string(), MAX_FIELDS));
    }
    for (name, value) in fields {
        let path = format!("{root}.{}", printable(name));
        line(&path, name, MAX_FIELD_NAME_CHARS)?;
        field_value(&path, value, 0)?;
    }
    if upper_bound <= MAX_FIELDS_BYTES {
        return Ok(());
    }
    let bytes = serde_json::to_vec(fields).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_FIELDS_BYTES {
        return Err(TextFault::TooLarge(root.to_string(), MAX_FIELDS_BYTES));
    }
    Ok(())
}

fn field_value(path: &str, value: &Value, depth: usize) -> Result<(), TextFault> {
    let nested = |len: usize| {
        if depth >= MAX_FIELD_DEPTH {
            Err(TextFault::TooDeep(path.to_string(), MAX_FIELD_DEPTH))
        } else if len > MAX_FIELD_ITEMS {
            Err(TextFault::TooMany(path.to_string(), MAX_FIELD_ITEMS))
        } else {
            Ok(())
        }
    };
    match value {
        Value::String(s) => text(path, s, MAX_FIELD_VALUE_CHARS),
        Value::Array(items) => {
            nested(items.len())?;
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| field_value(&format!("{path}[{i}]"), item, depth + 1))
        }
        Value::Object(map) => {
            nested(map.len())?;
            map.iter().try_for_each(|(key, item)| {
                let inner = format!("{path}.{}", printable(key));
                text(&inner, key, MAX_FIELD_NAME_CHARS)?;
                field_value(&inner, item, depth + 1)
            })
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// A name as it may appear inside a fault's field path: on one line, control characters
/// escaped (`\0`), cut to a readable length, so the path itself can always be stored and
/// shown.
pub fn printable(name: &str) -> String {
    escaped(name, 64, |_| false)
}

/// Text as it can always be stored and shown (dead letters, quarantine reasons): control
/// characters but tab and line breaks escaped (a NUL becomes `\0`), at most `max`
/// characters (then `…`).
pub fn storable(text: &str, max: usize) -> String {
    escaped(text, max, |c| matches!(c, '\t' | '\n' | '\r'))
}

/// `text` with every control character that `keep` does not keep escaped, cut after `max`
/// characters.
fn escaped(text: &str, max: usize, keep: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() && !keep(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn text_refuses_nul_and_control_characters_but_keeps_line_breaks() {
        assert_eq!(text("f", "a\0b", 10), Err(TextFault::Nul("f".into())));
        assert_eq!(
            text("f", "a\u{1}b", 10),
            Err(TextFault::Control("f".into(), 1))
        );
        assert_eq!(text("f", "a\nb\tc\r", 10), Ok(()));
        assert_eq!(text("f", "ééééé", 5), Ok(()));
        assert_eq!(
            text("f", "ééééé!", 5),
            Err(TextFault::TooLong("f".into(), 5))
        );
    }

    #[test]
    fn storable_text_keeps_line_breaks_escapes_the_rest_and_is_cut() {
        assert_eq!(storable("a\0b\nc\u{1}", 10), "a\\0b\nc\\u{1}");
        assert_eq!(storable("abcdef", 3), "abc…");
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(
            TextFault::Nul("x".into()).named("y"),
            TextFault::Nul("y".into())
        );
    }

    #[test]
    fn a_line_is_trimmed_one_line_and_not_empty() {
        assert_eq!(line("name", "  Globex ", 10), Ok("Globex".into()));
        assert_eq!(
            line("name", "   ", 10),
            Err(TextFault::Empty("name".into()))
        );
        assert_eq!(
            line("name", "Glo\nbex", 10),
            Err(TextFault::Control("name".into(), 10))
        );
    }

    #[test]
    fn lead_fields_name_the_field_at_fault() {
        assert_eq!(
            lead_fields("fields", &fields(json!({"a": [1, {"b": "c"}]}))),
            Ok(())
        );
        let nul_key = fields(json!({"comp\u{0}any": 1}));
        assert_eq!(
            lead_fields("fields", &nul_key),
            Err(TextFault::Nul("fields.comp\\0any".into()))
        );
        let nul_value = fields(json!({"company": {"name": "x\u{0}"}}));
        assert_eq!(
            lead_fields("fields", &nul_value).unwrap_err().field(),
            "fields.company.name"
        );
        let deep = fields(json!({"d": [[[["deep"]]]]}));
        assert_eq!(
            lead_fields("fields", &deep),
            Err(TextFault::TooDeep(
                "fields.d[0][0][0]".into(),
                MAX_FIELD_DEPTH
            ))
        );
        let long = fields(json!({"note": "x".repeat(MAX_FIELD_VALUE_CHARS + 1)}));
        assert!(matches!(
            lead_fields("fields", &long),
            Err(TextFault::TooLong(..))
        ));
        let many: BTreeMap<String, Value> = (0..=MAX_FIELDS)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect();
        assert!(matches!(
            lead_fields("fields", &many),
            Err(TextFault::TooMany(..))
        ));
        let large: BTreeMap<String, Value> = (0..10)
            .map(|i| (format!("f{i}"), json!("y".repeat(MAX_FIELD_VALUE_CHARS))))
            .collect();
        assert_eq!(
            lead_fields("fields", &large),
            Err(TextFault::TooLarge("fields".into(), MAX_FIELDS_BYTES))
        );
        // Measured only when the bound the caller knows could exceed the limit.
        assert_eq!(
            lead_fields_within("fields", &large, 200_000),
            Err(TextFault::TooLarge("fields".into(), MAX_FIELDS_BYTES))
        );
        assert_eq!(lead_fields_within("fields", &large, 1_000), Ok(()));
    }

    #[test]
    fn zeros_in_bulk_are_refused_by_size() {
        let zeros = fields(json!({"z": vec![0; MAX_FIELD_ITEMS]}));
        assert_eq!(lead_fields("fields", &zeros), Ok(()));
        let more = fields(json!({"z": vec![0; MAX_FIELD_ITEMS + 1]}));
        assert!(matches!(
            lead_fields("fields", &more),
            Err(TextFault::TooMany(..))
        ));
    }
}
