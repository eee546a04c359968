//! `parse`: what the strict edge costs per lead event. Parses the same typical CRM lead
//! events (about 400 bytes, 12 fields) with `nats::lead_event::parse` (strict JSON, schema,
//! limits) and with a plain `serde_json::from_slice` into the same type, and prints both
//! rates and the difference in microseconds per event.

use leadroute_app::lead_event::{self, LeadEventV1};
use serde_json::json;
use std::time::Instant;

fn event(i: usize) -> Vec<u8> {
    json!({
        "schema_version": 1, "upstream_event_id": format!("evt-{i}"), "upstream_system": "salesforce",
        "upstream_lead_id": format!("00Q{i:012}"), "occurred_at": "2026-11-28T08:00:00Z",
        "fields": {
            "company": format!("Company {i}"), "country": "DE", "employees": 1200 + i % 50,
            "industry": "retail", "email": format!("lead{i}@example.com"), "phone": "+49 30 1234567",
            "city": "Berlin", "status": "open", "source": "web", "score": 73.5,
            "tags": ["enterprise", "q4"], "address": {"street": "Main St 1", "zip": "10115"}
        }
    })
    .to_string()
    .into_bytes()
}

/// Run the benchmark over `events` parses of each kind.
pub fn run(events: usize) -> anyhow::Result<()> {
    let bodies: Vec<Vec<u8>> = (0..1000).map(event).collect();
    let bytes = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    let time = |parse: &dyn Fn(&[u8]) -> bool| {
        let started = Instant::now();
        let mut ok = 0usize;
        for i in 0..events {
            ok += usize::from(parse(&bodies[i % bodies.len()]));
        }
        assert_eq!(ok, events, "every event parses");
        started.elapsed().as_secs_f64()
    };
    let strict = time(&|body| lead_event::parse(body).is_ok());
    let plain = time(&|body| serde_json::from_slice::<LeadEventV1>(body).is_ok());
    let per = |seconds: f64| seconds / events as f64 * 1e6;
    crate::report::say(format!(
        "lead events of {bytes} bytes, {events} parses each"
    ));
    crate::report::say(format!(
        "strict edge (lead_event::parse): {:>10.0} events/s  {:>6.2} µs/event",
        events as f64 / strict,
        per(strict)
    ));
    crate::report::say(format!(
        "plain serde_json::from_slice:    {:>10.0} events/s  {:>6.2} µs/event",
        events as f64 / plain,
        per(plain)
    ));
    crate::report::say(format!(
        "cost of the checks: {:.2} µs per event",
        per(strict) - per(plain)
    ));
    Ok(())
}
