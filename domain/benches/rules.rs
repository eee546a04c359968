//! Rule evaluation cost at 100, 1,000 and 10,000 entries (issue 6: median ≤ 2 µs per lead
//! at 10,000 entries, and at most 3× the 100-entry cost). Entries look like real territory
//! rules: country and industry equalities, an employee-count range, some `in` lists and
//! prefixes, and a catch-all at the end; leads are drawn across the same values, so some
//! match early, some late, some only the catch-all.
//!
//! `cargo bench -p leadroute-domain --bench rules`

// criterion_group! generates a function it cannot document.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion as Bench};
use leadroute_domain::ids::QueueId;
use leadroute_domain::lead::LeadFields;
use leadroute_domain::routing::criteria::Criterion;
use leadroute_domain::routing::rules::{CompiledRules, Entry, RuleSetSpec, Target};
use serde_json::json;
use uuid::Uuid;

const COUNTRIES: usize = 120;
const INDUSTRIES: usize = 40;

fn country(i: usize) -> String {
    format!("C{:03}", i % COUNTRIES)
}

fn industry(i: usize) -> String {
    format!("industry-{}", i % INDUSTRIES)
}

fn spec(entries: usize) -> RuleSetSpec {
    let target = Target::Queue(QueueId(Uuid::from_u128(1)));
    let mut list: Vec<Entry> = (0..entries - 1)
        .map(|i| {
            let mut criteria = vec![
                Criterion::Equals {
                    field: "country".into(),
                    value: country(i * 7 + i / COUNTRIES),
                },
                Criterion::Range {
                    field: "employees".into(),
                    min: Some(((i % 5) * 100) as f64),
                    max: Some(((i % 5) * 100 + 5000) as f64),
                },
            ];
            match i % 4 {
                0 => criteria.push(Criterion::Equals {
                    field: "industry".into(),
                    value: industry(i),
                }),
                1 => criteria.push(Criterion::In {
                    field: "industry".into(),
                    values: vec![industry(i), industry(i + 1), industry(i + 2)],
                }),
                2 => criteria.push(Criterion::Prefix {
                    field: "company".into(),
                    prefix: format!("co{}", i % 10),
                }),
                _ => criteria.push(Criterion::NotEquals {
                    field: "status".into(),
                    value: "won".into(),
                }),
            }
            Entry {
                acceptance_deadline: None,
                fallback: None,
                criteria,
                target,
                keep_owner: false,
                notify: false,
            }
        })
        .collect();
    list.push(Entry {
        acceptance_deadline: None,
        fallback: None,
        criteria: vec![],
        target,
        keep_owner: false,
        notify: false,
    });
    RuleSetSpec {
        entries: list,
        ..Default::default()
    }
}

fn leads() -> Vec<LeadFields> {
    (0..512)
        .map(|i| {
            [
                ("country", json!(country(i * 13))),
                ("industry", json!(industry(i * 3))),
                ("employees", json!((i * 37) % 6000)),
                ("company", json!(format!("co{} corp", i % 12))),
                ("status", json!("open")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .collect()
}

fn first_match(c: &mut Bench) {
    let leads = leads();
    let mut group = c.benchmark_group("first_match per lead");
    for entries in [100, 1_000, 10_000] {
        let rules = CompiledRules::compile(&spec(entries));
        group.bench_with_input(BenchmarkId::from_parameter(entries), &rules, |b, rules| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % leads.len();
                black_box(rules.first_match(black_box(&leads[i])))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, first_match);
criterion_main!(benches);
