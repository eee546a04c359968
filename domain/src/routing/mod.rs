//! The routing policy, pure: criteria, rule sets and their compiled index, the smooth
//! weighted round-robin of pools, candidate verdicts, and the decision record every
//! automatic owner change carries. Facts (who is assignable, how many open leads a member
//! holds) arrive from the caller; nothing here does I/O.

pub mod criteria;
pub mod rotation;
pub mod rules;

use crate::fields::LeadFields;
use crate::ids::Owner;
use crate::partner_user::{NotAssignable, Standing};
use chrono::{DateTime, Utc};
use rotation::{Member, Slot};
use rules::{CompiledRules, Target};
use serde::{Deserialize, Serialize};

/// Why a candidate may or may not receive a lead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// May receive it.
    Assignable,
    /// Deactivated (or never activated).
    Inactive,
    /// Active but never signed in.
    NeverSignedIn,
    /// The partner account is not an active partner.
    PartnerAccountNotActive,
    /// Automatic routing is paused for this user.
    Paused,
    /// Holds as many open leads as the pool's cap allows.
    AtCapacity,
    /// A queue nobody may claim from (no member user who may receive leads, no member
    /// account that is an active partner).
    NoClaimant,
    /// The partner user declined this lead before: it is never offered to them again.
    DeclinedBefore,
    /// The partner user let an earlier offer of this lead lapse: it is never offered to
    /// them again.
    LapsedBefore,
}

impl Verdict {
    /// Whether the verdict excludes the member from this lead for good (it declined the
    /// lead or let an offer of it lapse), whatever else changes.
    pub fn excluded(self) -> bool {
        matches!(self, Verdict::DeclinedBefore | Verdict::LapsedBefore)
    }
}

/// A candidate the decision considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The member or target.
    pub member: Member,
    /// Its verdict.
    pub verdict: Verdict,
}

impl Candidate {
    /// `member` judged `verdict`, or `at_capacity` when it would be assignable but already
    /// holds as many open leads as the pool's cap allows (`full`).
    pub fn capped(member: Member, verdict: Verdict, full: bool) -> Candidate {
        Candidate {
            member,
            verdict: if verdict == Verdict::Assignable && full {
                Verdict::AtCapacity
            } else {
                verdict
            },
        }
    }
}

/// A partner user's verdict for automatic routing and pool picks at `now`: assignability
/// first, then the pause. The one judge of a standing, for the aggregate's state and the
/// directory's rows alike.
pub fn judge(standing: &Standing, now: DateTime<Utc>) -> Verdict {
    match standing.assignability() {
        Err(NotAssignable::Inactive) => Verdict::Inactive,
        Err(NotAssignable::NeverSignedIn) => Verdict::NeverSignedIn,
        Err(NotAssignable::PartnerAccountNotActive) => Verdict::PartnerAccountNotActive,
        Ok(()) if standing.paused_at(now) => Verdict::Paused,
        Ok(()) => Verdict::Assignable,
    }
}

/// Whether `member` is judged assignable among `candidates`.
pub fn is_assignable(candidates: &[Candidate], member: Member) -> bool {
    candidates
        .iter()
        .any(|c| c.member == member && c.verdict == Verdict::Assignable)
}

/// Change `member`'s verdict among `candidates`.
pub fn set_verdict(candidates: &mut [Candidate], member: Member, verdict: Verdict) {
    for candidate in candidates.iter_mut().filter(|c| c.member == member) {
        candidate.verdict = verdict;
    }
}

/// Why a lead was left without a (new) owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotRouted {
    /// No entry matched and there is no default owner.
    NoRuleMatched,
    /// The matched target has nobody who may receive it.
    NoAssignableMember,
    /// Every member who could receive it is at its cap.
    AllAtCapacity,
    /// The lead arrived closed (won, lost, disqualified).
    LeadClosed,
    /// Everyone the target could offer the lead to declined it or let an offer lapse, and
    /// the matched entry names no fallback (or the fallback may not take it either).
    OffereesExhausted,
    /// A new lead matches an open lead of the org that a partner owns: held until an admin
    /// or the owning channel manager resolves it (`LeadHeld`).
    PossibleDuplicate,
}

impl NotRouted {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            NotRouted::NoRuleMatched => "no_rule_matched",
            NotRouted::NoAssignableMember => "no_assignable_member",
            NotRouted::AllAtCapacity => "all_at_capacity",
            NotRouted::LeadClosed => "lead_closed",
            NotRouted::OffereesExhausted => "offerees_exhausted",
            NotRouted::PossibleDuplicate => "possible_duplicate",
        }
    }

    /// The reason when none of `candidates` may take a lead: `all_at_capacity` if one is
    /// blocked only by its cap, `offerees_exhausted` if every one declined the lead or let
    /// an offer of it lapse, else `no_assignable_member`.
    pub fn for_candidates(candidates: &[Candidate]) -> NotRouted {
        if candidates.iter().any(|c| c.verdict == Verdict::AtCapacity) {
            NotRouted::AllAtCapacity
        } else if !candidates.is_empty() && candidates.iter().all(|c| c.verdict.excluded()) {
            NotRouted::OffereesExhausted
        } else {
            NotRouted::NoAssignableMember
        }
    }
}

/// What a routing decision does to the lead (the `RouteLead` command carries it).
#[derive(Debug, Clone, PartialEq)]
pub enum RouteOutcome {
    /// Give it to a partner user or queue.
    Assign {
        /// The new owner.
        to: Owner,
        /// Send the assignment email.
        notify: bool,
        /// Looked up before the command: whether the owner may receive it.
        target: Result<(), NotAssignable>,
    },
    /// Keep the current owner.
    Keep,
    /// Leave it where it is, for this reason.
    Leave(NotRouted),
    /// Hold it as a possible duplicate of the open lead `of`, owned by `owner`.
    Hold {
        /// The open lead it matches.
        of: crate::ids::LeadId,
        /// That lead's owner (a partner user or a queue).
        owner: Owner,
    },
}

/// What the rules say before any candidate is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Keep the current owner (a keep-owner entry matched and the owner is assignable).
    KeepOwner {
        /// The matched entry.
        entry: usize,
    },
    /// Send the lead to `target`.
    Route {
        /// The matched entry; `None` for the default owner.
        entry: Option<usize>,
        /// Where to.
        target: Target,
        /// Send the assignment email.
        notify: bool,
        /// Where the lead goes when everyone the target could offer it to declined it or
        /// let an offer lapse (the entry's fallback: a partner user or a queue).
        fallback: Option<Target>,
        /// The entry keeps owners, but the current owner is no longer assignable.
        owner_not_assignable: bool,
    },
    /// Leave the lead where it is, for this reason.
    Leave(NotRouted),
}

/// Field values that mark a lead as closed (in its `status` field).
pub const CLOSED_STATUSES: [&str; 3] = ["won", "lost", "disqualified"];

/// Whether a lead with `fields` is closed: its `status` is won, lost or disqualified
/// (compared as criteria compare text). A closed lead is not routed and holds no capacity.
pub fn is_closed(fields: &LeadFields) -> bool {
    criteria::field_text(fields.get("status"))
        .is_some_and(|status| CLOSED_STATUSES.contains(&status.as_str()))
}

impl NotRouted {
    /// Whether a lead left unrouted for this reason waits for its target to free capacity
    /// or regain an eligible member.
    pub fn waits(self) -> bool {
        matches!(
            self,
            NotRouted::AllAtCapacity | NotRouted::NoAssignableMember
        )
    }
}

/// Decide what the rules say for a lead with `fields`, currently owned by `owner` (with
/// whether that owner is still assignable).
pub fn plan(
    rules: &CompiledRules,
    default_owner: Option<Target>,
    fields: &LeadFields,
    owner: Option<(Owner, bool)>,
) -> Plan {
    if is_closed(fields) {
        return Plan::Leave(NotRouted::LeadClosed);
    }
    match rules.first_match(fields) {
        Some(i) => {
            let entry = rules.entry(i);
            let owner_assignable = owner.is_some_and(|(_, ok)| ok);
            if entry.keep_owner && owner_assignable {
                return Plan::KeepOwner { entry: i };
            }
            Plan::Route {
                entry: Some(i),
                target: entry.target,
                notify: entry.notify,
                fallback: entry.fallback,
                owner_not_assignable: entry.keep_owner && owner.is_some(),
            }
        }
        None => match default_owner {
            Some(target) => Plan::Route {
                entry: None,
                target,
                notify: false,
                fallback: None,
                owner_not_assignable: false,
            },
            None => Plan::Leave(NotRouted::NoRuleMatched),
        },
    }
}

/// The record of an automatic routing decision, stored with its outcome.
///
/// It serializes whole (as the API shows it). Lead events store it through
/// [`stored_decision`], where a pool pick's record names each member once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The rule-set version evaluated.
    pub rule_set_version: u32,
    /// The matched entry (0-based); `None` when none matched.
    pub matched_entry: Option<usize>,
    /// The default owner was used.
    pub default_owner: bool,
    /// A keep-owner entry matched but the owner was no longer assignable.
    pub owner_not_assignable: bool,
    /// Why the owner was no longer assignable (its verdict), when a keep-owner entry did
    /// not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_verdict: Option<Verdict>,
    /// Every candidate considered, with its verdict (the entry's fallback last, when it
    /// was looked at).
    pub candidates: Vec<Candidate>,
    /// Everyone the target could offer the lead to was closed to it, so the entry's
    /// fallback was looked at.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// The pool's rotation before the pick (pools only).
    pub pool_before: Option<Vec<Slot>>,
    /// The pool's rotation after the pick (pools only).
    pub pool_after: Option<Vec<Slot>>,
    /// What triggered it.
    pub trigger: Trigger,
    /// The target the rules chose (a partner user, queue or pool); `None` when no entry
    /// and no default owner applied, or in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

impl Decision {
    /// The record a decision under rule-set `version` starts from: nothing matched or
    /// considered yet.
    pub fn new(version: u32, trigger: Trigger) -> Decision {
        Decision {
            rule_set_version: version,
            matched_entry: None,
            default_owner: false,
            owner_not_assignable: false,
            owner_verdict: None,
            candidates: vec![],
            fallback: false,
            pool_before: None,
            pool_after: None,
            trigger,
            target: None,
        }
    }

    /// Replace the stored decision record inside `event` (an event payload's JSON, with a
    /// `decision` member) by the whole record; other JSON is left as it is.
    pub fn expand_in(event: &mut serde_json::Value) {
        let Some(record) = event.get_mut("decision") else {
            return;
        };
        if let Ok(decision) = stored_decision::deserialize(record.clone()) {
            if let Ok(whole) = serde_json::to_value(decision) {
                *record = whole;
            }
        }
    }
}

/// The stored form of a [`Decision`] in lead events (`#[serde(with = ...)]`): the whole
/// rotation before a pool pick (`pool_before`), the candidates' verdicts in its member order
/// (`verdicts`, when the candidates are exactly the pool's members) and the slots the pick
/// changed (`pool_changed`, usually one) instead of the whole rotation after it. Reading
/// gives `candidates` and `pool_after` back whole, from this form or the whole one (records
/// stored before it).
pub mod stored_decision {
    use super::{Decision, StoredDecision};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Write `decision` in its stored form.
    pub fn serialize<S: Serializer>(decision: &Decision, serializer: S) -> Result<S::Ok, S::Error> {
        StoredDecision::from(decision.clone()).serialize(serializer)
    }

    /// Read a decision stored in either form.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decision, D::Error> {
        StoredDecision::deserialize(deserializer).map(Decision::from)
    }
}

/// The stored form of a [`Decision`].
#[derive(Serialize, Deserialize)]
struct StoredDecision {
    rule_set_version: u32,
    matched_entry: Option<usize>,
    default_owner: bool,
    owner_not_assignable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner_verdict: Option<Verdict>,
    /// Every candidate, unless `verdicts` gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    fallback: bool,
    /// The candidates' verdicts, in `pool_before`'s member order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdicts: Option<Vec<Verdict>>,
    pool_before: Option<Vec<Slot>>,
    /// The whole rotation after the pick: records written before `pool_changed`, and any
    /// whose members differ from `pool_before`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool_after: Option<Vec<Slot>>,
    /// The slots of the rotation after the pick that differ from `pool_before`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool_changed: Option<Vec<Slot>>,
    trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<Target>,
}

/// Whether `members` are `slots`' members, in the same order.
fn same_members(slots: &[Slot], members: impl ExactSizeIterator<Item = Member>) -> bool {
    slots.len() == members.len() && slots.iter().zip(members).all(|(s, m)| s.member == m)
}

impl From<Decision> for StoredDecision {
    fn from(d: Decision) -> Self {
        let (candidates, verdicts) = match &d.pool_before {
            Some(before) if same_members(before, d.candidates.iter().map(|c| c.member)) => (
                vec![],
                Some(d.candidates.iter().map(|c| c.verdict).collect()),
            ),
            _ => (d.candidates, None),
        };
        let (pool_after, pool_changed) = match (&d.pool_before, d.pool_after) {
            (Some(before), Some(after)) if same_members(before, after.iter().map(|a| a.member)) => {
                let changed = after
                    .iter()
                    .zip(before)
                    .filter(|(a, b)| a != b)
                    .map(|(a, _)| *a)
                    .collect();
                (None, Some(changed))
            }
            (_, after) => (after, None),
        };
        StoredDecision {
            rule_set_version: d.rule_set_version,
            matched_entry: d.matched_entry,
            default_owner: d.default_owner,
            owner_not_assignable: d.owner_not_assignable,
            owner_verdict: d.owner_verdict,
            candidates,
            fallback: d.fallback,
            verdicts,
            pool_before: d.pool_before,
            pool_after,
            pool_changed,
            trigger: d.trigger,
            target: d.target,
        }
    }
}

impl From<StoredDecision> for Decision {
    fn from(s: StoredDecision) -> Self {
        let pool_after = match (s.pool_after, s.pool_changed, &s.pool_before) {
            (Some(after), _, _) => Some(after),
            (None, Some(changed), Some(before)) => Some(
                before
                    .iter()
                    .map(|slot| {
                        changed
                            .iter()
                            .find(|c| c.member == slot.member)
                            .copied()
                            .unwrap_or(*slot)
                    })
                    .collect(),
            ),
            (None, _, _) => None,
        };
        let candidates = match (s.verdicts, &s.pool_before) {
            (Some(verdicts), Some(before)) => before
                .iter()
                .zip(verdicts)
                .map(|(slot, verdict)| Candidate {
                    member: slot.member,
                    verdict,
                })
                .collect(),
            _ => s.candidates,
        };
        Decision {
            rule_set_version: s.rule_set_version,
            matched_entry: s.matched_entry,
            default_owner: s.default_owner,
            owner_not_assignable: s.owner_not_assignable,
            owner_verdict: s.owner_verdict,
            candidates,
            fallback: s.fallback,
            pool_before: s.pool_before,
            pool_after,
            trigger: s.trigger,
            target: s.target,
        }
    }
}

/// What makes the router evaluate the rules for a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The lead arrived.
    Received,
    /// A watched field changed.
    Updated,
    /// An explicit re-run.
    Rerun,
    /// The lead was waiting (`all_at_capacity` or `no_assignable_member`, no owner) and a
    /// member of its target freed capacity or became eligible. Routes only a lead still
    /// waiting; a decision that leaves it waiting is not recorded.
    Freed,
    /// The partner user it was offered to declined it.
    Declined,
    /// The offer's acceptance deadline passed (the lead was recalled).
    Lapsed,
    /// An admin or channel manager released a lead held as a possible duplicate ("route
    /// anyway").
    Released,
}

#[cfg(test)]
mod tests;
