//! Tests of the routing engine: one rule per test, and the property that every source of
//! facts gives the same decision for the same facts: facts advanced in memory by each pick
//! (intake, dry run) and facts read again from the stored log before each lead (the router).

use super::*;
use crate::ids::{LeadId, OrgId, PoolId, QueueId};
use crate::pool::PoolEvent;
use crate::routing::rules::{Entry, RuleSetSpec};
use crate::routing::stored_decision;
use crate::test_support::{admin, t0};
use chrono::Duration;
use proptest::prelude::*;

const POOL: PoolId = PoolId(Uuid::from_u128(1));

fn user(n: u128) -> PartnerUserId {
    PartnerUserId(Uuid::from_u128(100 + n))
}

fn queue(n: u128) -> QueueId {
    QueueId(Uuid::from_u128(200 + n))
}

fn ready() -> Standing {
    Standing {
        active: true,
        signed_in_once: true,
        account_active: true,
        paused: false,
        paused_until: None,
    }
}

fn rules_to(target: Target, keep_owner: bool) -> ActiveRules {
    ActiveRules::compile(
        3,
        &RuleSetSpec {
            entries: vec![Entry {
                acceptance_deadline: None,
                fallback: None,
                criteria: vec![],
                target,
                keep_owner,
                notify: true,
            }],
            default_owner: None,
            watched_fields: Default::default(),
        },
    )
}

fn lead(owner: Option<Owner>) -> Lead {
    Lead {
        id: Some(LeadId(Uuid::from_u128(7))),
        owner,
        ..Lead::default()
    }
}

/// The events that create a pool with `members` (weight each) and `cap`.
fn pool_log(members: &[(Member, u32)], cap: Option<u32>) -> Vec<PoolEvent> {
    let mut log = vec![PoolEvent::PoolCreated {
        pool_id: POOL,
        org_id: OrgId(Uuid::from_u128(9)),
        name: "pool".into(),
        cap,
        actor: admin(),
        at: t0(),
    }];
    log.extend(
        members
            .iter()
            .map(|&(member, weight)| PoolEvent::PoolMemberAdded {
                member,
                weight,
                at_back: true,
                cap: None,
                actor: admin(),
                at: t0(),
            }),
    );
    log
}

fn replay(log: &[PoolEvent]) -> Pool {
    let mut pool = Pool::default();
    for event in log {
        pool.evolve(event);
    }
    pool
}

fn facts_with_pool(members: &[(Member, u32)], cap: Option<u32>) -> KnownFacts {
    let mut facts = KnownFacts::at(t0());
    facts.pools.insert(POOL, replay(&pool_log(members, cap)));
    for (member, _) in members {
        match member {
            Member::PartnerUser(u) => {
                facts.users.insert(*u, ready());
            }
            Member::Queue(q) => {
                facts.queues.insert(*q);
            }
        }
    }
    facts
}

fn resolve_now(rules: &ActiveRules, lead: &Lead, trigger: u128, facts: &KnownFacts) -> Resolution {
    resolve(
        rules,
        lead.id.unwrap(),
        lead,
        Uuid::from_u128(trigger),
        Trigger::Received,
        facts,
    )
    .expect("the target exists")
}

#[test]
fn a_queue_nobody_may_claim_from_is_not_routed_to_and_says_so() {
    let mut facts = KnownFacts::at(t0());
    facts.queues.insert(queue(1));
    facts.unclaimable.insert(queue(1));
    let r = resolve_now(
        &rules_to(Target::Queue(queue(1)), false),
        &lead(None),
        1,
        &facts,
    );
    assert_eq!(
        r.outcome,
        RouteOutcome::Leave(crate::routing::NotRouted::NoAssignableMember)
    );
    assert_eq!(r.decision.candidates[0].verdict, Verdict::NoClaimant);
    // In a pool, it is skipped for a member who may take the lead.
    let mut facts = facts_with_pool(
        &[
            (Member::Queue(queue(1)), 1),
            (Member::PartnerUser(user(2)), 1),
        ],
        None,
    );
    facts.unclaimable.insert(queue(1));
    let r = resolve_now(&rules_to(Target::Pool(POOL), false), &lead(None), 1, &facts);
    assert!(
        matches!(r.outcome, RouteOutcome::Assign { to: Owner::PartnerUser(u), .. } if u == user(2))
    );
}

#[test]
fn a_paused_direct_target_leaves_the_lead_with_its_verdict() {
    let mut facts = KnownFacts::at(t0());
    let paused = Standing {
        paused: true,
        paused_until: Some(t0() + Duration::hours(1)),
        ..ready()
    };
    facts.users.insert(user(1), paused);
    let rules = rules_to(Target::PartnerUser(user(1)), false);
    let r = resolve_now(&rules, &lead(None), 1, &facts);
    assert_eq!(
        r.outcome,
        RouteOutcome::Leave(NotRouted::NoAssignableMember)
    );
    assert_eq!(r.decision.candidates[0].verdict, Verdict::Paused);
    assert_eq!(r.decision.matched_entry, Some(0));
    // Once the pause has ended, the same user gets it.
    facts.now = t0() + Duration::hours(2);
    let r = resolve_now(&rules, &lead(None), 1, &facts);
    assert!(matches!(
        r.outcome,
        RouteOutcome::Assign { to: Owner::PartnerUser(u), notify: true, target: Ok(()) } if u == user(1)
    ));
}

#[test]
fn a_missing_queue_or_pool_is_reported_not_decided() {
    let facts = KnownFacts::at(t0());
    for target in [Target::Queue(queue(1)), Target::Pool(POOL)] {
        let rules = rules_to(target, false);
        let lead = lead(None);
        let missing = resolve(
            &rules,
            LeadId(Uuid::nil()),
            &lead,
            Uuid::nil(),
            Trigger::Rerun,
            &facts,
        );
        assert_eq!(missing, Err(target));
    }
}

#[test]
fn a_keep_owner_entry_keeps_an_assignable_owner_and_reroutes_another() {
    let mut facts = facts_with_pool(&[(Member::PartnerUser(user(1)), 1)], None);
    facts.users.insert(user(2), ready());
    let rules = rules_to(Target::Pool(POOL), true);
    let owned = lead(Some(Owner::PartnerUser(user(2))));
    let kept = resolve_now(&rules, &owned, 1, &facts);
    assert_eq!(kept.outcome, RouteOutcome::Keep);
    assert!(kept.pick.is_none());
    facts.users.insert(
        user(2),
        Standing {
            active: false,
            ..ready()
        },
    );
    let moved = resolve_now(&rules, &owned, 1, &facts);
    assert!(moved.decision.owner_not_assignable);
    assert_eq!(
        moved.decision.owner_verdict,
        Some(Verdict::Inactive),
        "the record says why the owner was not kept"
    );
    assert!(moved.pick.is_some());
}

#[test]
fn a_capped_pool_whose_members_are_full_leaves_the_lead_at_capacity() {
    let a = Member::PartnerUser(user(1));
    let b = Member::Queue(queue(1));
    let mut facts = facts_with_pool(&[(a, 1), (b, 1)], Some(2));
    facts.open.insert(a, 2);
    facts.open.insert(b, 5);
    let rules = rules_to(Target::Pool(POOL), false);
    let r = resolve_now(&rules, &lead(None), 1, &facts);
    assert_eq!(r.outcome, RouteOutcome::Leave(NotRouted::AllAtCapacity));
    assert!(r.pick.is_none());
    // A person's bulk move does not look at the cap.
    let pool = facts.pool(POOL).unwrap();
    let bulk = candidates(pool, &facts, Caps::Ignore);
    assert!(bulk.iter().all(|c| c.verdict == Verdict::Assignable));
}

#[test]
fn a_repeated_trigger_gets_its_earlier_member_and_moves_nothing() {
    let a = Member::PartnerUser(user(1));
    let b = Member::PartnerUser(user(2));
    let mut facts = facts_with_pool(&[(a, 1), (b, 1)], None);
    let rules = rules_to(Target::Pool(POOL), false);
    let first = resolve_now(&rules, &lead(None), 1, &facts);
    let (pool, command) = first.pick.clone().expect("a pick");
    facts.apply_pick(pool, command).unwrap();
    let again = resolve_now(&rules, &lead(None), 1, &facts);
    assert_eq!(again.outcome, first.outcome);
    assert!(again.pick.is_none());
    assert_eq!(again.decision.pool_before, None);
}

#[test]
fn a_rerun_that_lands_on_the_current_owner_keeps_it_and_moves_no_rotation() {
    // Pool [A, B, C]; three leads go to A, B, C; re-running the first lead picks A again:
    // the owner is kept and the next new lead still goes to A.
    let (a, b, c) = (user(1), user(2), user(3));
    let members: Vec<(Member, u32)> = [a, b, c]
        .iter()
        .map(|u| (Member::PartnerUser(*u), 1))
        .collect();
    let mut facts = facts_with_pool(&members, None);
    let rules = rules_to(Target::Pool(POOL), false);
    let mut owners = Vec::new();
    for n in 0..3 {
        let r = resolve_now(&rules, &lead(None), 10 + n, &facts);
        let (pool, command) = r.pick.expect("a pick");
        facts.apply_pick(pool, command).unwrap();
        owners.push(r.outcome);
    }
    let first_owner = Owner::PartnerUser(a);
    assert!(matches!(owners[0], RouteOutcome::Assign { to, .. } if to == first_owner));
    let rerun = resolve(
        &rules,
        LeadId(Uuid::from_u128(7)),
        &lead(Some(first_owner)),
        Uuid::from_u128(99),
        Trigger::Rerun,
        &facts,
    )
    .unwrap();
    assert_eq!(rerun.outcome, RouteOutcome::Keep);
    assert!(rerun.pick.is_none(), "no pick is recorded");
    assert_eq!(rerun.decision.pool_before, rerun.decision.pool_after);
    let next = resolve_now(&rules, &lead(None), 20, &facts);
    assert!(matches!(next.outcome, RouteOutcome::Assign { to, .. } if to == first_owner));
}

#[test]
fn a_member_s_own_cap_overrides_the_pool_s() {
    let a = Member::PartnerUser(user(1));
    let b = Member::PartnerUser(user(2));
    let mut facts = facts_with_pool(&[(a, 1), (b, 1)], Some(5));
    facts.open.insert(a, 1);
    facts.open.insert(b, 1);
    facts
        .pools
        .get_mut(&POOL)
        .unwrap()
        .rotation
        .change(a, 1, Some(1));
    let rules = rules_to(Target::Pool(POOL), false);
    let r = resolve_now(&rules, &lead(None), 1, &facts);
    assert_eq!(
        r.decision.candidates[0].verdict,
        Verdict::AtCapacity,
        "a's own cap is 1"
    );
    assert_eq!(
        r.decision.candidates[1].verdict,
        Verdict::Assignable,
        "b has the pool's 5"
    );
    assert!(
        matches!(r.outcome, RouteOutcome::Assign { to: Owner::PartnerUser(u), .. } if u == user(2))
    );
}

/// One member of a generated pool: a partner user or a queue, its weight, its standing
/// (users) or existence (queues), and the open leads it holds.
#[derive(Debug, Clone)]
struct GenMember {
    queue: bool,
    weight: u32,
    standing: Standing,
    exists: bool,
    open: u32,
}

fn gen_member() -> impl Strategy<Value = GenMember> {
    (
        any::<bool>(),
        1u32..=4,
        any::<[bool; 4]>(),
        prop::option::of(-2i64..=2),
        any::<bool>(),
        0u32..=3,
    )
        .prop_map(|(queue, weight, flags, until, exists, open)| GenMember {
            queue,
            weight,
            standing: Standing {
                active: flags[0] || flags[3],
                signed_in_once: flags[1] || flags[3],
                account_active: flags[2] || flags[3],
                paused: until.is_some() && !flags[3],
                paused_until: until.filter(|h| *h != 0).map(|h| t0() + Duration::hours(h)),
            },
            exists: exists || flags[3],
            open,
        })
}

/// A second source of facts: the pool read again from its stored log (through JSON, as
/// the event store gives it) and the open leads counted from the decisions so far, as the
/// router sees them before each lead.
struct FromLog {
    known: KnownFacts,
}

impl FromLog {
    fn read(base: &KnownFacts, log: &[String], assigned: &[Member]) -> FromLog {
        let events: Vec<PoolEvent> = log
            .iter()
            .map(|json| serde_json::from_str(json).expect("a stored pool event"))
            .collect();
        let pool = replay(&events);
        let mut known = KnownFacts {
            pools: HashMap::new(),
            ..base.clone()
        };
        if pool.cap.is_some() {
            for member in assigned {
                *known.open.entry(*member).or_default() += 1;
            }
        }
        known.pools.insert(POOL, pool);
        FromLog { known }
    }
}

impl Facts for FromLog {
    fn now(&self) -> DateTime<Utc> {
        self.known.now
    }
    fn user(&self, user: PartnerUserId) -> Option<Standing> {
        self.known.users.get(&user).copied()
    }
    fn queue_exists(&self, queue: QueueId) -> bool {
        self.known.queues.contains(&queue)
    }

    fn queue_claimable(&self, queue: QueueId) -> bool {
        self.known.queue_claimable(queue)
    }
    fn pool(&self, pool: PoolId) -> Option<&Pool> {
        self.known.pools.get(&pool)
    }
    fn open_leads(&self, member: Member) -> u32 {
        self.known.open.get(&member).copied().unwrap_or(0)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For random pools, verdicts and caps, a run of leads resolved against facts advanced
    /// in memory gives, lead by lead, the decision the same lead gets against facts read
    /// again from the stored log; every pick lands on an assignable member; a lead is left
    /// `all_at_capacity` exactly when nobody is assignable and someone is only full; and
    /// every decision survives its stored form.
    #[test]
    fn every_facts_source_gives_the_same_decision(
        members in prop::collection::vec(gen_member(), 1..6),
        cap in prop::option::of(1u32..=3),
        leads in 1usize..16,
    ) {
        let mut base = KnownFacts::at(t0());
        let mut slots = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let member = if m.queue {
                let q = queue(i as u128);
                if m.exists {
                    base.queues.insert(q);
                    // Someone may claim from it, or nobody may (drawn from the same bits).
                    if !m.standing.signed_in_once {
                        base.unclaimable.insert(q);
                    }
                }
                Member::Queue(q)
            } else {
                let u = user(i as u128);
                if m.exists {
                    base.users.insert(u, m.standing);
                }
                Member::PartnerUser(u)
            };
            if m.open > 0 {
                base.open.insert(member, m.open);
            }
            slots.push((member, m.weight));
        }
        let log_events = pool_log(&slots, cap);
        let mut log: Vec<String> = log_events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        let mut in_memory = base.clone();
        in_memory.pools.insert(POOL, replay(&log_events));
        let rules = rules_to(Target::Pool(POOL), false);
        let mut assigned = Vec::new();
        for n in 0..leads {
            let lead = Lead { id: Some(LeadId(Uuid::from_u128(1000 + n as u128))), ..Lead::default() };
            let trigger = Uuid::from_u128(5000 + n as u128);
            let from_log = FromLog::read(&base, &log, &assigned);
            let a = resolve(&rules, lead.id.unwrap(), &lead, trigger, Trigger::Received, &in_memory).unwrap();
            let b = resolve(&rules, lead.id.unwrap(), &lead, trigger, Trigger::Received, &from_log).unwrap();
            prop_assert_eq!(&a, &b);
            match &a.outcome {
                RouteOutcome::Assign { to, .. } => {
                    let member = match *to {
                        Owner::PartnerUser(u) => Member::PartnerUser(u),
                        Owner::Queue(q) => Member::Queue(q),
                        Owner::InternalUser(_) => unreachable!("pools hold no internal users"),
                    };
                    prop_assert!(crate::routing::is_assignable(&a.decision.candidates, member));
                    assigned.push(member);
                }
                RouteOutcome::Leave(reason) => {
                    prop_assert!(a.decision.candidates.iter().all(|c| c.verdict != Verdict::Assignable));
                    let full = a.decision.candidates.iter().any(|c| c.verdict == Verdict::AtCapacity);
                    prop_assert_eq!(*reason == NotRouted::AllAtCapacity, full);
                }
                RouteOutcome::Keep => prop_assert!(false, "no owner to keep"),
                RouteOutcome::Hold { .. } => prop_assert!(false, "no duplicates known"),
            }
            let stored = serde_json::to_value(StoredForm(&a.decision)).unwrap();
            let read: Decision = stored_decision::deserialize(stored).unwrap();
            prop_assert_eq!(&read, &a.decision);
            if let Some((pool, command)) = a.pick {
                let events = in_memory.apply_pick(pool, command).unwrap();
                log.extend(events.iter().map(|e| serde_json::to_string(e).unwrap()));
            }
        }
    }
}

/// A decision serialized in its stored form.
struct StoredForm<'a>(&'a Decision);

impl serde::Serialize for StoredForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        stored_decision::serialize(self.0, s)
    }
}

fn with_fallback(target: Target, fallback: Option<Target>) -> ActiveRules {
    ActiveRules::compile(
        3,
        &RuleSetSpec {
            entries: vec![Entry {
                acceptance_deadline: None,
                fallback,
                criteria: vec![],
                target,
                keep_owner: false,
                notify: true,
            }],
            default_owner: None,
            watched_fields: Default::default(),
        },
    )
}

#[test]
fn a_pool_never_offers_a_lead_again_to_a_member_who_declined_it_or_let_it_lapse() {
    let members = [
        (Member::PartnerUser(user(1)), 1),
        (Member::PartnerUser(user(2)), 1),
        (Member::PartnerUser(user(3)), 1),
    ];
    let facts = facts_with_pool(&members, None);
    let mut closed = lead(None);
    closed.declined.insert(user(1));
    closed.lapsed.insert(user(2));
    let rules = with_fallback(Target::Pool(POOL), None);
    let r = resolve_now(&rules, &closed, 1, &facts);
    // User 1 waited longest, yet the lead goes to the one member not closed to it.
    assert!(matches!(
        r.outcome,
        RouteOutcome::Assign { to: Owner::PartnerUser(u), .. } if u == user(3)
    ));
    let verdicts: Vec<Verdict> = r.decision.candidates.iter().map(|c| c.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::DeclinedBefore,
            Verdict::LapsedBefore,
            Verdict::Assignable
        ]
    );
    // The record keeps the verdicts as stored.
    let stored = stored_decision::serialize(&r.decision, serde_json::value::Serializer).unwrap();
    let back = stored_decision::deserialize(stored).unwrap();
    assert_eq!(back, r.decision);
    // Skipped members keep their place: the rotation after the pick still has user 1 first.
    let after = r.decision.pool_after.expect("a pick");
    assert_eq!(after[0].member, Member::PartnerUser(user(1)));
    // With user 3 closed too, nobody is left.
    closed.declined.insert(user(3));
    let r = resolve_now(&rules, &closed, 2, &facts);
    assert_eq!(
        r.outcome,
        RouteOutcome::Leave(crate::routing::NotRouted::OffereesExhausted)
    );
    assert!(r.pick.is_none());
    assert!(!crate::routing::NotRouted::OffereesExhausted.waits());
}

#[test]
fn when_nobody_is_left_the_entry_fallback_takes_the_lead() {
    let mut facts = KnownFacts::at(t0());
    facts.users.insert(user(1), ready());
    facts.queues.insert(queue(1));
    let mut closed = lead(None);
    closed.declined.insert(user(1));
    // A partner user target who declined: the fallback queue gets it.
    let rules = with_fallback(Target::PartnerUser(user(1)), Some(Target::Queue(queue(1))));
    let r = resolve_now(&rules, &closed, 1, &facts);
    assert_eq!(
        r.outcome,
        RouteOutcome::Assign {
            to: Owner::Queue(queue(1)),
            notify: true,
            target: Ok(())
        }
    );
    assert!(r.decision.fallback);
    assert_eq!(r.decision.candidates.len(), 2);
    assert_eq!(r.decision.candidates[0].verdict, Verdict::DeclinedBefore);
    // No fallback: left unrouted, and it does not wait.
    let r = resolve_now(
        &with_fallback(Target::PartnerUser(user(1)), None),
        &closed,
        2,
        &facts,
    );
    assert_eq!(
        r.outcome,
        RouteOutcome::Leave(crate::routing::NotRouted::OffereesExhausted)
    );
    // A fallback user who declined too is no way out.
    let rules = with_fallback(
        Target::PartnerUser(user(1)),
        Some(Target::PartnerUser(user(1))),
    );
    let r = resolve_now(&rules, &closed, 3, &facts);
    assert_eq!(
        r.outcome,
        RouteOutcome::Leave(crate::routing::NotRouted::OffereesExhausted)
    );
    // A member merely paused is not "nobody left": the fallback is not used.
    let mut facts = facts_with_pool(
        &[
            (Member::PartnerUser(user(1)), 1),
            (Member::PartnerUser(user(2)), 1),
        ],
        None,
    );
    facts.users.get_mut(&user(2)).unwrap().paused = true;
    facts.queues.insert(queue(1));
    let r = resolve_now(
        &with_fallback(Target::Pool(POOL), Some(Target::Queue(queue(1)))),
        &closed,
        4,
        &facts,
    );
    assert_eq!(
        r.outcome,
        RouteOutcome::Leave(crate::routing::NotRouted::NoAssignableMember)
    );
    assert!(!r.decision.fallback);
}

#[test]
fn a_new_lead_matching_an_open_lead_a_partner_owns_is_held_not_routed() {
    let mut facts = KnownFacts::at(t0());
    facts.users.insert(user(1), ready());
    let other = LeadId(Uuid::from_u128(99));
    let owner = Owner::PartnerUser(user(2));
    let new = lead(None);
    facts.duplicates.insert(new.id.unwrap(), (other, owner));
    let rules = rules_to(Target::PartnerUser(user(1)), false);
    let r = resolve_now(&rules, &new, 1, &facts);
    assert_eq!(r.outcome, RouteOutcome::Hold { of: other, owner });
    assert!(r.pick.is_none());
    // An update, a re-run, or a lead released to be routed anyway: routed as usual.
    let r = resolve(
        &rules,
        new.id.unwrap(),
        &new,
        Uuid::from_u128(2),
        Trigger::Rerun,
        &facts,
    );
    assert!(matches!(r.unwrap().outcome, RouteOutcome::Assign { .. }));
    let cleared = Lead {
        duplicate_cleared: true,
        ..new.clone()
    };
    let r = resolve_now(&rules, &cleared, 3, &facts);
    assert!(matches!(r.outcome, RouteOutcome::Assign { .. }));
}
