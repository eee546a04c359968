//! Property-based fuzzing of the two parsers that take input from outside: the upstream
//! lead event (`nats::lead_event::parse`, used by NATS intake and `POST /v1/leads`) and the
//! rule set (`input::parse` then the typed `RuleSetSpec`, its `problem()` check and its
//! compilation). Inputs are arbitrary bytes and structured mutations of valid bodies (NUL
//! and control characters, deep nesting, huge values, repeated keys, wrong types). The
//! properties: nothing panics, and whatever is accepted satisfies every limit.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default; the closing note of the
//! failure-isolation issue reports a long run).

use leadroute_app::input;
use leadroute_app::lead_event;
use leadroute_domain::limits;
use leadroute_domain::routing::rules::{CompiledRules, RuleSetSpec};
use proptest::prelude::*;
use serde_json::{json, Value};

fn valid_event() -> Value {
    json!({
        "schema_version": 1, "upstream_event_id": "e1", "upstream_system": "crm",
        "upstream_lead_id": "L1", "occurred_at": "2026-11-28T08:00:00Z",
        "fields": {"company": "Globex", "country": "DE", "employees": 1200}
    })
}

fn valid_rules() -> Value {
    json!({
        "entries": [
            {"criteria": [{"op": "equals", "field": "country", "value": "DE"},
                          {"op": "range", "field": "employees", "min": 100, "max": 5000}],
             "target": {"kind": "queue", "id": "5b4a1c7e-1d2f-4a8e-9f00-000000000001"}},
            {"criteria": [{"op": "in", "field": "industry", "values": ["retail", "food"]}],
             "target": {"kind": "partner_user", "id": "5b4a1c7e-1d2f-4a8e-9f00-000000000002"},
             "keep_owner": true}
        ],
        "watched_fields": ["country"]
    })
}

/// Text that tries the edges: NUL, control characters, long runs, non-ASCII.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[\\x00-\\x1f]{1,4}",
        Just("\u{0}".to_string()),
        (0usize..30_000).prop_map(|n| "x".repeat(n)),
        "\\PC{0,40}",
    ]
}

/// Any JSON value, nested up to a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(nasty_text(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid body with one value replaced somewhere along a path of keys it has or not.
fn mutated(base: Value) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            prop_oneof![
                Just("fields".to_string()),
                Just("entries".to_string()),
                nasty_text()
            ],
            1..4,
        ),
        any_json(),
    )
        .prop_map(move |(path, value)| {
            let mut body = base.clone();
            let mut at = &mut body;
            for key in &path[..path.len() - 1] {
                if !at.is_object() {
                    break;
                }
                at = at
                    .as_object_mut()
                    .expect("an object")
                    .entry(key.clone())
                    .or_insert_with(|| json!({}));
            }
            if let Some(object) = at.as_object_mut() {
                object.insert(path[path.len() - 1].clone(), value);
            }
            body.to_string().into_bytes()
        })
}

/// Byte-level damage to a valid body: a cut, a stray byte, a repeated slice.
fn damaged(base: Value) -> impl Strategy<Value = Vec<u8>> {
    let bytes = base.to_string().into_bytes();
    let len = bytes.len();
    (0..len, any::<u8>(), 0..len).prop_map(move |(at, byte, to)| {
        let mut out = bytes.clone();
        match byte % 3 {
            0 => out.truncate(at),
            1 => out[at] = byte,
            _ => {
                let (from, to) = (at.min(to), at.max(to));
                let slice = out[from..to].to_vec();
                out.splice(from..from, slice);
            }
        }
        out
    })
}

fn bodies(base: Value) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        mutated(base.clone()),
        damaged(base),
    ]
}

fn holds_no_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => !s.contains('\0'),
        Value::Array(items) => items.iter().all(holds_no_nul),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| !k.contains('\0') && holds_no_nul(v)),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_lead_event_parser_never_panics_and_accepts_only_what_the_limits_allow(
        body in bodies(valid_event())
    ) {
        if let Ok(event) = lead_event::parse(&body) {
            prop_assert!(limits::lead_fields("fields", &event.fields).is_ok());
            for id in [&event.upstream_event_id, &event.upstream_system, &event.upstream_lead_id] {
                prop_assert!(limits::line("id", id, limits::MAX_ID_CHARS).is_ok());
            }
            let stored = serde_json::to_value(&event.fields).unwrap();
            prop_assert!(holds_no_nul(&stored));
        }
    }

    #[test]
    fn the_rule_set_parser_never_panics_and_what_it_accepts_compiles(
        body in bodies(valid_rules())
    ) {
        if let Ok(value) = input::parse(&body) {
            prop_assert!(holds_no_nul(&value));
            if let Ok(spec) = serde_json::from_value::<RuleSetSpec>(value) {
                if spec.problem().is_none() {
                    let _ = CompiledRules::compile(&spec);
                }
            }
        }
    }
}
