//! The routing policy's rules: first match wins (against a plain scan, by property), the
//! default owner only when nothing matches, keep-owner only while the owner is assignable,
//! closed leads are not routed, and the same inputs always give the same plan.

use super::criteria::Criterion;
use super::rules::{CompiledRules, Entry, RuleSetSpec, Target};
use super::{plan, NotRouted, Plan};
use crate::fields::LeadFields;
use crate::ids::{Owner, PartnerUserId, QueueId};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

fn queue(n: u128) -> Target {
    Target::Queue(QueueId(Uuid::from_u128(n)))
}

fn eq(field: &str, value: &str) -> Criterion {
    Criterion::Equals {
        field: field.into(),
        value: value.into(),
    }
}

fn entry(criteria: Vec<Criterion>, n: u128) -> Entry {
    Entry {
        acceptance_deadline: None,
        fallback: None,
        criteria,
        target: queue(n),
        keep_owner: false,
        notify: false,
    }
}

fn fields(pairs: &[(&str, serde_json::Value)]) -> LeadFields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn spec(entries: Vec<Entry>) -> RuleSetSpec {
    RuleSetSpec {
        entries,
        ..Default::default()
    }
}

#[test]
fn a_lead_matching_entries_two_and_four_goes_by_entry_two() {
    let rules = CompiledRules::compile(&spec(vec![
        entry(vec![eq("country", "FR")], 1),
        entry(vec![eq("country", "DE")], 2),
        entry(vec![eq("industry", "retail")], 3),
        entry(
            vec![Criterion::Prefix {
                field: "company".into(),
                prefix: "glo".into(),
            }],
            4,
        ),
    ]));
    let lead = fields(&[("country", json!("de")), ("company", json!("Globex"))]);
    assert_eq!(rules.first_match(&lead), Some(1));
}

#[test]
fn the_default_owner_takes_only_leads_no_entry_matches() {
    let rules = CompiledRules::compile(&spec(vec![entry(vec![eq("country", "DE")], 1)]));
    let unmatched = fields(&[("country", json!("US"))]);
    assert!(matches!(
        plan(&rules, Some(queue(9)), &unmatched, None),
        Plan::Route { entry: None, target, .. } if target == queue(9)
    ));
    assert_eq!(
        plan(&rules, None, &unmatched, None),
        Plan::Leave(NotRouted::NoRuleMatched)
    );
    let matched = fields(&[("country", json!("DE"))]);
    assert!(matches!(
        plan(&rules, Some(queue(9)), &matched, None),
        Plan::Route { entry: Some(0), .. }
    ));
}

#[test]
fn keep_owner_keeps_an_assignable_owner_only() {
    let mut keep = entry(vec![], 1);
    keep.keep_owner = true;
    let rules = CompiledRules::compile(&spec(vec![keep]));
    let owner = Owner::PartnerUser(PartnerUserId(Uuid::from_u128(5)));
    let lead = fields(&[]);
    assert_eq!(
        plan(&rules, None, &lead, Some((owner, true))),
        Plan::KeepOwner { entry: 0 }
    );
    assert!(matches!(
        plan(&rules, None, &lead, Some((owner, false))),
        Plan::Route {
            owner_not_assignable: true,
            ..
        }
    ));
    assert!(matches!(
        plan(&rules, None, &lead, None),
        Plan::Route {
            owner_not_assignable: false,
            ..
        }
    ));
}

#[test]
fn a_number_given_as_a_criterion_value_compares_as_its_text() {
    let criteria: Vec<Criterion> = serde_json::from_value(serde_json::json!([
        {"op": "equals", "field": "employees", "value": 250},
        {"op": "in", "field": "tier", "values": [1, "gold", true]},
    ]))
    .expect("numbers and booleans are accepted as values");
    assert!(criteria[0].matches(Some(&serde_json::json!(250))));
    assert!(criteria[0].matches(Some(&serde_json::json!("250"))));
    assert!(criteria[1].matches(Some(&serde_json::json!(1))));
    assert!(criteria[1].matches(Some(&serde_json::json!(true))));
    let stored = serde_json::to_value(&criteria[0]).unwrap();
    assert_eq!(stored["value"], "250", "stored as text, as before");
    let refused = serde_json::from_value::<Criterion>(
        serde_json::json!({"op": "equals", "field": "f", "value": {"a": 1}}),
    )
    .unwrap_err();
    assert!(
        refused.to_string().contains("text or a number"),
        "{refused}"
    );
}

#[test]
fn closed_leads_are_not_routed() {
    let rules = CompiledRules::compile(&spec(vec![entry(vec![], 1)]));
    let won = fields(&[("status", json!(" Won "))]);
    assert_eq!(
        plan(&rules, None, &won, None),
        Plan::Leave(NotRouted::LeadClosed)
    );
}

#[test]
fn a_pool_as_default_owner_or_a_malformed_criterion_is_refused_with_its_place() {
    let mut bad = spec(vec![
        entry(vec![], 1),
        entry(
            vec![Criterion::In {
                field: "x".into(),
                values: vec![],
            }],
            2,
        ),
    ]);
    assert!(bad.problem().unwrap().starts_with("entries[1]"));
    bad.entries.pop();
    bad.default_owner = Some(Target::Pool(crate::ids::PoolId(Uuid::from_u128(1))));
    assert!(bad.problem().unwrap().starts_with("default_owner"));
}

const FIELDS: [&str; 3] = ["country", "industry", "tier"];
const VALUES: [&str; 4] = ["a", "b", "c", ""];

fn criterion() -> impl Strategy<Value = Criterion> {
    let field = proptest::sample::select(&FIELDS[..]).prop_map(String::from);
    let value = proptest::sample::select(&VALUES[..]).prop_map(String::from);
    prop_oneof![
        (field.clone(), value.clone())
            .prop_map(|(field, value)| Criterion::Equals { field, value }),
        (field.clone(), value.clone())
            .prop_map(|(field, value)| Criterion::NotEquals { field, value }),
        (
            field.clone(),
            proptest::collection::vec(value.clone(), 1..3)
        )
            .prop_map(|(field, values)| Criterion::In { field, values }),
        (field.clone(), value.clone())
            .prop_map(|(field, prefix)| Criterion::Prefix { field, prefix }),
        field.clone().prop_map(|field| Criterion::IsEmpty { field }),
        (field, 0.0..3.0f64).prop_map(|(field, max)| Criterion::Range {
            field,
            min: Some(0.5),
            max: Some(max.max(0.5))
        }),
    ]
}

fn lead() -> impl Strategy<Value = LeadFields> {
    let value = prop_oneof![
        proptest::sample::select(&["A", " b", "c ", ""][..]).prop_map(|s| json!(s)),
        (0u8..4).prop_map(|n| json!(n)),
    ];
    proptest::collection::btree_map(
        proptest::sample::select(&FIELDS[..]).prop_map(String::from),
        value,
        0..3,
    )
}

proptest! {
    #[test]
    fn the_compiled_index_finds_the_same_first_match_as_a_plain_scan(
        entries in proptest::collection::vec(proptest::collection::vec(criterion(), 0..3), 0..25),
        leads in proptest::collection::vec(lead(), 1..10),
    ) {
        let spec = spec(entries.into_iter().enumerate().map(|(i, c)| entry(c, i as u128)).collect());
        let rules = CompiledRules::compile(&spec);
        for lead in &leads {
            let scan = spec.entries.iter().position(|e| {
                e.criteria.iter().all(|c| c.normalized().matches(lead.get(c.field())))
            });
            prop_assert_eq!(rules.first_match(lead), scan);
            prop_assert_eq!(plan(&rules, None, lead, None), plan(&rules, None, lead, None));
        }
    }
}

/// `decision` as lead events store it.
fn stored_form(decision: &super::Decision) -> serde_json::Value {
    super::stored_decision::serialize(decision, serde_json::value::Serializer).unwrap()
}

/// A decision read back as lead events read it.
fn read(stored: serde_json::Value) -> super::Decision {
    super::stored_decision::deserialize(stored).unwrap()
}

fn pool_decision() -> super::Decision {
    use super::rotation::{Member, Rotation};
    use super::{Candidate, Decision, Trigger, Verdict};
    let member = |n: u128| Member::PartnerUser(PartnerUserId(Uuid::from_u128(n)));
    let mut rotation = Rotation::default();
    for n in 1..=4 {
        rotation.add(member(n), n as u32);
    }
    let candidates: Vec<Candidate> = (1..=4)
        .map(|n| Candidate {
            member: member(n),
            verdict: if n == 2 {
                Verdict::Paused
            } else {
                Verdict::Assignable
            },
        })
        .collect();
    let (_, after) = rotation
        .pick(|m| super::is_assignable(&candidates, m))
        .unwrap();
    Decision {
        fallback: false,
        rule_set_version: 3,
        matched_entry: Some(7),
        default_owner: false,
        owner_not_assignable: false,
        owner_verdict: None,
        candidates,
        pool_before: Some(rotation.slots),
        pool_after: Some(after.slots),
        trigger: Trigger::Received,
        target: Some(super::rules::Target::Pool(crate::ids::PoolId(
            uuid::Uuid::from_u128(5),
        ))),
    }
}

#[test]
fn a_decision_record_names_each_pool_member_once_and_reads_back_whole() {
    let decision = pool_decision();
    let stored = stored_form(&decision);
    assert!(stored.get("pool_after").is_none(), "{stored}");
    assert!(stored.get("candidates").is_none(), "{stored}");
    assert_eq!(
        stored["verdicts"],
        json!(["assignable", "paused", "assignable", "assignable"])
    );
    let changed = stored["pool_changed"].as_array().unwrap();
    let before = decision.pool_before.as_ref().unwrap();
    let after = decision.pool_after.as_ref().unwrap();
    let differing = before.iter().zip(after).filter(|(b, a)| b != a).count();
    assert!(differing >= 1 && changed.len() == differing, "{stored}");
    assert_eq!(read(stored), decision);
}

#[test]
fn a_decision_record_stored_whole_still_reads_and_is_shown_whole() {
    let decision = pool_decision();
    // As records were stored before `pool_changed`: every field whole.
    let whole = serde_json::to_value(&decision).unwrap();
    assert!(whole["pool_after"].is_array());
    assert_eq!(read(whole.clone()), decision);
    let mut event = json!({"trigger": Uuid::from_u128(9), "decision": stored_form(&decision)});
    super::Decision::expand_in(&mut event);
    assert_eq!(event["decision"], whole);
}

#[test]
fn candidates_that_are_not_the_pools_members_are_stored_whole() {
    let mut decision = pool_decision();
    decision.candidates.pop();
    let stored = stored_form(&decision);
    assert!(stored.get("verdicts").is_none(), "{stored}");
    assert_eq!(stored["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(read(stored), decision);
    // A decision without a pool (a user or queue target) keeps its candidates as they are.
    decision.pool_before = None;
    decision.pool_after = None;
    let stored = stored_form(&decision);
    assert_eq!(read(stored), decision);
}
