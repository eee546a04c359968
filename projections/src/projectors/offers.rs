//! The offers read model (`rm_offers`, part of the workflow projector): one row per offer
//! made to a partner user (a lead given to them by the rules, by hand, in bulk or by
//! import) with how it ended: `pending` until `accepted`, `declined`, `lapsed`, or `moved`
//! (the lead went elsewhere first), and when. The source of
//! the channel-manager view of acceptance per partner account (rate, median time to
//! accept).
//!
//! A batch folds each lead's events in memory: the first answer it holds closes the offer
//! stored before the batch (one multi-row update), the offers it makes are inserted whole
//! (one multi-row insert).

use crate::projector::ProjectionError;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::Owner;
use leadroute_domain::lead::LeadEvent;
use leadroute_store::log::{AnyEvent, LogEvent};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// How an offer ended.
pub mod outcome {
    /// Not answered yet.
    pub const PENDING: &str = "pending";
    /// Accepted by the offeree.
    pub const ACCEPTED: &str = "accepted";
    /// Declined by the offeree.
    pub const DECLINED: &str = "declined";
    /// Recalled at its deadline.
    pub const LAPSED: &str = "lapsed";
    /// The lead went to another owner before any answer.
    pub const MOVED: &str = "moved";
}

/// An offer made in the batch.
struct Offer {
    lead: Uuid,
    sequence: i64,
    org: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
    ended: Option<(&'static str, DateTime<Utc>)>,
}

/// A lead's offers in the batch.
#[derive(Default)]
struct Lead {
    /// Received in this batch: nothing of it is stored yet.
    fresh: bool,
    /// The end of the offer stored before the batch, if the batch ended it.
    stored_ended: Option<(&'static str, DateTime<Utc>)>,
    /// Offers the batch made, in order.
    made: Vec<Offer>,
}

impl Lead {
    /// End the lead's latest pending offer (the batch's last one, else the stored one).
    fn end(&mut self, how: &'static str, at: DateTime<Utc>) {
        match self.made.last_mut() {
            Some(offer) => {
                offer.ended.get_or_insert((how, at));
            }
            None if self.fresh => {}
            None => {
                self.stored_ended.get_or_insert((how, at));
            }
        }
    }
}

/// Rows of `rm_offers`, as columns.
#[derive(Default)]
struct OfferRows {
    lead: Vec<Uuid>,
    sequence: Vec<i64>,
    org: Vec<Uuid>,
    user: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
    outcome: Vec<&'static str>,
    answered: Vec<Option<DateTime<Utc>>>,
}

/// Apply `events` to rm_offers.
pub(super) async fn apply(
    conn: &mut PgConnection,
    events: &[LogEvent],
) -> Result<(), ProjectionError> {
    let mut leads: HashMap<Uuid, Lead> = HashMap::new();
    for event in events {
        let AnyEvent::Lead(lead_event) = &event.event else {
            continue;
        };
        let id = event.aggregate_id;
        let end = match lead_event {
            LeadEvent::LeadAccepted { at, .. } => Some((outcome::ACCEPTED, *at)),
            LeadEvent::LeadDeclined { at, .. } => Some((outcome::DECLINED, *at)),
            LeadEvent::LeadOfferLapsed { at, .. } => Some((outcome::LAPSED, *at)),
            other => other
                .owner_change()
                .map(|change| (outcome::MOVED, change.at)),
        };
        if let Some((how, at)) = end {
            leads.entry(id).or_default().end(how, at);
        }
        // A new offer: an owner change to a partner user, other than a claim (which is
        // its own acceptance).
        if let (Some(change), false, Some(org)) = (
            lead_event.owner_change(),
            matches!(lead_event, LeadEvent::LeadClaimed { .. }),
            event.org_id,
        ) {
            if let Owner::PartnerUser(user) = change.to {
                leads.entry(id).or_default().made.push(Offer {
                    lead: id,
                    sequence: event.sequence,
                    org,
                    user: user.0,
                    at: change.at,
                    ended: None,
                });
            }
        }
    }
    if leads.is_empty() {
        return Ok(());
    }
    let (mut ended, mut hows, mut whens) = (Vec::new(), Vec::new(), Vec::new());
    let mut rows = OfferRows::default();
    for (id, lead) in leads {
        if let Some((how, at)) = lead.stored_ended {
            ended.push(id);
            hows.push(how);
            whens.push(at);
        }
        for offer in lead.made {
            rows.lead.push(offer.lead);
            rows.sequence.push(offer.sequence);
            rows.org.push(offer.org);
            rows.user.push(offer.user);
            rows.at.push(offer.at);
            rows.outcome
                .push(offer.ended.map_or(outcome::PENDING, |e| e.0));
            rows.answered.push(offer.ended.map(|e| e.1));
        }
    }
    if !ended.is_empty() {
        sqlx::query(
            "UPDATE rm_offers o SET outcome = e.outcome, answered_at = e.at
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS e(lead_id, outcome, at)
              WHERE o.lead_id = e.lead_id AND o.outcome = 'pending'",
        )
        .bind(&ended)
        .bind(&hows)
        .bind(&whens)
        .execute(&mut *conn)
        .await?;
    }
    if !rows.lead.is_empty() {
        sqlx::query(
            "INSERT INTO rm_offers (lead_id, sequence, org_id, user_id, offered_at, outcome, answered_at)
             SELECT * FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::uuid[], $5::timestamptz[],
                                  $6::text[], $7::timestamptz[])",
        )
        .bind(&rows.lead)
        .bind(&rows.sequence)
        .bind(&rows.org)
        .bind(&rows.user)
        .bind(&rows.at)
        .bind(&rows.outcome)
        .bind(&rows.answered)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
