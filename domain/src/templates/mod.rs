//! The Templates aggregate: an org's notification templates (access, assignment and reminder
//! emails), each edit a new version recorded as an event with author and time. Pure: no
//! I/O; whether a template parses and names only known variables is judged before the
//! command (by the template engine at the edge) and arrives in it.

use crate::decider::{Decider, Refusal, RefusalKind};
use crate::ids::{Actor, OrgId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which email a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// Partner user activated: the one-time set-password link.
    Access,
    /// A lead given to a partner user or queue with notify on.
    Assignment,
    /// A pending offer's reminder, before its acceptance deadline.
    Reminder,
    /// A forgotten password: a new one-time set-password link.
    PasswordReset,
}

impl TemplateKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Access => "access",
            TemplateKind::Assignment => "assignment",
            TemplateKind::Reminder => "reminder",
            TemplateKind::PasswordReset => "password_reset",
        }
    }

    /// Every kind.
    pub const ALL: [TemplateKind; 4] = [
        TemplateKind::Access,
        TemplateKind::Assignment,
        TemplateKind::Reminder,
        TemplateKind::PasswordReset,
    ];

    /// Whether the email carries a one-time set-password link (`link`).
    pub fn carries_link(self) -> bool {
        matches!(self, TemplateKind::Access | TemplateKind::PasswordReset)
    }
}

/// A template's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body, if any.
    pub html: Option<String>,
}

/// Commands on an org's templates.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatesCommand {
    /// Save a new version of one template.
    SetTemplate {
        /// The org.
        org_id: OrgId,
        /// Which template.
        kind: TemplateKind,
        /// Its content.
        template: Template,
        /// Looked up before the command: why it does not render (line and reason), if so.
        problem: Option<String>,
        /// Who edits.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of an org's templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TemplatesEvent {
    /// A template got a new version.
    TemplateSet {
        /// The org.
        org_id: OrgId,
        /// Which template.
        kind: TemplateKind,
        /// Its version (1, 2, ...; 0 is the built-in default).
        version: u32,
        /// Its content.
        template: Template,
        /// Who edited it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(TemplatesEvent, version "1.0", {
    TemplateSet => "TemplateSet",
});

/// Why a template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplatesError {
    /// It does not parse, or names an unknown variable.
    #[error("the template is not valid: {0}")]
    InvalidTemplate(String),
}

impl Refusal for TemplatesError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            TemplatesError::InvalidTemplate(_) => ("invalid_template", InvalidInput),
        }
    }
}

/// State: the current version of each template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Templates {
    /// The org, once a template was set.
    pub org_id: Option<OrgId>,
    /// Current version and content per kind.
    pub current: BTreeMap<TemplateKind, (u32, Template)>,
}

impl Templates {
    /// The current version of `kind`, if one was set.
    pub fn get(&self, kind: TemplateKind) -> Option<&(u32, Template)> {
        self.current.get(&kind)
    }
}

impl Decider for Templates {
    type Command = TemplatesCommand;
    type Event = TemplatesEvent;
    type Error = TemplatesError;

    fn decide(&self, command: TemplatesCommand) -> Result<Vec<TemplatesEvent>, TemplatesError> {
        let TemplatesCommand::SetTemplate {
            org_id,
            kind,
            template,
            problem,
            actor,
            at,
        } = command;
        if let Some(problem) = problem {
            return Err(TemplatesError::InvalidTemplate(problem));
        }
        if self
            .get(kind)
            .is_some_and(|(_, current)| *current == template)
        {
            return Ok(vec![]); // saving what is there changes nothing
        }
        let version = self.get(kind).map_or(0, |(v, _)| *v) + 1;
        Ok(vec![TemplatesEvent::TemplateSet {
            org_id,
            kind,
            version,
            template,
            actor,
            at,
        }])
    }

    fn evolve(&mut self, event: &TemplatesEvent) {
        let TemplatesEvent::TemplateSet {
            org_id,
            kind,
            version,
            template,
            ..
        } = event;
        self.org_id = Some(*org_id);
        self.current.insert(*kind, (*version, template.clone()));
    }
}

crate::cqrs_aggregate!(Templates, "Templates");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{admin, t0};
    use uuid::Uuid;

    fn set(kind: TemplateKind, problem: Option<&str>) -> TemplatesCommand {
        TemplatesCommand::SetTemplate {
            org_id: OrgId(Uuid::from_u128(1)),
            kind,
            template: Template {
                subject: "Hi {{ user.name }}".into(),
                text: "x".into(),
                html: None,
            },
            problem: problem.map(String::from),
            actor: admin(),
            at: t0(),
        }
    }

    #[test]
    fn each_change_is_the_next_version_of_its_own_template() {
        let mut templates = Templates::default();
        for kind in [
            TemplateKind::Access,
            TemplateKind::Access,
            TemplateKind::Assignment,
        ] {
            for event in templates.decide(set(kind, None)).unwrap() {
                templates.evolve(&event);
            }
        }
        assert_eq!(
            templates.get(TemplateKind::Access).unwrap().0,
            1,
            "saving the same content again writes nothing"
        );
        assert_eq!(templates.get(TemplateKind::Assignment).unwrap().0, 1);
    }

    #[test]
    fn a_template_that_does_not_render_is_refused_with_the_reason() {
        let refused = Templates::default()
            .decide(set(
                TemplateKind::Access,
                Some("line 1: unknown variable `usr`"),
            ))
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_template");
        assert!(refused.to_string().contains("line 1"));
    }
}
