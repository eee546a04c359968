//! Rule sets: ordered entries (criteria joined by AND → a partner user, a queue or a pool),
//! a default owner, and the fields whose update re-routes a lead; and their compiled form,
//! which finds the first matching entry without testing every entry.
//!
//! Compilation indexes each entry under one of its `equals` / `in` criteria (the one on the
//! field with the most distinct values across the rule set); a lead then tests only the
//! entries indexed under its own values, plus the entries with no such criterion, in entry
//! order. First match wins.

use super::criteria::{field_text, Criterion};
use crate::ids::{PartnerUserId, PoolId, QueueId};
use crate::lead::LeadFields;
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
    /// field → normalized value → indices of the entries indexed under it, ascending.
    index: HashMap<String, HashMap<String, Vec<u32>>>,
    /// Entries with no `equals` / `in` criterion, ascending: tested for every lead.
    unindexed: Vec<u32>,
}

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
        let mut index: HashMap<String, HashMap<String, Vec<u32>>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let best = entry
                .criteria
                .iter()
                .filter(|c| !keys(c).is_empty())
                .max_by_key(|c| distinct.get(c.field()).map_or(0, BTreeSet::len));
            match best {
                Some(criterion) => {
                    let by_value = index.entry(criterion.field().to_string()).or_default();
                    for value in keys(criterion) {
                        let list = by_value.entry(value.to_string()).or_default();
                        if list.last() != Some(&(i as u32)) {
                            list.push(i as u32);
                        }
                    }
                }
                None => unindexed.push(i as u32),
            }
        }
        CompiledRules {
            entries,
            index,
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
        let mut lists: Vec<&[u32]> = Vec::with_capacity(self.index.len() + 1);
        lists.push(&self.unindexed);
        for (field, by_value) in &self.index {
            if let Some(list) = field_text(fields.get(field)).and_then(|v| by_value.get(&v)) {
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
                .all(|c| c.matches(fields.get(c.field())))
            {
                return Some(next as usize);
            }
        }
    }
}

/// The normalized values an `equals` / `in` criterion can be looked up by.
fn keys(criterion: &Criterion) -> Vec<&str> {
    match criterion {
        Criterion::Equals { value, .. } => vec![value.as_str()],
        Criterion::In { values, .. } => values.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}
