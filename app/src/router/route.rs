//! The router itself: the compiled rule sets it caches and routing one lead (`route`).

use crate::commands::{Batch, CommandMeta, Commands, Committed, Loaded};
use crate::error::AppError;
use crate::facts::missing;
use crate::facts::RoutingFacts;
use leadroute_domain::engine::{resolve, Caps};
use leadroute_domain::ids::{Actor, LeadId, OrgId, Owner, PartnerUserId};
use leadroute_domain::lead::Lead;
use leadroute_domain::routing::rules::ActiveRules;
use leadroute_domain::routing::rules::Target;
use leadroute_domain::routing::{plan, Plan, Trigger};
use leadroute_domain::rule_set::RuleSet;
use leadroute_store::named;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Code of the refusal to route in an org without a published rule set (the router then
/// leaves leads alone and writes nothing).
pub const NO_RULE_SET: &str = "no_rule_set";

/// The actor recorded on routing decisions.
pub const ROUTER: &str = "router";

/// Evaluates rules and applies decisions.
#[derive(Clone)]
pub struct Router {
    /// Executes commands and loads aggregates.
    pub(super) commands: Commands,
    /// Event store and read models.
    pool: PgPool,
    /// Compiled rule sets by org, replaced when a newer version is published.
    rules: Arc<Mutex<HashMap<OrgId, Arc<ActiveRules>>>>,
    /// Held while a batch is received and routed inline: batches of one process would
    /// otherwise race for the same pools.
    pub(super) inline: Arc<tokio::sync::Mutex<()>>,
}

impl Router {
    /// A router over `pool` (migrated), with its own event store.
    pub fn new(pool: PgPool) -> Router {
        Router::with_commands(Commands::new(pool))
    }

    /// A router that executes through `commands` (sharing its event store and cache).
    pub fn with_commands(commands: Commands) -> Router {
        Router {
            pool: commands.store().pool().clone(),
            commands,
            rules: Arc::default(),
            inline: Arc::default(),
        }
    }

    /// What it executes through.
    pub fn commands(&self) -> &Commands {
        &self.commands
    }

    /// The org's active rule set, compiled (from the cache while no newer version exists).
    pub async fn rules(&self, org: OrgId) -> Result<Option<Arc<ActiveRules>>, AppError> {
        let version = named::last_sequence(
            &self.pool,
            <RuleSet as cqrs_es::Aggregate>::TYPE,
            &org.to_string(),
        )
        .await
        .map_err(AppError::from)?;
        let Some(version) = version else {
            return Ok(None);
        };
        if let Some(cached) = self.cached(org).filter(|c| i64::from(c.version) == version) {
            return Ok(Some(cached));
        }
        let rule_set = self.commands.state::<RuleSet>(org, org).await?;
        let compiled = Arc::new(ActiveRules::compile(rule_set.version, &rule_set.spec));
        self.rules
            .lock()
            .expect("rules cache lock")
            .insert(org, compiled.clone());
        Ok(Some(compiled))
    }

    fn cached(&self, org: OrgId) -> Option<Arc<ActiveRules>> {
        self.rules
            .lock()
            .expect("rules cache lock")
            .get(&org)
            .cloned()
    }

    /// The org's active rule set; refused with [`NO_RULE_SET`] when it has none.
    pub(super) async fn active_rules(&self, org: OrgId) -> Result<Arc<ActiveRules>, AppError> {
        self.rules(org).await?.ok_or_else(|| {
            AppError::refusal(
                NO_RULE_SET,
                leadroute_domain::RefusalKind::Conflict,
                "the org has no published rule set",
            )
        })
    }

    /// Evaluate the org's rules for `lead` and apply the decision, with its pool pick, in
    /// one transaction; a trigger already decided is a no-op. If the lead or the pool
    /// changed meanwhile (another router, a manual change), it is decided again from the
    /// new state.
    pub async fn route(
        &self,
        org: OrgId,
        lead_id: LeadId,
        trigger: Uuid,
        kind: Trigger,
    ) -> Result<Committed, AppError> {
        let meta = CommandMeta::now(Actor::System(ROUTER.into())).caused_by(trigger);
        self.commands
            .retry(|| self.route_once(org, lead_id, trigger, kind, &meta))
            .await
    }

    async fn route_once(
        &self,
        org: OrgId,
        lead_id: LeadId,
        trigger: Uuid,
        kind: Trigger,
        meta: &CommandMeta,
    ) -> Result<Committed, AppError> {
        let mut lead = self.commands.load_in_org::<Lead>(org, lead_id).await?;
        if lead.aggregate.routed_triggers.contains(&trigger) {
            // Redelivered, or routed by the intake as it received the lead: done.
            return Ok(Committed::none(&lead));
        }
        let mut batch = Batch::default();
        let rules = self.active_rules(org).await?;
        let decided = self
            .decide(&mut batch, &mut lead, &rules, trigger, kind, meta)
            .await?;
        self.commit(batch, &lead, decided).await
    }

    /// Decide where `lead` goes under `rules` for `trigger` of `kind`, adding the decision
    /// (`RouteLead`, with its pool pick and cap guards) to `batch`; `lead` advances by it.
    /// Answers the events added to the lead and the facts to remember once committed.
    pub(super) async fn decide(
        &self,
        batch: &mut Batch,
        lead: &mut Loaded<Lead>,
        rules: &ActiveRules,
        trigger: Uuid,
        kind: Trigger,
        meta: &CommandMeta,
    ) -> Result<(usize, RoutingFacts), AppError> {
        let org = lead.aggregate.org_id.expect("a lead loaded in its org");
        let lead_id = lead.aggregate.id.expect("an existing lead");
        let (targets, users) = targets(rules, [&lead.aggregate]);
        let mut facts = self
            .commands
            .routing_facts(org, targets, users, Caps::Apply)
            .await?;
        if kind == Trigger::Received {
            let fresh = [(lead_id, &lead.aggregate.fields)];
            self.commands.find_duplicates(&mut facts, fresh).await?;
        }
        let resolution = resolve(rules, lead_id, &lead.aggregate, trigger, kind, &facts.known)
            .map_err(missing)?;
        let route = facts.settle(batch, rules, trigger, resolution, meta)?;
        let events = batch.decide(lead, route, meta).await?.len();
        Ok((events, facts))
    }

    /// Commit `batch`, which holds `events` new events of `lead` (already advanced), and
    /// remember the pools its facts advanced.
    pub(super) async fn commit(
        &self,
        batch: Batch,
        lead: &Loaded<Lead>,
        (events, facts): (usize, RoutingFacts),
    ) -> Result<Committed, AppError> {
        let mut committed = Committed::none(lead);
        committed.events = events;
        committed.position = self.commands.commit_batch(batch).await?.1;
        self.commands.remember(facts.into_pools());
        Ok(committed)
    }
}

/// The targets the rules may send `leads` to (with the entries' fallbacks), and the partner
/// users who own them (a keep-owner entry judges the owner): what routing them needs facts
/// about.
pub(super) fn targets<'a>(
    rules: &ActiveRules,
    leads: impl IntoIterator<Item = &'a Lead>,
) -> (Vec<Target>, Vec<PartnerUserId>) {
    let mut targets = Vec::new();
    let mut owners = Vec::new();
    for lead in leads {
        if let Plan::Route {
            target, fallback, ..
        } = plan(&rules.compiled, rules.default_owner, &lead.fields, None)
        {
            targets.push(target);
            targets.extend(fallback);
        }
        if let Some(Owner::PartnerUser(user)) = lead.owner {
            owners.push(user);
        }
    }
    (targets, owners)
}
