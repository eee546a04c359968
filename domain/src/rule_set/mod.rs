//! The RuleSet aggregate: an org's assignment rules as published versions. Each publish
//! is an event with its author and time and a version number one above the last;
//! published versions never change. The aggregate's id is the org's id. Pure: no I/O; the
//! existence of the targets is looked up before the command.

use crate::decider::{ensure, Decider, Refusal, RefusalKind};
use crate::ids::{Actor, OrgId};
use crate::routing::rules::RuleSetSpec;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Commands on an org's rule set.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleSetCommand {
    /// Publish a new version.
    PublishRuleSet {
        /// The org.
        org_id: OrgId,
        /// The rules.
        spec: RuleSetSpec,
        /// Looked up before the command: a target that does not exist in the org, if any
        /// (`entries[2]: queue … not found`).
        unknown_target: Option<String>,
        /// Who publishes.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of an org's rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RuleSetEvent {
    /// A version was published; it applies to leads routed from now on.
    RuleSetPublished {
        /// The org.
        org_id: OrgId,
        /// Its version (1, 2, ...).
        version: u32,
        /// The rules.
        spec: RuleSetSpec,
        /// Who published it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(RuleSetEvent, version "1.0", {
    RuleSetPublished => "RuleSetPublished",
});

/// Why a rule set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    /// The rules are malformed (the text names the place).
    #[error("the rule set is not valid: {0}")]
    InvalidRuleSet(String),
    /// A target does not exist in the org.
    #[error("the rule set names a target that does not exist: {0}")]
    UnknownTarget(String),
}

impl Refusal for RuleSetError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            RuleSetError::InvalidRuleSet(_) => ("invalid_rule_set", InvalidInput),
            RuleSetError::UnknownTarget(_) => ("unknown_target", InvalidInput),
        }
    }
}

/// State: the latest published version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    /// The org, once a version exists.
    pub org_id: Option<OrgId>,
    /// The latest version (0: none).
    pub version: u32,
    /// Its rules.
    pub spec: RuleSetSpec,
    /// Who published it, and when.
    pub published: Option<(Actor, DateTime<Utc>)>,
}

impl Decider for RuleSet {
    type Command = RuleSetCommand;
    type Event = RuleSetEvent;
    type Error = RuleSetError;

    fn decide(&self, command: RuleSetCommand) -> Result<Vec<RuleSetEvent>, RuleSetError> {
        let RuleSetCommand::PublishRuleSet {
            org_id,
            spec,
            unknown_target,
            actor,
            at,
        } = command;
        if let Some(problem) = spec.problem() {
            return Err(RuleSetError::InvalidRuleSet(problem));
        }
        if let Some(target) = unknown_target {
            return Err(RuleSetError::UnknownTarget(target));
        }
        ensure(
            self.org_id.is_none_or(|o| o == org_id),
            RuleSetError::InvalidRuleSet("the rule set belongs to another org".into()),
        )?;
        Ok(vec![RuleSetEvent::RuleSetPublished {
            org_id,
            version: self.version + 1,
            spec,
            actor,
            at,
        }])
    }

    fn evolve(&mut self, event: &RuleSetEvent) {
        let RuleSetEvent::RuleSetPublished {
            org_id,
            version,
            spec,
            actor,
            at,
        } = event;
        self.org_id = Some(*org_id);
        self.version = *version;
        self.spec = spec.clone();
        self.published = Some((actor.clone(), *at));
    }
}

crate::cqrs_aggregate!(RuleSet, "RuleSet");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::criteria::Criterion;
    use crate::routing::rules::{Entry, Target};
    use crate::test_support::{admin, t0};
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    fn spec(criteria: Vec<Criterion>) -> RuleSetSpec {
        RuleSetSpec {
            entries: vec![Entry {
                acceptance_deadline: None,
                fallback: None,
                criteria,
                target: Target::Queue(crate::ids::QueueId(Uuid::from_u128(3))),
                keep_owner: false,
                notify: true,
            }],
            ..Default::default()
        }
    }

    fn publish(spec: RuleSetSpec) -> RuleSetCommand {
        RuleSetCommand::PublishRuleSet {
            org_id: OrgId(Uuid::from_u128(1)),
            spec,
            unknown_target: None,
            actor: admin(),
            at: t0(),
        }
    }

    fn published(version: u32) -> RuleSetEvent {
        RuleSetEvent::RuleSetPublished {
            org_id: OrgId(Uuid::from_u128(1)),
            version,
            spec: spec(vec![]),
            actor: admin(),
            at: t0(),
        }
    }

    #[test]
    fn each_publish_is_the_next_version_with_its_author_and_time() {
        TestFramework::<RuleSet>::with(())
            .given(vec![published(1)])
            .when(publish(spec(vec![])))
            .then_expect_events(vec![published(2)]);
    }

    #[test]
    fn a_malformed_rule_set_is_refused_naming_the_entry() {
        let bad = spec(vec![Criterion::In {
            field: "country".into(),
            values: vec![],
        }]);
        let refused = RuleSet::default().decide(publish(bad)).unwrap_err();
        assert_eq!(refused.code(), "invalid_rule_set");
        assert!(refused.to_string().contains("entries[0]"));
    }

    #[test]
    fn an_unknown_target_is_refused() {
        let mut command = publish(spec(vec![]));
        let RuleSetCommand::PublishRuleSet { unknown_target, .. } = &mut command;
        *unknown_target = Some("entries[0]: queue not found".into());
        let refused = RuleSet::default().decide(command).unwrap_err();
        assert_eq!(refused.code(), "unknown_target");
    }
}
