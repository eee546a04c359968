//! The scheduler (`leadroute scheduler`, and part of `up`): fires the timers of pending
//! offers. Every tick it reads the due timers from the workflow projection (`rm_offer_timers`) and, for
//! each, sends the lead a command: `RemindOffer` when the reminder time came (the mailer
//! then emails the offeree), `LapseOffer` when the deadline passed (the router's
//! `lapse_offer`, which recalls the lead and routes it again in one transaction).
//!
//! Each timer fires at most once in effect: the lead refuses a reminder or a recall that
//! does not match its pending offer (already reminded, accepted, declined, recalled,
//! offered again since), so a timer fired twice, by two schedulers, after a crash or from
//! a rebuilt projection writes nothing the second time. One process fires at a time (it
//! holds the advisory lock `leadroute.scheduler` for the tick); the others skip the tick.
//! Timers live in PostgreSQL, so a scheduler killed at any moment loses none: the next one
//! fires what is due.

use leadroute_app::router::Router;
use leadroute_app::CommandMeta;
use leadroute_domain::ids::{Actor, LeadId, OrgId};
use leadroute_projections::queries::{self, DueTimer};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// The actor recorded on the scheduler's commands.
pub const SCHEDULER: &str = "scheduler";

/// How often due timers are looked for, unless configured.
pub const TICK: Duration = Duration::from_secs(1);

/// The advisory lock (by name) the firing process holds during its tick.
const LOCK: &str = "leadroute.scheduler";

/// Timers read per query.
const PAGE: i64 = 500;

/// How long a fired timer is not fired again while its row is still there (the projection
/// removes it within its lag).
const FIRED_FOR: Duration = Duration::from_secs(60);

/// Fires offer timers.
#[derive(Clone)]
pub struct Scheduler {
    router: Router,
}

impl Scheduler {
    /// A scheduler that fires through `router` (its commands and event store).
    pub fn new(router: Router) -> Scheduler {
        Scheduler { router }
    }

    /// Fire due timers every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut fired: HashMap<(LeadId, bool, chrono::DateTime<chrono::Utc>), Instant> =
            HashMap::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
            fired.retain(|_, at| at.elapsed() < FIRED_FOR);
            let pool = self.router.commands().store().pool().clone();
            crate::round_lock::run_alone(&pool, LOCK, || self.fire_due(&mut fired)).await;
        }
    }

    /// Fire every timer due now, page by page, each at most once per tick (one that fails
    /// is fired again next tick), skipping those fired within [`FIRED_FOR`] (still listed
    /// until the projection catches up).
    async fn fire_due(
        &self,
        fired: &mut HashMap<(LeadId, bool, chrono::DateTime<chrono::Utc>), Instant>,
    ) {
        let pool = self.router.commands().store().pool().clone();
        let now = chrono::Utc::now();
        let mut after = None;
        loop {
            let due = match queries::due_timers(&pool, now, after, PAGE).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read due offer timers");
                    return;
                }
            };
            after = due.last().map(|t| (t.due, t.lead_id, t.remind));
            for timer in &due {
                let key = (LeadId(timer.lead_id), timer.remind, timer.deadline);
                if !fired.contains_key(&key) && self.fire(timer).await {
                    fired.insert(key, Instant::now());
                }
            }
            if (due.len() as i64) < PAGE {
                return;
            }
        }
    }

    /// Fire one timer; false when it failed (it is fired again next tick).
    async fn fire(&self, timer: &DueTimer) -> bool {
        let meta = CommandMeta::now(Actor::System(SCHEDULER.into()));
        let (org, lead) = (OrgId(timer.org_id), LeadId(timer.lead_id));
        let fired = if timer.remind {
            self.router
                .commands()
                .remind_offer(&meta, org, lead, timer.deadline)
                .await
        } else {
            self.router
                .lapse_offer(&meta, org, lead, timer.deadline)
                .await
        };
        match fired {
            Ok(_) => true,
            Err(e) if e.code() == "lead_not_found" => true,
            Err(e) => {
                tracing::warn!(error = %e, lead = %lead.0, "cannot fire an offer timer; the next tick will");
                false
            }
        }
    }
}
