//! Routing at intake: the lead events of one org that arrived together are received, and
//! each new lead (unless upstream opted out) is routed under the org's active rule set, with
//! its `LeadReceived` event id as the trigger. Everything (`LeadReceived`, pool picks,
//! `LeadRouted` / `LeadNotRouted`) is committed in one transaction, instead of a commit for
//! the lead, then a hop through the publisher and NATS to the router, then a commit per pick
//! and per decision. The router consumer later sees the `LeadReceived` with its trigger
//! decided and does nothing; a lead this path leaves alone (a target that no longer exists)
//! is routed by the router as before.
//!
//! Facts are gathered once per batch (`Commands::routing_facts`) and advance in memory with
//! each pick, open-lead counts included; every decision is the engine's `resolve`, as for
//! the router.

use super::route::{targets, Router, ROUTER};
use crate::commands::{Batch, CommandMeta};
use crate::error::AppError;
use crate::leads::NewLead;
use leadroute_domain::engine::{resolve, Caps};
use leadroute_domain::ids::{Actor, LeadId, OrgId};
use leadroute_domain::org::Org;
use leadroute_domain::routing::Trigger;
use uuid::Uuid;

impl Router {
    /// Receive `leads` (lead events of `org`) and route the new ones, in one transaction.
    /// Answers per event as `Commands::receive_leads` does. Batches of one process run one
    /// at a time; a lost race with another process retries the whole batch.
    pub async fn receive_and_route(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        leads: &[NewLead],
    ) -> Result<Vec<(LeadId, Result<usize, AppError>)>, AppError> {
        let _one_batch_at_a_time = self.inline.lock().await;
        self.commands
            .retry(|| self.receive_and_route_once(meta, org, leads))
            .await
    }

    async fn receive_and_route_once(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        leads: &[NewLead],
    ) -> Result<Vec<(LeadId, Result<usize, AppError>)>, AppError> {
        self.commands.load_in_org::<Org>(org, org).await?;
        let known = self.commands.known_owners(org, leads).await?;
        let ids = NewLead::lead_ids(org, leads);
        let (mut loaded, applied_to) = self.commands.load_receiving(&ids).await?;
        let mut batch = Batch::default();
        let mut answers = Vec::with_capacity(leads.len());
        let mut new_leads: Vec<(String, Uuid)> = Vec::new();
        for (new, lead_id) in leads.iter().zip(&applied_to) {
            let key = lead_id.to_string();
            let lead = loaded.get_mut(&key).expect("every lead is loaded");
            let command = new.receive(*lead_id, org, meta, &known);
            let answer = match batch.decide(lead, command, meta).await {
                Err(refused @ AppError::Refused { .. }) => Err(refused),
                Err(other) => return Err(other),
                Ok(events) => {
                    let received = lead.current_sequence == events.len() && !events.is_empty();
                    // A lead that arrived owned is not routed.
                    if received && new.route && new.owner.is_none() {
                        new_leads.push((key, events[0]));
                    }
                    Ok(events.len())
                }
            };
            answers.push((*lead_id, answer));
        }
        let mut facts = None;
        if !new_leads.is_empty() {
            if let Some(rules) = self.rules(org).await? {
                let (targets, users) = targets(
                    &rules,
                    new_leads.iter().map(|(key, _)| &loaded[key].aggregate),
                );
                let gathered = facts.insert(
                    self.commands
                        .routing_facts(org, targets, users, Caps::Apply)
                        .await?,
                );
                let fresh = new_leads.iter().filter_map(|(key, _)| {
                    let lead = &loaded[key].aggregate;
                    Some((lead.id?, &lead.fields))
                });
                self.commands.find_duplicates(gathered, fresh).await?;
                for (key, trigger) in new_leads {
                    let lead = loaded.get_mut(&key).expect("a received lead");
                    let route_meta = CommandMeta {
                        actor: Actor::System(ROUTER.into()),
                        at: meta.at,
                        correlation_id: meta.correlation_id,
                        causation_id: None,
                    }
                    .caused_by(trigger);
                    let lead_id = lead.aggregate.id.expect("a received lead");
                    let Ok(resolution) = resolve(
                        &rules,
                        lead_id,
                        &lead.aggregate,
                        trigger,
                        Trigger::Received,
                        &gathered.known,
                    ) else {
                        // A target gone since the rules were published: the router reports it.
                        continue;
                    };
                    let route =
                        gathered.settle(&mut batch, &rules, trigger, resolution, &route_meta)?;
                    match batch.decide(lead, route, &route_meta).await {
                        // Left to the router consumer, which decides it again.
                        Ok(_) | Err(AppError::Refused { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        self.commands.commit_batch(batch).await?;
        // The pools as this batch left them are what is now stored.
        if let Some(facts) = facts {
            self.commands.remember(facts.into_pools());
        }
        Ok(answers)
    }
}
