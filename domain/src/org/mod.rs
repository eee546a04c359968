//! The Org aggregate: an org's existence, its one-way PRM switch, the fields partner
//! users may see and how offers to partner users work (`PartnerWorkflow`). Pure: no I/O,
//! no clock.

use crate::deadline::{BusinessHours, Deadline};
use crate::decider::{ensure, required_name, Decider, Refusal, RefusalKind};
use crate::duplicates::DuplicateKey;
use crate::ids::{Actor, InternalUserId, OrgId, Owner};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[cfg(test)]
mod tests;

/// The lead and account fields partner users are allowed to see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibleFields {
    /// Lead fields (upstream field names) partner users may see.
    pub lead: BTreeSet<String>,
    /// Partner-account fields partner users may see.
    pub account: BTreeSet<String>,
}

impl VisibleFields {
    fn has_blank_name(&self) -> bool {
        self.lead
            .iter()
            .chain(&self.account)
            .any(|f| f.trim().is_empty())
    }
}

/// The sharing review an admin acknowledges before enabling PRM: who reviewed which field set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingReviewAck {
    /// The admin who reviewed and acknowledged the report.
    pub reviewed_by: InternalUserId,
    /// The field set the report showed; it becomes the partner-visible fields.
    pub fields: VisibleFields,
}

/// The reason codes a partner user may decline an offer with, until the org sets its own.
pub const DEFAULT_DECLINE_REASONS: [&str; 5] = [
    "not_my_territory",
    "no_capacity",
    "not_qualified",
    "duplicate",
    "other",
];

/// The lead fields a partner user sees of an offer before accepting it, until the org sets
/// its own (always within the partner-visible fields).
pub const DEFAULT_PRE_ACCEPTANCE_FIELDS: [&str; 4] = ["company", "country", "industry", "size"];

/// Most decline reasons an org may list.
pub const MAX_DECLINE_REASONS: usize = 50;

/// How offers to partner users work in an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PartnerWorkflow {
    /// Reason codes a partner user may decline with (`other` asks for a note).
    pub decline_reasons: Vec<String>,
    /// How long an offer stands when the rule entry that made it names no deadline (and
    /// for offers made by hand); `None`: offers stand until answered.
    pub acceptance_deadline: Option<Deadline>,
    /// When the offeree is reminded, as a percentage (1 to 99) of the time to the
    /// deadline; `None`: no reminder.
    pub reminder_percent: Option<u8>,
    /// The working week business-hour deadlines count.
    pub business_hours: BusinessHours,
    /// The lead fields a partner user sees of a lead offered to them (or claimable from
    /// their queue) before accepting it, within the partner-visible fields: no contact
    /// details, typically.
    pub pre_acceptance_fields: BTreeSet<String>,
    /// The keys a new lead is matched by against the org's open leads owned by partners
    /// (held as `possible_duplicate` on a match); empty: no matching.
    pub duplicate_keys: Vec<DuplicateKey>,
}

impl Default for PartnerWorkflow {
    fn default() -> Self {
        PartnerWorkflow {
            decline_reasons: DEFAULT_DECLINE_REASONS.map(String::from).to_vec(),
            acceptance_deadline: None,
            reminder_percent: None,
            business_hours: BusinessHours::default(),
            pre_acceptance_fields: DEFAULT_PRE_ACCEPTANCE_FIELDS.map(String::from).into(),
            duplicate_keys: crate::duplicates::default_keys(),
        }
    }
}

impl PartnerWorkflow {
    /// The deadline and reminder time of an offer made at `at` with `deadline` (the rule
    /// entry's, else the org's default); `None` when it has none.
    pub fn due(
        &self,
        deadline: Option<Deadline>,
        at: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        // Whole microseconds, as PostgreSQL keeps times: the timer read back from a table
        // names the very deadline the offer carries.
        let exact = |t: DateTime<Utc>| t.trunc_subsecs(6);
        let deadline = deadline
            .or(self.acceptance_deadline)?
            .after(at, &self.business_hours);
        let remind = self
            .reminder_percent
            .map(|percent| exact(crate::deadline::reminder(at, deadline, percent)));
        Some((exact(deadline), remind))
    }

    /// The deadline and reminder time (each `None` when there is none) of a lead given to
    /// `to` at `at`: only an offer to a partner user has them.
    pub fn due_for(
        &self,
        to: Owner,
        deadline: Option<Deadline>,
        at: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        match (to, self.due(deadline, at)) {
            (Owner::PartnerUser(_), Some((deadline, remind))) => (Some(deadline), remind),
            _ => (None, None),
        }
    }

    /// The first reason the settings cannot be taken, naming the setting.
    pub fn problem(&self) -> Option<String> {
        if let Some(problem) = self.acceptance_deadline.and_then(Deadline::problem) {
            return Some(format!("acceptance_deadline.{problem}"));
        }
        if self
            .reminder_percent
            .is_some_and(|p| !(1..=99).contains(&p))
        {
            return Some("reminder_percent: 1 to 99".into());
        }
        if let Some(problem) = self.business_hours.problem() {
            return Some(format!("business_hours: {problem}"));
        }
        if let Some(problem) = crate::duplicates::problem(&self.duplicate_keys) {
            return Some(problem);
        }
        if self.pre_acceptance_fields.len() > crate::limits::MAX_FIELDS {
            return Some(format!(
                "pre_acceptance_fields: at most {} names",
                crate::limits::MAX_FIELDS
            ));
        }
        if let Some(fault) = self.pre_acceptance_fields.iter().find_map(|name| {
            crate::limits::line(
                "pre_acceptance_fields",
                name,
                crate::limits::MAX_FIELD_NAME_CHARS,
            )
            .err()
        }) {
            return Some(fault.to_string());
        }
        let reasons = &self.decline_reasons;
        if reasons.is_empty() || reasons.len() > MAX_DECLINE_REASONS {
            return Some(format!(
                "decline_reasons: list 1 to {MAX_DECLINE_REASONS} reason codes"
            ));
        }
        let mut seen = BTreeSet::new();
        reasons.iter().enumerate().find_map(|(i, code)| {
            let well_formed = !code.is_empty()
                && code.len() <= crate::limits::MAX_CODE_CHARS
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                Some(format!(
                    "decline_reasons[{i}]: a code of 1 to {} characters a-z, 0-9 and _",
                    crate::limits::MAX_CODE_CHARS
                ))
            } else if !seen.insert(code) {
                Some(format!("decline_reasons[{i}]: `{code}` is listed twice"))
            } else {
                None
            }
        })
    }

    /// Whether `reason` is one of the decline reasons.
    pub fn declines_with(&self, reason: &str) -> bool {
        self.decline_reasons.iter().any(|r| r == reason)
    }
}

/// Commands on an org.
#[derive(Debug, Clone, PartialEq)]
pub enum OrgCommand {
    /// Create the org.
    CreateOrg {
        /// The new org's id.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// The org's address in partner links (`/p/<slug>/`), claimed as unique before the
        /// command; `None` for orgs addressed by id.
        slug: Option<String>,
        /// Who creates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Enable PRM (one-way); requires the sharing-review acknowledgement.
    EnablePrm {
        /// The acknowledgement; `None` is refused.
        acknowledgement: Option<SharingReviewAck>,
        /// Who enables it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Any attempt to disable PRM; always refused once enabled.
    DisablePrm {
        /// Who tried.
        actor: Actor,
    },
    /// Replace the partner-visible fields.
    SetPartnerVisibleFields {
        /// The new field set.
        fields: VisibleFields,
        /// Who changes it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace how offers to partner users work.
    SetPartnerWorkflow {
        /// The new settings.
        workflow: PartnerWorkflow,
        /// Who changes them.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrgEvent {
    /// The org exists.
    OrgCreated {
        /// Its id.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// Its address in partner links (`/p/<slug>/`); orgs created before slugs have none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slug: Option<String>,
        /// Who created it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// PRM is on, for good; records the acknowledged sharing review.
    PrmEnabled {
        /// The acknowledgement: who reviewed which field set.
        acknowledgement: SharingReviewAck,
        /// Who enabled it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner-visible fields changed.
    PartnerVisibleFieldsSet {
        /// The new field set.
        fields: VisibleFields,
        /// Who changed them.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// How offers to partner users work changed.
    PartnerWorkflowSet {
        /// The new settings.
        workflow: PartnerWorkflow,
        /// Who changed them.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(OrgEvent, version "1.0", {
    OrgCreated => "OrgCreated",
    PrmEnabled => "PrmEnabled",
    PartnerVisibleFieldsSet => "PartnerVisibleFieldsSet",
    PartnerWorkflowSet => "PartnerWorkflowSet",
});

/// Why an org command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    /// The org already exists.
    #[error("the org already exists")]
    OrgAlreadyExists,
    /// The org does not exist.
    #[error("the org does not exist")]
    OrgNotFound,
    /// A name is required.
    #[error("the org name must not be empty")]
    NameRequired,
    /// The name breaks the limits of a name (`limits::line`).
    #[error("{0}")]
    InvalidName(crate::limits::TextFault),
    /// A field name is blank.
    #[error("field names must not be empty")]
    BlankFieldName,
    /// PRM needs the sharing review acknowledged first.
    #[error("enabling PRM requires acknowledging the sharing review of partner-visible fields")]
    SharingReviewNotAcknowledged,
    /// PRM is already on.
    #[error("PRM is already enabled for this org")]
    PrmAlreadyEnabled,
    /// PRM cannot be turned off once on.
    #[error("PRM cannot be disabled once enabled: enabling it is irreversible")]
    PrmIrreversible,
    /// Disable was asked of an org that never enabled PRM.
    #[error("PRM is not enabled for this org")]
    PrmNotEnabled,
    /// The partner workflow settings are malformed.
    #[error("{0}")]
    InvalidWorkflow(String),
    /// The slug is not 2 to 63 lower-case letters, digits and inner dashes.
    #[error("the slug must be 2 to 63 characters: lower-case letters, digits and dashes (not first or last)")]
    InvalidSlug,
}

impl Refusal for OrgError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            OrgError::OrgAlreadyExists => ("org_already_exists", Conflict),
            OrgError::OrgNotFound => ("org_not_found", NotFound),
            OrgError::NameRequired => ("name_required", InvalidInput),
            OrgError::InvalidName(_) => ("invalid_name", InvalidInput),
            OrgError::BlankFieldName => ("blank_field_name", InvalidInput),
            OrgError::SharingReviewNotAcknowledged => {
                ("sharing_review_not_acknowledged", InvalidInput)
            }
            OrgError::PrmAlreadyEnabled => ("prm_already_enabled", Conflict),
            OrgError::PrmIrreversible => ("prm_irreversible", Conflict),
            OrgError::PrmNotEnabled => ("prm_not_enabled", Conflict),
            OrgError::InvalidWorkflow(_) => ("invalid_workflow", InvalidInput),
            OrgError::InvalidSlug => ("invalid_slug", InvalidInput),
        }
    }
}

/// State of an org.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Org {
    /// Set once created.
    pub id: Option<OrgId>,
    /// Display name.
    pub name: String,
    /// Address in partner links (`/p/<slug>/`), if it has one.
    #[serde(default)]
    pub slug: Option<String>,
    /// PRM switch; never goes back to false.
    pub prm_enabled: bool,
    /// Fields partner users may see.
    pub visible_fields: VisibleFields,
    /// How offers to partner users work.
    #[serde(default)]
    pub workflow: PartnerWorkflow,
}

impl Org {
    /// The lead fields a partner user may see of a lead: the partner-visible fields once
    /// they accepted it, only the pre-acceptance ones among them before.
    pub fn partner_fields(&self, accepted: bool) -> BTreeSet<String> {
        let visible = self.visible_fields.lead.iter();
        match accepted {
            true => visible.cloned().collect(),
            false => visible
                .filter(|name| self.workflow.pre_acceptance_fields.contains(*name))
                .cloned()
                .collect(),
        }
    }
}

impl Decider for Org {
    type Command = OrgCommand;
    type Event = OrgEvent;
    type Error = OrgError;

    fn decide(&self, command: OrgCommand) -> Result<Vec<OrgEvent>, OrgError> {
        ensure(
            self.id.is_some() || matches!(command, OrgCommand::CreateOrg { .. }),
            OrgError::OrgNotFound,
        )?;
        match command {
            OrgCommand::CreateOrg {
                org_id,
                name,
                slug,
                actor,
                at,
            } => {
                ensure(self.id.is_none(), OrgError::OrgAlreadyExists)?;
                let name = required_name(&name, OrgError::NameRequired, OrgError::InvalidName)?;
                ensure(slug.as_deref().is_none_or(is_slug), OrgError::InvalidSlug)?;
                Ok(vec![OrgEvent::OrgCreated {
                    org_id,
                    name,
                    slug,
                    actor,
                    at,
                }])
            }
            OrgCommand::EnablePrm {
                acknowledgement,
                actor,
                at,
            } => {
                ensure(!self.prm_enabled, OrgError::PrmAlreadyEnabled)?;
                let acknowledgement =
                    acknowledgement.ok_or(OrgError::SharingReviewNotAcknowledged)?;
                ensure(
                    !acknowledgement.fields.has_blank_name(),
                    OrgError::BlankFieldName,
                )?;
                Ok(vec![OrgEvent::PrmEnabled {
                    acknowledgement,
                    actor,
                    at,
                }])
            }
            OrgCommand::DisablePrm { .. } => Err(if self.prm_enabled {
                OrgError::PrmIrreversible
            } else {
                OrgError::PrmNotEnabled
            }),
            OrgCommand::SetPartnerWorkflow {
                workflow,
                actor,
                at,
            } => {
                if let Some(problem) = workflow.problem() {
                    return Err(OrgError::InvalidWorkflow(problem));
                }
                Ok(vec![OrgEvent::PartnerWorkflowSet {
                    workflow,
                    actor,
                    at,
                }])
            }
            OrgCommand::SetPartnerVisibleFields { fields, actor, at } => {
                ensure(!fields.has_blank_name(), OrgError::BlankFieldName)?;
                Ok(vec![OrgEvent::PartnerVisibleFieldsSet {
                    fields,
                    actor,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &OrgEvent) {
        match event {
            OrgEvent::OrgCreated {
                org_id, name, slug, ..
            } => {
                self.id = Some(*org_id);
                self.name = name.clone();
                self.slug = slug.clone();
            }
            OrgEvent::PrmEnabled {
                acknowledgement, ..
            } => {
                self.prm_enabled = true;
                self.visible_fields = acknowledgement.fields.clone();
            }
            OrgEvent::PartnerVisibleFieldsSet { fields, .. } => {
                self.visible_fields = fields.clone();
            }
            OrgEvent::PartnerWorkflowSet { workflow, .. } => {
                self.workflow = workflow.clone();
            }
        }
    }
}

crate::cqrs_aggregate!(Org, "Org");

/// Longest slug, in characters (a DNS label's length).
pub const MAX_SLUG_CHARS: usize = 63;

/// Whether `slug` is a valid org slug: 2 to 63 lower-case ASCII letters, digits and dashes,
/// neither first nor last, and not shaped like a UUID (a UUID addresses an org by id).
pub fn is_slug(slug: &str) -> bool {
    (2..=MAX_SLUG_CHARS).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && uuid::Uuid::parse_str(slug).is_err()
}

/// The slug an org's name suggests: lower-case ASCII letters and digits, every other run of
/// characters one dash, cut to fit; `None` when nothing of the name is left.
pub fn slug_of(name: &str) -> Option<String> {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'ä' | 'â' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' | 'õ' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            other => other,
        };
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    // Room for a `-NN` suffix when the slug is taken.
    slug.truncate(MAX_SLUG_CHARS - 4);
    let slug = slug.trim_end_matches('-').to_string();
    is_slug(&slug).then_some(slug)
}
