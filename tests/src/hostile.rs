//! A corpus of hostile lead events, the same bytes for every edge (NATS intake and
//! `POST /v1/leads`): NUL in keys and values, control characters, huge and deep JSON, too
//! many or too large fields, invalid UTF-8, a byte-order mark, duplicate keys, dates out of
//! range, over-long ids, arrays for objects. Each case names the dead-letter reason the intake
//! must give and the body field the HTTP answer must name.

use serde_json::{json, Value};

/// One hostile message.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it tries.
    pub name: &'static str,
    /// The raw message body.
    pub body: Vec<u8>,
    /// The dead-letter reason the intake gives it.
    pub reason: &'static str,
    /// The `field` the HTTP refusal names (`body.fields.company`).
    pub field: &'static str,
}

/// A valid lead event of upstream lead `lead`, event `event`.
pub fn valid(event: &str, lead: &str) -> Value {
    json!({
        "schema_version": 1,
        "upstream_event_id": event,
        "upstream_system": "crm",
        "upstream_lead_id": lead,
        "occurred_at": "2026-11-28T08:00:00Z",
        "fields": {"company": "Globex", "country": "DE"}
    })
}

fn with(mut event: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut event;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    event
}

fn bytes(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Every hostile case, made unique by `tag` (so the same corpus can be sent twice).
pub fn corpus(tag: &str) -> Vec<Case> {
    let base = |n: &str| valid(&format!("{tag}-{n}"), &format!("{tag}-L-{n}"));
    let case = |name, body, reason, field| Case {
        name,
        body,
        reason,
        field,
    };
    let deep = format!(
        r#"{{"schema_version":1,"upstream_event_id":"{tag}-deep","upstream_system":"crm","upstream_lead_id":"{tag}-L-deep","occurred_at":"2026-11-28T08:00:00Z","fields":{{"d":{}1{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut invalid_utf8 = bytes(with(base("utf8"), &["fields", "company"], json!("XX")));
    let at = invalid_utf8
        .windows(2)
        .position(|w| w == b"XX")
        .expect("marker");
    invalid_utf8[at] = 0xff;
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(bytes(base("bom")));
    let duplicate_top = bytes(base("dup-top")).replacen(
        b"\"upstream_system\":\"crm\"",
        b"\"upstream_system\":\"crm\",\"upstream_system\":\"erp\"",
    );
    let duplicate_field = bytes(base("dup-field")).replacen(
        b"\"company\":\"Globex\"",
        b"\"company\":\"Globex\",\"company\":\"Initech\"",
    );
    let many: serde_json::Map<String, Value> =
        (0..201).map(|i| (format!("f{i}"), json!(i))).collect();
    let large: serde_json::Map<String, Value> = (0..10)
        .map(|i| (format!("f{i}"), json!("y".repeat(9_000))))
        .collect();
    vec![
        case(
            "NUL in a field value",
            bytes(with(
                base("nul-value"),
                &["fields", "company"],
                json!("Glo\u{0}bex"),
            )),
            "invalid_event",
            "body.fields.company",
        ),
        case(
            "NUL in a field name",
            bytes(with(
                base("nul-key"),
                &["fields", "comp\u{0}any"],
                json!("x"),
            )),
            "invalid_event",
            "body.fields.comp\\0any",
        ),
        case(
            "NUL in the upstream lead id",
            bytes(with(
                base("nul-id"),
                &["upstream_lead_id"],
                json!("L\u{0}1"),
            )),
            "invalid_event",
            "body.upstream_lead_id",
        ),
        case(
            "a control character in a nested value",
            bytes(with(
                base("ctl"),
                &["fields", "address"],
                json!({"street": "Main\u{1}St"}),
            )),
            "invalid_event",
            "body.fields.address.street",
        ),
        case(
            "720 KB of JSON zeros",
            bytes(with(
                base("zeros"),
                &["fields", "z"],
                json!(vec![0; 360_000]),
            )),
            "invalid_event",
            "body.fields.z",
        ),
        case(
            "a 900 KB string",
            bytes(with(
                base("huge"),
                &["fields", "note"],
                json!("x".repeat(900_000)),
            )),
            "invalid_event",
            "body.fields.note",
        ),
        case(
            "5,000 levels of nesting",
            deep.into_bytes(),
            "invalid_event",
            "body.fields.d[0]",
        ),
        case(
            "201 fields",
            bytes(with(base("many"), &["fields"], Value::Object(many))),
            "invalid_event",
            "body.fields",
        ),
        case(
            "90 KB of fields",
            bytes(with(base("large"), &["fields"], Value::Object(large))),
            "invalid_event",
            "body.fields",
        ),
        case("invalid UTF-8", invalid_utf8, "not_json", "body"),
        case("a byte-order mark", bom, "not_json", "body"),
        case(
            "a repeated top-level key",
            duplicate_top,
            "invalid_event",
            "body.upstream_system",
        ),
        case(
            "a repeated field name",
            duplicate_field,
            "invalid_event",
            "body.fields.company",
        ),
        case(
            "a date before 1900",
            bytes(with(
                base("old"),
                &["occurred_at"],
                json!("1066-10-14T09:00:00Z"),
            )),
            "invalid_event",
            "body.occurred_at",
        ),
        case(
            "a date past year 9999",
            bytes(with(
                base("future"),
                &["occurred_at"],
                json!("+275760-09-13T00:00:00Z"),
            )),
            "invalid_event",
            "body.occurred_at",
        ),
        case(
            "a 300-character upstream id",
            bytes(with(
                base("long-id"),
                &["upstream_lead_id"],
                json!("L".repeat(300)),
            )),
            "invalid_event",
            "body.upstream_lead_id",
        ),
        case(
            "a line break in an upstream id",
            bytes(with(base("line-id"), &["upstream_event_id"], json!("e\n1"))),
            "invalid_event",
            "body.upstream_event_id",
        ),
        case(
            "an array for the event object",
            b"[[]]".to_vec(),
            "invalid_event",
            "body",
        ),
        case(
            "a number out of range",
            bytes(base("num")).replacen(b"\"country\":\"DE\"", b"\"country\":1e400"),
            "not_json",
            "body",
        ),
        case("an empty body", Vec::new(), "not_json", "body"),
        case(
            "200 KB of \\x01 bytes",
            vec![1u8; 200_000],
            "not_json",
            "body",
        ),
    ]
}

/// `replacen` on byte strings.
trait ReplaceBytes {
    fn replacen(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceBytes for Vec<u8> {
    fn replacen(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        match self.windows(from.len()).position(|w| w == from) {
            Some(at) => [&self[..at], to, &self[at + from.len()..]].concat(),
            None => panic!("{:?} not in the body", String::from_utf8_lossy(from)),
        }
    }
}
