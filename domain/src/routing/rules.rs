//! Rule sets: ordered entries (criteria joined by AND → a partner user, a queue or a pool),
//! a default owner, and the fields whose update re-routes a lead; and their compiled form,
//! which finds the first matching entry without testing every entry.
//!
//! Compilation indexes each entry under the values of (up to) two of its `equals` / `in`
//! criteria, on the fields with the most distinct values across the rule set; a lead then
//! tests only the entries indexed under its own values of those fields, plus the entries
//! with no such criterion, in entry order. First match wins.

use super::criteria::{Criterion, FieldValue};
use crate::fields::LeadFields;
use crate::ids::{PartnerUserId, PoolId, QueueId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Where an entry (or the default) sends a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// One partner user.
    PartnerUser(PartnerUserId),
    /// A partner queue.
    Queue(QueueId),
    /// A round-robin pool.
    Pool(PoolId),
}

/// One entry of a rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// All must match (AND); none means the entry matches every lead.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    /// Where matching leads go.
    pub target: Target,
    /// Keep an already-owned lead with its owner while that owner is assignable.
    #[serde(default)]
    pub keep_owner: bool,
    /// Send the assignment email.
    #[serde(default)]
    pub notify: bool,
    /// Where a lead goes when everyone `target` could offer it to declined it or let an
    /// offer lapse: a partner user or a queue. None leaves such a lead unrouted with reason
    /// `offerees_exhausted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Target>,
    /// How long an offer this entry makes to a partner user stands before it lapses;
    /// `None`: the org's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance_deadline: Option<crate::deadline::Deadline>,
}

/// A rule set as an admin writes it (a draft, or the content of a published version).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleSetSpec {
    /// Entries in priority order.
    pub entries: Vec<Entry>,
    /// Owner of leads no entry matches (a partner user or a queue); none leaves them
    /// unassigned with reason `no_rule_matched`.
    #[serde(default)]
    pub default_owner: Option<Target>,
    /// Fields whose update re-evaluates the rules.
    #[serde(default)]
    pub watched_fields: BTreeSet<String>,
}

impl RuleSetSpec {
    /// The first reason the spec cannot be published, naming the entry (`entries[3]`).
    pub fn problem(&self) -> Option<String> {
        if let Some(Target::Pool(_)) = self.default_owner {
            return Some("default_owner: must be a partner user or a queue".into());
        }
        self.entries.iter().enumerate().find_map(|(i, entry)| {
            if let Some(problem) = entry.acceptance_deadline.and_then(|d| d.problem()) {
                return Some(format!("entries[{i}].acceptance_deadline.{problem}"));
            }
            if let Some(Target::Pool(_)) = entry.fallback {
                return Some(format!(
                    "entries[{i}].fallback: must be a partner user or a queue"
                ));
            }
            entry
                .criteria
                .iter()
                .find_map(Criterion::problem)
                .map(|p| format!("entries[{i}]: {p}"))
        })
    }
}

/// A rule set ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// Entries with normalized criteria.
    entries: Vec<Entry>,
    /// Entries indexed by the values of one or two fields (a shape), each shape a map from
    /// the lead's values of those fields to the indices of its entries, ascending.
    shapes: Vec<Shape>,
    /// Entries with no `equals` / `in` criterion, ascending: tested for every lead.
    unindexed: Vec<u32>,
}

/// Entries indexed under the values of the same fields.
#[derive(Debug, Clone)]
struct Shape {
    /// The fields, in key order.
    fields: Vec<String>,
    /// Joined normalized values → entry indices, ascending.
    buckets: HashMap<String, Vec<u32>>,
}

/// Most keys one entry is indexed under (an `in` on two fields multiplies).
const MAX_KEYS_PER_ENTRY: usize = 64;
/// Separates the values of a two-field key (never in normalized text compared by equals).
const SEPARATOR: char = '\u{1f}';

impl CompiledRules {
    /// Compile `spec`.
    pub fn compile(spec: &RuleSetSpec) -> CompiledRules {
        let entries: Vec<Entry> = spec
            .entries
            .iter()
            .map(|e| Entry {
                criteria: e.criteria.iter().map(Criterion::normalized).collect(),
                ..e.clone()
            })
            .collect();
        let mut distinct: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for criterion in entries.iter().flat_map(|e| &e.criteria) {
            for value in keys(criterion) {
                distinct.entry(criterion.field()).or_default().insert(value);
            }
        }
        let mut shapes: Vec<Shape> = Vec::new();
        let mut unindexed = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            // The (up to) two most selective equality criteria, on different fields.
            let mut indexable: Vec<&Criterion> = entry
                .criteria
                .iter()
                .filter(|c| !keys(c).is_empty())
                .collect();
            indexable.sort_by_key(|c| {
                std::cmp::Reverse(distinct.get(c.field()).map_or(0, BTreeSet::len))
            });
            let mut chosen: Vec<&Criterion> = Vec::new();
            for c in indexable {
                if chosen.len() < 2 && chosen.iter().all(|d| d.field() != c.field()) {
                    chosen.push(c);
                }
            }
            if chosen.len() == 2
                && keys(chosen[0]).len() * keys(chosen[1]).len() > MAX_KEYS_PER_ENTRY
            {
                chosen.pop();
            }
            if chosen.is_empty() {
                unindexed.push(i as u32);
                continue;
            }
            chosen.sort_by(|a, b| a.field().cmp(b.field()));
            let fields: Vec<String> = chosen.iter().map(|c| c.field().to_string()).collect();
            let shape = match shapes.iter().position(|s| s.fields == fields) {
                Some(at) => &mut shapes[at],
                None => {
                    shapes.push(Shape {
                        fields,
                        buckets: HashMap::new(),
                    });
                    shapes.last_mut().expect("just pushed")
                }
            };
            for key in entry_keys(&chosen) {
                let list = shape.buckets.entry(key).or_default();
                if list.last() != Some(&(i as u32)) {
                    list.push(i as u32);
                }
            }
        }
        CompiledRules {
            entries,
            shapes,
            unindexed,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i` (normalized).
    pub fn entry(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    /// The index of the first entry whose criteria all match `fields`.
    pub fn first_match(&self, fields: &LeadFields) -> Option<usize> {
        // Each lead field is normalized once, not once per criterion tested.
        let values: Vec<(&str, FieldValue)> = fields
            .iter()
            .map(|(name, value)| (name.as_str(), FieldValue::of(Some(value))))
            .collect();
        let missing = FieldValue::default();
        let value_of = |field: &str| {
            values
                .iter()
                .find(|(name, _)| *name == field)
                .map_or(&missing, |(_, v)| v)
        };
        let mut lists: Vec<&[u32]> = Vec::with_capacity(self.shapes.len() + 1);
        lists.push(&self.unindexed);
        let mut key = String::new();
        for shape in &self.shapes {
            key.clear();
            let complete = shape.fields.iter().enumerate().all(|(n, field)| {
                if n > 0 {
                    key.push(SEPARATOR);
                }
                value_of(field)
                    .text
                    .as_deref()
                    .map(|v| key.push_str(v))
                    .is_some()
            });
            if let Some(list) = complete.then(|| shape.buckets.get(&key)).flatten() {
                lists.push(list);
            }
        }
        // Walk the candidate lists in ascending entry order (a k-way merge over a few lists).
        let mut cursors = vec![0usize; lists.len()];
        loop {
            let next = lists
                .iter()
                .zip(&cursors)
                .filter_map(|(list, &at)| list.get(at).copied())
                .min()?;
            for (list, at) in lists.iter().zip(cursors.iter_mut()) {
                if list.get(*at) == Some(&next) {
                    *at += 1;
                }
            }
            let entry = &self.entries[next as usize];
            if entry
                .criteria
                .iter()
                .all(|c| c.matches_value(value_of(c.field())))
            {
                return Some(next as usize);
            }
        }
    }
}

/// Every key an entry is indexed under: the product of its chosen criteria's values.
fn entry_keys(chosen: &[&Criterion]) -> Vec<String> {
    let mut out = vec![String::new()];
    for (n, criterion) in chosen.iter().enumerate() {
        out = out
            .iter()
            .flat_map(|prefix| {
                keys(criterion).into_iter().map(move |value| {
                    if n == 0 {
                        value.to_string()
                    } else {
                        format!("{prefix}{SEPARATOR}{value}")
                    }
                })
            })
            .collect();
    }
    out
}

/// The normalized values an `equals` / `in` criterion can be looked up by.
fn keys(criterion: &Criterion) -> Vec<&str> {
    match criterion {
        Criterion::Equals { value, .. } => vec![value.as_str()],
        Criterion::In { values, .. } => values.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A published rule set, compiled: what routing evaluates.
#[derive(Debug)]
pub struct ActiveRules {
    /// Its version.
    pub version: u32,
    /// The compiled entries.
    pub compiled: CompiledRules,
    /// Owner of leads no entry matches.
    pub default_owner: Option<Target>,
    /// Fields whose update re-routes a lead.
    pub watched_fields: BTreeSet<String>,
}

impl ActiveRules {
    /// Compile `spec` as `version`.
    pub fn compile(version: u32, spec: &RuleSetSpec) -> ActiveRules {
        ActiveRules {
            version,
            compiled: CompiledRules::compile(spec),
            default_owner: spec.default_owner,
            watched_fields: spec.watched_fields.clone(),
        }
    }
}
