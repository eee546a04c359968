//! Bulk reassignment: start an operation (selection frozen, target checked), run it batch by
//! batch, cancel it. Each batch loads its leads with one query, decides every move (cause
//! `bulk`, the operation id on each event), and commits the moves, any pool picks and the
//! batch's per-lead outcomes in one transaction: a crash loses at most the batch in flight,
//! which the next run does again from the recorded outcomes, and a lead moves at most once
//! per operation (the lead aggregate also refuses a second move of one operation).

use crate::commands::Batch;
use crate::commands::{CommandMeta, Commands, Committed, Loaded};
use crate::error::AppError;
use crate::facts::{missing, RoutingFacts};
use chrono::Utc;
use leadroute_domain::bulk::{
    BulkCommand, BulkOperation, LeadFilter, LeadOutcome, OutcomeKind, Selection, StartBulk,
};
use leadroute_domain::engine::{self, Caps, Facts};
use leadroute_domain::ids::{BulkOperationId, LeadId, OrgId, Owner, PartnerAccountId, PoolId};
use leadroute_domain::lead::{Lead, LeadCommand};
use leadroute_domain::org::{Org, PartnerWorkflow};
use leadroute_domain::partner_user::NotAssignable;
use leadroute_domain::queue::Queue;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::Target;
use leadroute_projections::queries;
use leadroute_store::named;
use uuid::Uuid;

/// Leads per batch (one transaction each).
pub const BATCH: usize = 500;
/// Most lead ids an explicit list may hold.
pub const MAX_LIST: usize = 100_000;

/// Namespace of pool-pick triggers of bulk moves (one per operation and lead).
const PICK_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6164_726f_7574_652d_7069_636b_0001);

/// Which leads to move.
#[derive(Debug, Clone)]
pub enum BulkSelection {
    /// These leads, in this order.
    Leads(Vec<LeadId>),
    /// The leads the filter selects now (frozen at start).
    Filter(LeadFilter),
}

/// A bulk reassignment as submitted.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    /// Which leads.
    pub selection: BulkSelection,
    /// Where they go.
    pub target: Target,
    /// Send each new owner the assignment email.
    pub notify: bool,
    /// Why (recorded on the operation).
    pub reason: String,
}

/// Whose leads the submitter may move.
#[derive(Debug, Clone)]
pub enum BulkScope {
    /// Every lead of the org (admins, the operator's CLI).
    Org,
    /// Leads owned by partner users of these accounts (a channel manager's accounts); other
    /// leads of an explicit list are reported as `lead_not_found`.
    Accounts(Vec<PartnerAccountId>),
}

/// The facts about the target a batch needs, looked up once per batch.
enum TargetFacts {
    /// A partner user and whether it may receive leads now.
    User(Owner, Result<(), NotAssignable>),
    /// A queue (it exists).
    Queue(Owner),
    /// A pool, with the facts about its members (caps ignored: a bulk move is a person's
    /// decision).
    Pool(PoolId, Box<RoutingFacts>),
}

impl Commands {
    /// Start a bulk reassignment with id `id` (see `BulkOperationId::for_key`); the
    /// selection is frozen now. Starting an operation that exists with the same request
    /// changes nothing (`events: 0`); with a different one it is refused.
    pub async fn start_bulk(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        id: BulkOperationId,
        scope: &BulkScope,
        request: &BulkRequest,
    ) -> Result<Committed, AppError> {
        self.load_in_org::<leadroute_domain::org::Org>(org, org)
            .await?;
        self.bulk_target(org, request.target).await?;
        let within: Option<Vec<Uuid>> = match scope {
            BulkScope::Org => None,
            BulkScope::Accounts(accounts) => Some(accounts.iter().map(|a| a.0).collect()),
        };
        let (selection, leads, out_of_scope) = match &request.selection {
            BulkSelection::Leads(ids) => {
                if ids.len() > MAX_LIST {
                    return Err(AppError::refusal(
                        super::error::codes::VALIDATION_FAILED,
                        leadroute_domain::RefusalKind::InvalidInput,
                        format!("lead_ids: at most {MAX_LIST} leads per operation"),
                    ));
                }
                let (inside, outside) = match &within {
                    None => (ids.clone(), vec![]),
                    Some(accounts) => {
                        let raw: Vec<Uuid> = ids.iter().map(|l| l.0).collect();
                        let inside: std::collections::HashSet<LeadId> = queries::bulk_selection(
                            &self.pool,
                            org,
                            &LeadFilter::default(),
                            Some(accounts),
                            Some(&raw),
                        )
                        .await
                        .map_err(|e| AppError::Store(Box::new(e)))?
                        .into_iter()
                        .collect();
                        ids.iter().partition(|lead| inside.contains(lead))
                    }
                };
                // Leads outside the submitter's scope come first and are refused at once,
                // in the transaction that starts the operation.
                let mut frozen = outside.clone();
                frozen.extend(inside);
                (Selection::List, frozen, outside)
            }
            BulkSelection::Filter(filter) => {
                let leads =
                    queries::bulk_selection(&self.pool, org, filter, within.as_deref(), None)
                        .await
                        .map_err(|e| AppError::Store(Box::new(e)))?;
                (Selection::Filter(filter.clone()), leads, vec![])
            }
        };
        let start = StartBulk {
            operation_id: id,
            org_id: org,
            selection,
            leads,
            target: request.target,
            notify: request.notify,
            reason: request.reason.clone(),
            actor: meta.actor.clone(),
            at: meta.at,
        };
        let committed = self
            .retry(|| async {
                let mut op = self.load::<BulkOperation>(id).await?;
                if op.aggregate.org_id.is_some_and(|o| o != org) {
                    return Err(AppError::refusal(
                        super::error::codes::IDEMPOTENCY_KEY_REUSED,
                        leadroute_domain::RefusalKind::Conflict,
                        "this operation id belongs to another org",
                    ));
                }
                let mut batch = Batch::default();
                let before = op.current_sequence;
                let written = batch
                    .decide(&mut op, BulkCommand::Start(Box::new(start.clone())), meta)
                    .await?;
                if !written.is_empty() && !out_of_scope.is_empty() {
                    let outcomes = out_of_scope
                        .iter()
                        .map(|lead| refused(*lead, "lead_not_found"))
                        .collect();
                    let record = BulkCommand::RecordOutcomes {
                        outcomes,
                        at: meta.at,
                    };
                    batch.decide(&mut op, record, meta).await?;
                }
                let (events, position) = self.commit_batch(batch).await?;
                Ok(Committed {
                    aggregate_type: "BulkOperation",
                    aggregate_id: id.to_string(),
                    events,
                    sequence: before + events,
                    position,
                })
            })
            .await?;
        Ok(committed)
    }

    /// Move the operation's remaining leads, batch by batch, until every lead has its
    /// outcome or the operation is cancelled; returns its final state. Safe to run again
    /// (or concurrently: a batch commits only onto the outcomes it was decided on).
    pub async fn run_bulk(
        &self,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<BulkOperation, AppError> {
        loop {
            if let Some(finished) = self.retry(|| self.bulk_batch(org, id)).await? {
                return Ok(finished);
            }
        }
    }

    /// Cancel a running operation: leads without an outcome stay where they are.
    pub async fn cancel_bulk(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<BulkOperation>(meta, org, id, || BulkCommand::Cancel {
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }

    /// Operations started and neither completed nor cancelled, of every org (to resume
    /// after a restart).
    pub async fn unfinished_bulk_operations(
        &self,
    ) -> Result<Vec<(OrgId, BulkOperationId)>, AppError> {
        let rows = named::unfinished_bulk_operations(&self.pool)
            .await
            .map_err(|e| AppError::Store(Box::new(e)))?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, org)| Some((org?.parse().ok()?, id.parse().ok()?)))
            .collect())
    }

    /// One batch: `Some(state)` once the operation is finished, `None` after a batch.
    async fn bulk_batch(
        &self,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<Option<BulkOperation>, AppError> {
        let mut op = self.load_in_org::<BulkOperation>(org, id).await?;
        let state = &op.aggregate;
        let (Some(target), Some(actor), true) =
            (state.target, state.actor.clone(), state.is_running())
        else {
            return Ok(Some(op.aggregate));
        };
        let pending: Vec<LeadId> = state.pending().iter().take(BATCH).copied().collect();
        let notify = state.notify;
        let filter_owner = match &state.selection {
            Some(Selection::Filter(filter)) => filter.owner,
            _ => None,
        };
        let meta = CommandMeta {
            actor,
            at: Utc::now(),
            correlation_id: id.0,
            causation_id: None,
        };
        let ids: Vec<String> = pending.iter().map(LeadId::to_string).collect();
        let mut leads = self.load_many::<Lead>(&ids).await?;
        let mut facts = self.bulk_target(org, target).await?;
        let workflow = self.state::<Org>(org, org).await?.workflow;
        let mut batch = Batch::default();
        let mut outcomes = Vec::with_capacity(pending.len());
        for (lead_id, key) in pending.iter().zip(&ids) {
            let lead = leads.get_mut(key).expect("every requested lead is loaded");
            let outcome = if lead.aggregate.org_id != Some(org) {
                refused(*lead_id, "lead_not_found")
            } else if filter_owner.is_some() && lead.aggregate.owner != filter_owner {
                // The filter chose it for its owner; someone moved it since.
                refused(*lead_id, "owner_changed")
            } else {
                let to = match &mut facts {
                    TargetFacts::User(owner, _) | TargetFacts::Queue(owner) => Ok(*owner),
                    TargetFacts::Pool(pool, facts) => {
                        pick(&mut batch, *pool, facts, id, lead, &meta)?
                    }
                };
                match to {
                    Err(code) => refused(*lead_id, code),
                    Ok(to) => {
                        let verdict = match &facts {
                            TargetFacts::User(_, verdict) => *verdict,
                            _ => Ok(()),
                        };
                        let offer = (notify, &workflow);
                        self.bulk_move(&mut batch, lead, id, to, verdict, offer, &meta)
                            .await?
                    }
                }
            };
            outcomes.push(outcome);
        }
        let record = BulkCommand::RecordOutcomes {
            outcomes,
            at: meta.at,
        };
        batch.decide(&mut op, record, &meta).await?;
        self.commit_batch(batch).await?;
        if let TargetFacts::Pool(_, facts) = facts {
            // The pool as this batch's picks left it is what is now stored.
            self.remember(facts.into_pools());
        }
        Ok(None)
    }

    /// Decide one lead's move into `batch` and say what happened to it.
    #[allow(clippy::too_many_arguments)]
    async fn bulk_move(
        &self,
        batch: &mut Batch,
        lead: &mut Loaded<Lead>,
        id: BulkOperationId,
        to: Owner,
        target: Result<(), NotAssignable>,
        (notify, workflow): (bool, &PartnerWorkflow),
        meta: &CommandMeta,
    ) -> Result<LeadOutcome, AppError> {
        let lead_id = lead.aggregate.id.expect("an existing lead");
        if lead.aggregate.bulk_operations.contains(&id) {
            return Ok(moved(lead_id, lead.aggregate.owner));
        }
        let (deadline, remind_at) = workflow.due_for(to, None, meta.at);
        let command = LeadCommand::ReassignLead {
            deadline,
            remind_at,
            to,
            target,
            notify,
            operation: Some(id),
            actor: meta.actor.clone(),
            at: meta.at,
        };
        match batch.decide(lead, command, meta).await {
            Ok(_) => Ok(moved(lead_id, Some(to))),
            Err(AppError::Refused {
                code: "already_owner",
                ..
            }) => Ok(LeadOutcome {
                lead_id,
                result: OutcomeKind::Skipped,
                to: None,
                code: Some("already_owner".into()),
            }),
            Err(AppError::Refused { code, .. }) => Ok(refused(lead_id, code)),
            Err(other) => Err(other),
        }
    }

    /// The target exists in `org`, with the facts a batch needs about it.
    async fn bulk_target(&self, org: OrgId, target: Target) -> Result<TargetFacts, AppError> {
        Ok(match target {
            Target::PartnerUser(user) => {
                let (_, verdict) = self.partner_user_assignability(org, user).await?;
                TargetFacts::User(Owner::PartnerUser(user), verdict)
            }
            Target::Queue(queue) => {
                self.load_in_org::<Queue>(org, queue).await?;
                TargetFacts::Queue(Owner::Queue(queue))
            }
            Target::Pool(pool) => {
                let facts = self.routing_facts(org, [target], [], Caps::Ignore).await?;
                if facts.known.pool(pool).is_none() {
                    return Err(missing(target));
                }
                TargetFacts::Pool(pool, Box::new(facts))
            }
        })
    }
}

/// The pool member a lead goes to: `Ok(owner)`, or `Err(reason)` when no member may take it.
/// A lead already owned by an assignable member stays with it (the pool is not advanced).
fn pick(
    batch: &mut Batch,
    pool_id: PoolId,
    facts: &mut RoutingFacts,
    id: BulkOperationId,
    lead: &Loaded<Lead>,
    meta: &CommandMeta,
) -> Result<Result<Owner, &'static str>, AppError> {
    let pool = facts
        .known
        .pool(pool_id)
        .expect("the target pool was gathered");
    let mut candidates = engine::candidates(pool, &facts.known, Caps::Ignore);
    engine::exclude(&lead.aggregate, &mut candidates);
    if let Some(owner) = lead.aggregate.owner {
        let member = match owner {
            Owner::PartnerUser(user) => Some(Member::PartnerUser(user)),
            Owner::Queue(queue) => Some(Member::Queue(queue)),
            Owner::InternalUser(_) => None,
        };
        if member.is_some_and(|m| leadroute_domain::routing::is_assignable(&candidates, m)) {
            return Ok(Ok(owner));
        }
    }
    let lead_id = lead.aggregate.id.expect("an existing lead");
    let trigger = Uuid::new_v5(&PICK_NAMESPACE, format!("{id}\u{1f}{lead_id}").as_bytes());
    let picked = match engine::pick_member(pool, lead_id, trigger, candidates, meta.at) {
        Ok(picked) => picked,
        Err((reason, _)) => return Ok(Err(reason.code())),
    };
    if let Some(command) = picked.command {
        facts.record_pick(batch, pool_id, command, meta)?;
    }
    Ok(Ok(match picked.member {
        Member::PartnerUser(user) => Owner::PartnerUser(user),
        Member::Queue(queue) => Owner::Queue(queue),
    }))
}

fn moved(lead_id: LeadId, to: Option<Owner>) -> LeadOutcome {
    LeadOutcome {
        lead_id,
        result: OutcomeKind::Moved,
        to,
        code: None,
    }
}

fn refused(lead_id: LeadId, code: &str) -> LeadOutcome {
    LeadOutcome {
        lead_id,
        result: OutcomeKind::Refused,
        to: None,
        code: Some(code.to_string()),
    }
}
