//! The upstream lead event (schema `deploy/schemas/lead-event.v1.json`) and its validation:
//! every way a message can be wrong maps to one stable reason code, so a dead letter says
//! exactly what to fix.

use crate::input;
use crate::leads::NewLead;
use chrono::{DateTime, Datelike, Utc};
use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, QueueId, UpstreamRef};
use leadroute_domain::lead::LeadFields;
use leadroute_domain::limits::{self, TextFault};
use serde::Deserialize;
#[cfg(test)]
use serde_json::Value;

/// The schema version this build reads.
pub const SCHEMA_VERSION: u64 = 1;

/// Version 1 of the upstream lead event.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadEventV1 {
    /// Always 1.
    #[schema(minimum = 1, maximum = 1)]
    pub schema_version: u64,
    /// The upstream system's id of this event.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub upstream_event_id: String,
    /// Name of the upstream CRM.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub upstream_system: String,
    /// The upstream id of the lead.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub upstream_lead_id: String,
    /// When it happened upstream.
    pub occurred_at: DateTime<Utc>,
    /// Lead fields.
    #[schema(value_type = Object)]
    pub fields: LeadFields,
    /// Keep automatic routing away.
    #[serde(default)]
    pub do_not_route: bool,
    /// The owner the CRM already gave the lead, a partner user or a queue of the org: a
    /// new lead gets it as its first owner (cause `import`) and is not routed; ignored on
    /// updates. Unknown owners are refused (`unknown_owner`).
    #[serde(default)]
    pub owner: Option<ImportedOwner>,
}

/// An owner named by a lead event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportedOwner {
    /// `partner_user` or `queue`.
    pub kind: ImportedOwnerKind,
    /// Its id.
    pub id: uuid::Uuid,
}

/// Kind of an imported owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportedOwnerKind {
    /// A partner user.
    PartnerUser,
    /// A partner queue.
    Queue,
}

impl From<ImportedOwner> for Owner {
    fn from(owner: ImportedOwner) -> Owner {
        match owner.kind {
            ImportedOwnerKind::PartnerUser => Owner::PartnerUser(PartnerUserId(owner.id)),
            ImportedOwnerKind::Queue => Owner::Queue(QueueId(owner.id)),
        }
    }
}

impl From<LeadEventV1> for NewLead {
    fn from(event: LeadEventV1) -> Self {
        NewLead {
            upstream: UpstreamRef {
                system: event.upstream_system,
                lead_id: event.upstream_lead_id,
            },
            upstream_event_id: event.upstream_event_id,
            fields: event.fields,
            route: !event.do_not_route,
            occurred_at: Some(event.occurred_at),
            owner: event.owner.map(Owner::from),
        }
    }
}

/// Why a message is dead-lettered: its stable code is [`DeadReason::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// The subject does not name an org and an event kind (`bad_subject`).
    BadSubject,
    /// The body is not strict JSON (`not_json`).
    NotJson,
    /// The schema version is not one this build reads (`unsupported_schema_version`).
    UnsupportedSchemaVersion,
    /// The event breaks the schema or a limit (`invalid_event`).
    InvalidEvent,
    /// A required text field is empty (`empty_field`).
    EmptyField,
    /// A published event's envelope does not decode (`invalid_envelope`).
    InvalidEnvelope,
    /// The org does not exist (`unknown_org`).
    UnknownOrg,
    /// The message failed on every delivery allowed (`redelivery_exhausted`).
    RedeliveryExhausted,
    /// A notification template does not render (`template_failed`).
    TemplateFailed,
    /// The mail server refuses the recipient (`invalid_recipient`).
    InvalidRecipient,
    /// The mail server stayed unavailable (`smtp_unavailable`).
    SmtpUnavailable,
    /// The application refused the message for good, with its refusal code
    /// (`unstorable_input`, `event_too_large`, a domain rule's code).
    Refused(&'static str),
    /// Something the message names does not exist, with its code (`lead_not_found`).
    NotFound(&'static str),
}

impl DeadReason {
    /// The stable code stored with the dead letter.
    pub fn code(self) -> &'static str {
        match self {
            DeadReason::BadSubject => "bad_subject",
            DeadReason::NotJson => "not_json",
            DeadReason::UnsupportedSchemaVersion => "unsupported_schema_version",
            DeadReason::InvalidEvent => "invalid_event",
            DeadReason::EmptyField => "empty_field",
            DeadReason::InvalidEnvelope => "invalid_envelope",
            DeadReason::UnknownOrg => "unknown_org",
            DeadReason::RedeliveryExhausted => "redelivery_exhausted",
            DeadReason::TemplateFailed => "template_failed",
            DeadReason::InvalidRecipient => "invalid_recipient",
            DeadReason::SmtpUnavailable => "smtp_unavailable",
            DeadReason::Refused(code) | DeadReason::NotFound(code) => code,
        }
    }
}

impl std::fmt::Display for DeadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a message is not a valid lead event (or cannot be processed for good): the reason,
/// what exactly is wrong, and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Why, as a type; its code is stable.
    pub reason: DeadReason,
    /// What exactly is wrong (names the field).
    pub detail: String,
    /// The field at fault (`fields.company`, `occurred_at`), when one is.
    pub field: Option<String>,
}

impl Invalid {
    /// Why a message can never succeed, with no particular field at fault.
    pub fn new(reason: DeadReason, detail: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            detail: detail.into(),
            field: None,
        }
    }
}

/// A refusal of the value of `field`.
fn invalid_at(reason: DeadReason, field: &str, detail: impl Into<String>) -> Invalid {
    Invalid {
        field: (!field.is_empty()).then(|| field.to_string()),
        ..Invalid::new(reason, detail)
    }
}

/// The org of a subject `<crm prefix>.<org>.lead.<created|updated>`.
pub fn org_of_subject(crm_prefix: &str, subject: &str) -> Result<OrgId, Invalid> {
    let tokens: Vec<&str> = subject.split('.').collect();
    match tokens.as_slice() {
        [p, org, "lead", "created" | "updated"] if *p == crm_prefix => org.parse().map_err(|_| {
            Invalid::new(
                DeadReason::BadSubject,
                format!("{org:?} in subject {subject} is not an org id"),
            )
        }),
        _ => Err(Invalid::new(
            DeadReason::BadSubject,
            format!("subject {subject} is not {crm_prefix}.<org>.lead.<created|updated>"),
        )),
    }
}

/// Earliest `occurred_at` accepted (year 1900).
const EARLIEST_YEAR: i32 = 1900;
/// Latest `occurred_at` year accepted (PostgreSQL stores far later, but nothing real is).
const LATEST_YEAR: i32 = 9999;

/// Parse and validate a message body: strict JSON ([`crate::input`]), the schema, and the
/// limits of `leadroute_domain::limits` (ids at most 256 characters on one line, fields
/// bounded in number, depth and size, no NUL or control characters anywhere). Every
/// refusal names the field.
pub fn parse(payload: &[u8]) -> Result<LeadEventV1, Invalid> {
    let value = input::parse(payload).map_err(|fault| match fault.syntax {
        true => Invalid::new(DeadReason::NotJson, fault.message),
        false => invalid_at(
            DeadReason::InvalidEvent,
            &fault.path,
            field_fault(&fault.path, &fault.message),
        ),
    })?;
    if !value.is_object() {
        return Err(Invalid::new(
            DeadReason::InvalidEvent,
            "the event must be a JSON object",
        ));
    }
    match value.get("schema_version") {
        None => {
            return Err(invalid_at(
                DeadReason::InvalidEvent,
                "schema_version",
                "missing field `schema_version`",
            ))
        }
        Some(v) if v.as_u64() != Some(SCHEMA_VERSION) => {
            return Err(invalid_at(
                DeadReason::UnsupportedSchemaVersion,
                "schema_version",
                format!("schema_version {v} (this build reads {SCHEMA_VERSION})"),
            ))
        }
        Some(_) => {}
    }
    // The path names the field of a mistyped value; missing and unknown fields name
    // themselves in the message.
    let event: LeadEventV1 = serde_path_to_error::deserialize(value).map_err(|e| {
        let message = e.inner().to_string();
        match e.path().to_string().as_str() {
            // `missing field `x`` and `unknown field `x`` name themselves.
            "." => {
                let named = message.split('`').nth(1).unwrap_or_default().to_string();
                invalid_at(DeadReason::InvalidEvent, &named, message)
            }
            path => invalid_at(DeadReason::InvalidEvent, path, field_fault(path, &message)),
        }
    })?;
    for (name, text) in [
        ("upstream_event_id", &event.upstream_event_id),
        ("upstream_system", &event.upstream_system),
        ("upstream_lead_id", &event.upstream_lead_id),
    ] {
        match limits::line(name, text, limits::MAX_ID_CHARS) {
            Ok(_) => {}
            Err(TextFault::Empty(_)) => {
                return Err(invalid_at(
                    DeadReason::EmptyField,
                    name,
                    format!("field `{name}` must not be empty"),
                ))
            }
            Err(fault) => {
                return Err(invalid_at(
                    DeadReason::InvalidEvent,
                    name,
                    fault.to_string(),
                ))
            }
        }
    }
    let year = event.occurred_at.year();
    if !(EARLIEST_YEAR..=LATEST_YEAR).contains(&year) {
        return Err(invalid_at(
            DeadReason::InvalidEvent,
            "occurred_at",
            format!("`occurred_at` must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}"),
        ));
    }
    // Written as compact JSON the fields take at most the body's size, but for numbers,
    // whose shortest form can be longer than the one sent (`9e9` → `9000000000.0`): never
    // six times longer.
    limits::lead_fields_within("fields", &event.fields, payload.len().saturating_mul(6))
        .map_err(|fault| invalid_at(DeadReason::InvalidEvent, fault.field(), fault.to_string()))?;
    Ok(event)
}

/// A detail naming `path` the way the other refusals do (`` `fields.company`: ... ``).
fn field_fault(path: &str, message: &str) -> String {
    if message.starts_with('`') {
        message.to_string()
    } else {
        format!("field `{path}`: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        serde_json::json!({
            "schema_version": 1, "upstream_event_id": "e1", "upstream_system": "sf",
            "upstream_lead_id": "L1", "occurred_at": "2026-11-28T08:00:00Z", "fields": {"company": "Globex"}
        })
    }

    fn reason(value: Value) -> &'static str {
        parse(value.to_string().as_bytes())
            .unwrap_err()
            .reason
            .code()
    }

    #[test]
    fn accepts_a_valid_event() {
        let event = parse(valid().to_string().as_bytes()).unwrap();
        assert_eq!(event.upstream_lead_id, "L1");
        assert!(!event.do_not_route);
    }

    #[test]
    fn names_each_way_to_be_wrong() {
        assert_eq!(parse(b"{not json").unwrap_err().reason.code(), "not_json");
        let mut v = valid();
        v["schema_version"] = 2.into();
        assert_eq!(reason(v), "unsupported_schema_version");
        let mut v = valid();
        v.as_object_mut().unwrap().remove("upstream_lead_id");
        let missing = parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            (
                missing.reason.code(),
                missing.detail.contains("upstream_lead_id")
            ),
            ("invalid_event", true)
        );
        let mut v = valid();
        v["fields"] = "company".into();
        let mistyped = parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            (mistyped.reason.code(), mistyped.detail.contains("`fields`")),
            ("invalid_event", true),
            "{mistyped:?}"
        );
        let mut v = valid();
        v["occurred_at"] = "yesterday".into();
        assert!(parse(v.to_string().as_bytes())
            .unwrap_err()
            .detail
            .contains("`occurred_at`"));
        let mut v = valid();
        v["occurred_at"] = "yesterday".into();
        assert_eq!(reason(v), "invalid_event");
        let mut v = valid();
        v["upstream_event_id"] = " ".into();
        assert_eq!(reason(v), "empty_field");
        let mut v = valid();
        v["colour"] = "red".into();
        assert_eq!(reason(v), "invalid_event");
    }

    #[test]
    fn names_the_field_at_fault() {
        let field = |v: Value| parse(v.to_string().as_bytes()).unwrap_err().field;
        let mut v = valid();
        v.as_object_mut().unwrap().remove("upstream_lead_id");
        assert_eq!(field(v).as_deref(), Some("upstream_lead_id"));
        let mut v = valid();
        v["fields"]["company"] = "Glo\u{0}bex".into();
        assert_eq!(field(v).as_deref(), Some("fields.company"));
        let mut v = valid();
        v["occurred_at"] = "1066-10-14T09:00:00Z".into();
        assert_eq!(field(v).as_deref(), Some("occurred_at"));
        let mut v = valid();
        v["colour"] = "red".into();
        assert_eq!(field(v).as_deref(), Some("colour"));
        assert_eq!(parse(b"{not json").unwrap_err().field, None);
    }

    #[test]
    fn reads_the_org_from_the_subject() {
        let org = OrgId::new_random();
        assert_eq!(
            org_of_subject("crm", &format!("crm.{org}.lead.created")),
            Ok(org)
        );
        assert_eq!(
            org_of_subject("crm", "crm.nope.lead.created")
                .unwrap_err()
                .reason
                .code(),
            "bad_subject"
        );
        assert_eq!(
            org_of_subject("crm", &format!("crm.{org}.account.created"))
                .unwrap_err()
                .reason
                .code(),
            "bad_subject"
        );
    }
}
