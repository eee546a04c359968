//! Criteria on lead fields and how a lead's field values match them (FEATURES.md, "Routing
//! semantics"): text compares case-insensitively with surrounding whitespace trimmed;
//! numeric ranges include both ends; a missing field never matches equals, in, prefix,
//! contains or a range, and matches "is empty" (as an empty string does) and "not equals".

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One condition on one lead field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Criterion {
    /// The field equals `value`.
    Equals {
        /// Lead field name.
        field: String,
        /// Value compared with.
        #[serde(deserialize_with = "text_or_number")]
        value: String,
    },
    /// The field is missing or differs from `value`.
    NotEquals {
        /// Lead field name.
        field: String,
        /// Value compared with.
        #[serde(deserialize_with = "text_or_number")]
        value: String,
    },
    /// The field equals one of `values`.
    In {
        /// Lead field name.
        field: String,
        /// Values compared with.
        #[serde(deserialize_with = "texts_or_numbers")]
        values: Vec<String>,
    },
    /// The field starts with `prefix`.
    Prefix {
        /// Lead field name.
        field: String,
        /// Expected start.
        #[serde(deserialize_with = "text_or_number")]
        prefix: String,
    },
    /// The field contains `text`.
    Contains {
        /// Lead field name.
        field: String,
        /// Expected part.
        #[serde(deserialize_with = "text_or_number")]
        text: String,
    },
    /// The field is a number within `min..=max` (either end may be open).
    Range {
        /// Lead field name.
        field: String,
        /// Lowest value matched, inclusive.
        #[serde(default)]
        min: Option<f64>,
        /// Highest value matched, inclusive.
        #[serde(default)]
        max: Option<f64>,
    },
    /// The field is missing, null or blank.
    IsEmpty {
        /// Lead field name.
        field: String,
    },
}

/// A compared value given as text, or as a number or a boolean (kept as the text a lead
/// field of that value compares as): `{"op": "equals", "value": 1}` means "1".
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(TextVisitor)
}

/// A list of compared values, each text, a number or a boolean.
fn texts_or_numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Text(#[serde(deserialize_with = "text_or_number")] String);
    Ok(Vec::<Text>::deserialize(d)?
        .into_iter()
        .map(|t| t.0)
        .collect())
}

struct TextVisitor;

impl serde::de::Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("text or a number")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        Ok(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// Text as criteria compare it: trimmed, lower-case.
pub fn normalize(text: &str) -> String {
    text.trim().to_lowercase()
}

/// A lead field value as text (`None` when missing, null or blank), normalized.
pub fn field_text(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::Null => return None,
        Value::String(s) => normalize(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => normalize(&other.to_string()),
    };
    (!text.is_empty()).then_some(text)
}

/// A lead field value as criteria compare it: normalized text and, if it reads as one, a
/// number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldValue {
    /// Normalized text; `None` when missing, null or blank.
    pub text: Option<String>,
    /// The value as a number, if it is one (or numeric text).
    pub number: Option<f64>,
}

impl FieldValue {
    /// Normalize `value`.
    pub fn of(value: Option<&Value>) -> FieldValue {
        FieldValue {
            text: field_text(value),
            number: field_number(value),
        }
    }
}

fn field_number(value: Option<&Value>) -> Option<f64> {
    let number = match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    // "inf" and "NaN" parse, but are not numbers a range should match.
    number.filter(|n| n.is_finite())
}

impl Criterion {
    /// The field it looks at.
    pub fn field(&self) -> &str {
        match self {
            Criterion::Equals { field, .. }
            | Criterion::NotEquals { field, .. }
            | Criterion::In { field, .. }
            | Criterion::Prefix { field, .. }
            | Criterion::Contains { field, .. }
            | Criterion::Range { field, .. }
            | Criterion::IsEmpty { field } => field,
        }
    }

    /// The same criterion with its texts normalized, as compiled rules hold them.
    pub fn normalized(&self) -> Criterion {
        let mut c = self.clone();
        match &mut c {
            Criterion::Equals { value, .. } | Criterion::NotEquals { value, .. } => {
                *value = normalize(value)
            }
            Criterion::In { values, .. } => {
                for v in values.iter_mut() {
                    *v = normalize(v);
                }
            }
            Criterion::Prefix { prefix: t, .. } | Criterion::Contains { text: t, .. } => {
                *t = normalize(t)
            }
            Criterion::Range { .. } | Criterion::IsEmpty { .. } => {}
        }
        c
    }

    /// Whether a lead with `value` in this criterion's field matches. Expects a
    /// [`Criterion::normalized`] criterion.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        self.matches_value(&FieldValue::of(value))
    }

    /// [`Criterion::matches`] on a value normalized once for every criterion of a lead.
    pub fn matches_value(&self, value: &FieldValue) -> bool {
        match self {
            Criterion::Range { min, max, .. } => value
                .number
                .is_some_and(|n| min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)),
            Criterion::IsEmpty { .. } => value.text.is_none(),
            Criterion::NotEquals {
                value: expected, ..
            } => value.text.as_deref() != Some(expected.as_str()),
            _ => value
                .text
                .as_deref()
                .is_some_and(|text| self.matches_text(text)),
        }
    }

    fn matches_text(&self, text: &str) -> bool {
        match self {
            Criterion::Equals { value, .. } => text == value,
            Criterion::In { values, .. } => values.iter().any(|v| v == text),
            Criterion::Prefix { prefix, .. } => text.starts_with(prefix.as_str()),
            Criterion::Contains { text: part, .. } => text.contains(part.as_str()),
            _ => false,
        }
    }

    /// Why the criterion cannot be published, if it is malformed.
    pub fn problem(&self) -> Option<String> {
        let field = self.field();
        if field.trim().is_empty() {
            return Some("a criterion names no field".into());
        }
        match self {
            Criterion::In { values, .. } if values.is_empty() => {
                Some(format!("`in` on {field} lists no value"))
            }
            Criterion::Range {
                min: None,
                max: None,
                ..
            } => Some(format!("range on {field} has neither min nor max")),
            Criterion::Range {
                min: Some(lo),
                max: Some(hi),
                ..
            } if lo > hi => Some(format!("range on {field} has min above max")),
            Criterion::Range { min, max, .. }
                if min.is_some_and(|m| !m.is_finite()) || max.is_some_and(|m| !m.is_finite()) =>
            {
                Some(format!("range on {field} has a bound that is not a number"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Criterion;
    use serde_json::json;

    fn eq(value: &str) -> Criterion {
        Criterion::Equals {
            field: "country".into(),
            value: value.into(),
        }
        .normalized()
    }

    #[test]
    fn text_compares_case_insensitively_and_trimmed() {
        assert!(eq(" DE ").matches(Some(&json!("de"))));
        assert!(eq("de").matches(Some(&json!("  De"))));
        assert!(!eq("de").matches(Some(&json!("dk"))));
    }

    #[test]
    fn a_missing_field_matches_only_is_empty_and_not_equals() {
        let field = || "country".to_string();
        let criteria = [
            (eq("de"), false),
            (
                Criterion::In {
                    field: field(),
                    values: vec!["de".into()],
                },
                false,
            ),
            (
                Criterion::Prefix {
                    field: field(),
                    prefix: "d".into(),
                },
                false,
            ),
            (
                Criterion::Contains {
                    field: field(),
                    text: "e".into(),
                },
                false,
            ),
            (
                Criterion::Range {
                    field: field(),
                    min: None,
                    max: Some(1.0),
                },
                false,
            ),
            (Criterion::IsEmpty { field: field() }, true),
            (
                Criterion::NotEquals {
                    field: field(),
                    value: "de".into(),
                },
                true,
            ),
        ];
        for (criterion, expected) in criteria {
            assert_eq!(
                criterion.normalized().matches(None),
                expected,
                "{criterion:?}"
            );
            assert_eq!(criterion.normalized().matches(Some(&json!(null))), expected);
        }
        let empty = Criterion::IsEmpty { field: field() };
        assert!(empty.matches(Some(&json!("  "))));
        assert!(!empty.matches(Some(&json!("x"))));
    }

    #[test]
    fn ranges_include_both_ends_and_read_numeric_text() {
        let range = Criterion::Range {
            field: "employees".into(),
            min: Some(100.0),
            max: Some(500.0),
        };
        for (value, expected) in [
            (json!(100), true),
            (json!(500), true),
            (json!("250"), true),
            (json!(99.5), false),
            (json!(501), false),
            (json!("many"), false),
        ] {
            assert_eq!(range.matches(Some(&value)), expected, "{value}");
        }
    }

    #[test]
    fn prefix_contains_and_in_use_the_normalized_text() {
        let prefix = Criterion::Prefix {
            field: "f".into(),
            prefix: "Glo".into(),
        }
        .normalized();
        assert!(prefix.matches(Some(&json!(" globex"))));
        let contains = Criterion::Contains {
            field: "f".into(),
            text: "LOB".into(),
        }
        .normalized();
        assert!(contains.matches(Some(&json!("Globex"))));
        let within = Criterion::In {
            field: "f".into(),
            values: vec!["A".into(), "b".into()],
        }
        .normalized();
        assert!(within.matches(Some(&json!("B"))));
        assert!(!within.matches(Some(&json!("c"))));
    }

    #[test]
    fn malformed_criteria_are_named() {
        let empty_in = Criterion::In {
            field: "f".into(),
            values: vec![],
        };
        assert!(empty_in.problem().is_some());
        let open = Criterion::Range {
            field: "f".into(),
            min: None,
            max: None,
        };
        assert!(open.problem().is_some());
        let upside_down = Criterion::Range {
            field: "f".into(),
            min: Some(2.0),
            max: Some(1.0),
        };
        assert!(upside_down.problem().is_some());
        assert!(eq("x").problem().is_none());
    }
}
