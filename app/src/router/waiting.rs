//! Waking waiting leads: a lead left unrouted with `all_at_capacity` or
//! `no_assignable_member` and no owner waits (the store keeps the list in the commit's
//! transaction, with the target it waits for). When something may have freed a place in
//! its org (a lead closed or moved away from its owner, a member resumed, signed in, joined
//! or got a higher cap, or a pause ran out), the org's waiting leads are decided again,
//! target by target, oldest first, page by page, against facts that advance with each pick: a lead that now has a place is routed (trigger
//! `freed`); one that still has none is left as it is and nothing is written for it. So a
//! freed place goes to the lead that waited longest, and no more leads move than there are
//! places (no thundering herd). The lead itself refuses a `freed` decision once it no
//! longer waits, so two routers waking the same org route each lead once.

use super::route::{targets, Router, ROUTER};
use crate::commands::{Batch, CommandMeta};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leadroute_domain::engine::{resolve, Caps};
use leadroute_domain::ids::{Actor, OrgId};
use leadroute_domain::lead::Lead;
use leadroute_domain::routing::{RouteOutcome, Trigger};
use uuid::Uuid;

/// Waiting leads decided together (one transaction).
const WAITING_PAGE: i64 = 200;

/// Most pages of one target read by one waking (10,000 leads): an org with a great many
/// leads that cannot be placed does not hold the router, shared by every org, for long;
/// the next waking or sweep starts again from the oldest.
const MAX_PAGES: usize = 50;

/// Namespace of the triggers of `freed` decisions: one per waking and lead, so a repeated
/// waking decides nothing twice.
const FREED_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6164_726f_7574_652d_6672_6565_0001);

impl Router {
    /// Route the waiting leads of `org` that a member can now take, oldest first; `cause`
    /// is what woke them (an event id). Answers how many were routed.
    ///
    /// The leads are taken by the target they wait for, a page at a time, oldest first.
    /// A target's pass ends with the first page that places nobody while every lead in it
    /// is still short of a place: its leads compete for the same places, so the younger
    /// find none either. A waking therefore reads about one page per target plus one per
    /// 200 leads it routes, and never more than [`MAX_PAGES`] pages of one target.
    pub async fn route_waiting(&self, org: OrgId, cause: Uuid) -> Result<usize, AppError> {
        let store = self.commands.store();
        let mut routed = 0;
        for target in store.waiting_targets(org.0).await? {
            let mut after = None;
            for _ in 0..MAX_PAGES {
                let page = store.waiting(org.0, target, after, WAITING_PAGE).await?;
                let Some(last) = page.last().copied() else {
                    break;
                };
                let page_routed = self
                    .commands
                    .retry(|| self.route_page(org, &page, cause))
                    .await?;
                routed += page_routed.placed;
                // Nobody placed and everyone still short of a place: the younger leads of
                // this target find none either. Leads with no recorded target may wait for
                // different targets, so their pass goes on.
                let exhausted = page_routed.placed == 0 && page_routed.all_blocked;
                if (exhausted && target.is_some()) || page.len() < WAITING_PAGE as usize {
                    break;
                }
                after = Some(last);
            }
        }
        Ok(routed)
    }

    /// Decide `leads` (`(since, lead)`, waiting, oldest first) in one transaction.
    async fn route_page(
        &self,
        org: OrgId,
        leads: &[(DateTime<Utc>, Uuid)],
        cause: Uuid,
    ) -> Result<PageRouted, AppError> {
        let Some(rules) = self.rules(org).await? else {
            return Ok(PageRouted::default());
        };
        let keys: Vec<String> = leads.iter().map(|(_, lead)| lead.to_string()).collect();
        let mut loaded = self.commands.load_many::<Lead>(&keys).await?;
        let mut batch = Batch::default();
        let mut waiting = Vec::with_capacity(leads.len());
        for ((since, id), key) in leads.iter().zip(&keys) {
            match &loaded[key].aggregate {
                lead if lead.org_id == Some(org) && lead.waiting.is_some() => {
                    waiting.push(key.clone())
                }
                // Not waiting (any more): a stale entry to forget.
                _ => batch.forget_stale(*id, *since),
            }
        }
        let (targets, users) = targets(&rules, waiting.iter().map(|key| &loaded[key].aggregate));
        let mut facts = self
            .commands
            .routing_facts(org, targets, users, Caps::Apply)
            .await?;
        let mut routed = PageRouted {
            placed: 0,
            all_blocked: true,
        };
        for key in waiting {
            let lead = loaded.get_mut(&key).expect("a loaded lead");
            let lead_id = lead.aggregate.id.expect("a received lead");
            let trigger = Uuid::new_v5(
                &FREED_NAMESPACE,
                format!("{cause}\u{1f}{lead_id}").as_bytes(),
            );
            let meta = CommandMeta::now(Actor::System(ROUTER.into())).caused_by(cause);
            let Ok(resolution) = resolve(
                &rules,
                lead_id,
                &lead.aggregate,
                trigger,
                Trigger::Freed,
                &facts.known,
            ) else {
                // Its target is gone: it stays waiting (a re-run reports why).
                routed.all_blocked = false;
                continue;
            };
            match resolution.outcome {
                RouteOutcome::Assign { .. } => {}
                // Still no place: nothing is written.
                RouteOutcome::Leave(reason) if reason.waits() => continue,
                // The rules now say something else (no match, closed, keep): a re-run
                // records it; the waking writes nothing.
                _ => {
                    routed.all_blocked = false;
                    continue;
                }
            }
            let route = facts.settle(&mut batch, &rules, trigger, resolution, &meta)?;
            match batch.decide(lead, route, &meta).await {
                Ok(events) => routed.placed += usize::from(!events.is_empty()),
                // The owner may not receive it after all: it keeps waiting.
                Err(AppError::Refused { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        self.commands.commit_batch(batch).await?;
        self.commands.remember(facts.into_pools());
        Ok(routed)
    }
}

/// What deciding a page of waiting leads did.
#[derive(Debug, Default)]
struct PageRouted {
    /// Leads routed.
    placed: usize,
    /// Whether every lead not routed is still short of a place (rather than having no
    /// target any more, or a different answer from the rules).
    all_blocked: bool,
}
