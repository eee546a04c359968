//! The offer timers (`rm_offer_timers`, part of the workflow projector): one row per
//! pending offer with a deadline (the lead, its org, the offeree, the deadline and the
//! reminder time until the reminder went out), the table the scheduler reads due timers
//! from. A row goes when the offer does
//! (accepted, declined, lapsed, the lead moved or closed). Rebuilding it from the log
//! restores exactly the pending offers, so a rebuild fires no past timer again (and the
//! lead refuses a recall or reminder for an offer it no longer has).

use crate::projector::ProjectionError;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::Owner;
use leadroute_domain::lead::LeadEvent;
use leadroute_domain::routing::is_closed;
use leadroute_store::log::{AnyEvent, LogEvent};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// A pending offer's timer.
#[derive(Debug, Clone, Copy)]
struct Timer {
    org: Uuid,
    user: Uuid,
    deadline: DateTime<Utc>,
    remind_at: Option<DateTime<Utc>>,
}

/// What a batch does to a lead's timer.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// A new offer's timer replaces any other.
    Set(Timer),
    /// No pending offer with a deadline any more.
    Drop,
    /// The stored timer's reminder went out.
    Reminded,
}

impl Change {
    /// What `event` of a lead of `org` does to its timer, if anything.
    fn of(event: &LeadEvent, org: Option<Uuid>) -> Option<Change> {
        match event {
            LeadEvent::LeadRouted {
                change,
                deadline,
                remind_at,
                ..
            }
            | LeadEvent::LeadReassigned {
                change,
                deadline,
                remind_at,
                ..
            } => Some(match (change.to, deadline, org) {
                (Owner::PartnerUser(user), Some(deadline), Some(org)) => Change::Set(Timer {
                    org,
                    user: user.0,
                    deadline: *deadline,
                    remind_at: *remind_at,
                }),
                _ => Change::Drop,
            }),
            LeadEvent::LeadEnqueued { .. }
            | LeadEvent::LeadClaimed { .. }
            | LeadEvent::LeadAccepted { .. }
            | LeadEvent::LeadDeclined { .. }
            | LeadEvent::LeadOfferLapsed { .. } => Some(Change::Drop),
            LeadEvent::LeadUpdated { changed, .. } if is_closed(changed) => Some(Change::Drop),
            LeadEvent::LeadOfferReminded { .. } => Some(Change::Reminded),
            LeadEvent::LeadReceived { .. }
            | LeadEvent::LeadUpdated { .. }
            | LeadEvent::LeadUpdateStale { .. }
            | LeadEvent::LeadOwnerKept { .. }
            | LeadEvent::LeadNotRouted { .. }
            | LeadEvent::LeadHeld { .. }
            | LeadEvent::LeadHoldResolved { .. } => None,
        }
    }

    /// This change followed by `next`.
    fn then(self, next: Change) -> Change {
        match (self, next) {
            (Change::Set(timer), Change::Reminded) => Change::Set(Timer {
                remind_at: None,
                ..timer
            }),
            (Change::Drop, Change::Reminded) => Change::Drop,
            (_, next) => next,
        }
    }
}

/// Apply `events` to rm_offer_timers.
pub(super) async fn apply(
    conn: &mut PgConnection,
    events: &[LogEvent],
) -> Result<(), ProjectionError> {
    let mut changes: HashMap<Uuid, Change> = HashMap::new();
    for event in events {
        let AnyEvent::Lead(lead_event) = &event.event else {
            continue;
        };
        let Some(change) = Change::of(lead_event, event.org_id) else {
            continue;
        };
        changes
            .entry(event.aggregate_id)
            .and_modify(|earlier| *earlier = earlier.then(change))
            .or_insert(change);
    }
    if changes.is_empty() {
        return Ok(());
    }
    let (mut dropped, mut reminded) = (Vec::new(), Vec::new());
    let (mut leads, mut orgs, mut users, mut deadlines, mut reminders) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (lead, change) in changes {
        match change {
            Change::Reminded => reminded.push(lead),
            Change::Drop => dropped.push(lead),
            Change::Set(timer) => {
                leads.push(lead);
                orgs.push(timer.org);
                users.push(timer.user);
                deadlines.push(timer.deadline);
                reminders.push(timer.remind_at);
            }
        }
    }
    // Three disjoint sets of leads, one statement.
    sqlx::query(
        "WITH gone AS (DELETE FROM rm_offer_timers WHERE lead_id = ANY($1)),
              done AS (UPDATE rm_offer_timers SET remind_at = NULL WHERE lead_id = ANY($2))
         INSERT INTO rm_offer_timers (lead_id, org_id, user_id, deadline, remind_at)
         SELECT * FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::timestamptz[])
         ON CONFLICT (lead_id) DO UPDATE SET org_id = excluded.org_id, user_id = excluded.user_id,
                deadline = excluded.deadline, remind_at = excluded.remind_at",
    )
    .bind(&dropped)
    .bind(&reminded)
    .bind(&leads)
    .bind(&orgs)
    .bind(&users)
    .bind(&deadlines)
    .bind(&reminders)
    .execute(conn)
    .await?;
    Ok(())
}
