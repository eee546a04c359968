//! Given/when/then tests of the Pool aggregate, one per rule.

use super::*;
use crate::ids::PartnerUserId;
use crate::routing::Verdict;
use crate::test_support::{admin, t0};
use cqrs_es::test::TestFramework;

type PoolTest = TestFramework<Pool>;

fn created(cap: Option<u32>) -> PoolEvent {
    PoolEvent::PoolCreated {
        pool_id: PoolId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        name: "EMEA round-robin".into(),
        cap,
        actor: admin(),
        at: t0(),
    }
}

fn user(n: u128) -> Member {
    Member::PartnerUser(PartnerUserId(Uuid::from_u128(10 + n)))
}

fn added(n: u128, weight: u32) -> PoolEvent {
    PoolEvent::PoolMemberAdded {
        member: user(n),
        weight,
        at_back: true,
        cap: None,
        actor: admin(),
        at: t0(),
    }
}

fn pick(trigger: u128, verdicts: &[(u128, Verdict)]) -> PoolCommand {
    PoolCommand::PickMember {
        lead_id: LeadId(Uuid::from_u128(100 + trigger)),
        trigger: Uuid::from_u128(trigger),
        candidates: verdicts
            .iter()
            .map(|(n, verdict)| Candidate {
                member: user(*n),
                verdict: *verdict,
            })
            .collect(),
        at: t0(),
    }
}

fn picked(events: &[PoolEvent]) -> Member {
    match events {
        [PoolEvent::PoolMemberPicked { member, .. }] => *member,
        other => panic!("expected one pick, got {other:?}"),
    }
}

fn state(events: &[PoolEvent]) -> Pool {
    let mut pool = Pool::default();
    for event in events {
        pool.evolve(event);
    }
    pool
}

#[test]
fn a_weight_of_zero_is_refused_and_no_weight_means_one() {
    PoolTest::with(())
        .given(vec![created(None)])
        .when(PoolCommand::AddPoolMember {
            member: user(1),
            weight: Some(0),
            cap: None,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PoolError::InvalidWeight);
    PoolTest::with(())
        .given(vec![created(None)])
        .when(PoolCommand::AddPoolMember {
            member: user(1),
            weight: None,
            cap: None,
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![added(1, 1)]);
}

#[test]
fn a_member_may_join_with_its_own_cap_and_change_it_keeping_its_place() {
    PoolTest::with(())
        .given(vec![created(Some(5))])
        .when(PoolCommand::AddPoolMember {
            member: user(1),
            weight: None,
            cap: Some(0),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PoolError::InvalidCap);
    let joined = PoolEvent::PoolMemberAdded {
        member: user(1),
        weight: 1,
        at_back: true,
        cap: Some(2),
        actor: admin(),
        at: t0(),
    };
    let pool = state(&[created(Some(5)), joined, added(2, 1)]);
    assert_eq!(
        (pool.cap_of(user(1)), pool.cap_of(user(2))),
        (Some(2), Some(5))
    );
    PoolTest::with(())
        .given(vec![created(Some(5)), added(1, 1)])
        .when(PoolCommand::ChangePoolMember {
            member: user(2),
            weight: Some(2),
            cap: None,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PoolError::NotAMember);
}

#[test]
fn a_pick_skips_members_that_may_not_take_the_lead() {
    let pool = state(&[created(None), added(1, 1), added(2, 1)]);
    let events = pool
        .decide(pick(1, &[(1, Verdict::Paused), (2, Verdict::Assignable)]))
        .unwrap();
    assert_eq!(picked(&events), user(2));
}

#[test]
fn a_repeated_trigger_moves_nothing_and_keeps_its_first_answer() {
    let mut pool = state(&[created(None), added(1, 1), added(2, 1)]);
    let all = [(1, Verdict::Assignable), (2, Verdict::Assignable)];
    let events = pool.decide(pick(7, &all)).unwrap();
    pool.evolve(&events[0]);
    assert_eq!(pool.decide(pick(7, &all)).unwrap(), vec![]);
    assert_eq!(pool.picked_for(Uuid::from_u128(7)), Some(user(1)));
}

#[test]
fn nobody_assignable_is_refused_with_the_reason() {
    let pool = state(&[created(Some(3)), added(1, 1), added(2, 1)]);
    let capped = pool.decide(pick(1, &[(1, Verdict::AtCapacity), (2, Verdict::Inactive)]));
    assert_eq!(capped.unwrap_err().code(), "all_at_capacity");
    let nobody = pool.decide(pick(
        1,
        &[(1, Verdict::NeverSignedIn), (2, Verdict::Paused)],
    ));
    assert_eq!(nobody.unwrap_err().code(), "no_assignable_member");
}

#[test]
fn a_cap_of_zero_is_refused() {
    PoolTest::with(())
        .given_no_previous_events()
        .when(PoolCommand::CreatePool {
            pool_id: PoolId(Uuid::from_u128(1)),
            org_id: OrgId(Uuid::from_u128(2)),
            name: "p".into(),
            cap: Some(0),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PoolError::InvalidCap);
}

#[test]
fn a_pick_event_replays_to_the_rotation_the_pick_computed() {
    let mut pool = state(&[created(None), added(1, 3), added(2, 1), added(3, 2)]);
    for trigger in 1..40u128 {
        // Member 2 is paused on every third lead, member 3 at its cap on every fifth.
        let verdicts = [
            (1, Verdict::Assignable),
            (
                2,
                if trigger % 3 == 0 {
                    Verdict::Paused
                } else {
                    Verdict::Assignable
                },
            ),
            (
                3,
                if trigger % 5 == 0 {
                    Verdict::AtCapacity
                } else {
                    Verdict::Assignable
                },
            ),
        ];
        let command = pick(trigger, &verdicts);
        let PoolCommand::PickMember { candidates, .. } = &command else {
            unreachable!()
        };
        let (member, expected) = pool
            .rotation
            .pick(|m| crate::routing::is_assignable(candidates, m))
            .unwrap();
        let events = pool.decide(command.clone()).unwrap();
        let PoolEvent::PoolMemberPicked {
            skipped, rotation, ..
        } = &events[0]
        else {
            panic!("expected a pick, got {events:?}");
        };
        assert_eq!(rotation, &None, "the rotation is not stored again");
        let expected_skipped: Vec<Member> = verdicts
            .iter()
            .filter(|(_, v)| *v != Verdict::Assignable)
            .map(|(n, _)| user(*n))
            .collect();
        assert_eq!(skipped, &expected_skipped);
        // Through JSON, as stored.
        let stored: PoolEvent =
            serde_json::from_str(&serde_json::to_string(&events[0]).unwrap()).unwrap();
        pool.evolve(&stored);
        assert_eq!(pool.rotation, expected);
        assert_eq!(pool.picked_for(Uuid::from_u128(trigger)), Some(member));
    }
}

#[test]
fn a_version_1_0_pick_with_its_whole_rotation_still_applies() {
    let mut pool = state(&[created(None), added(1, 1), added(2, 1)]);
    let mut rotation = pool.rotation.clone();
    rotation.slots[0].pass = 12345;
    rotation.now = 678;
    let stored = serde_json::json!({"PoolMemberPicked": {
        "lead_id": Uuid::from_u128(100), "trigger": Uuid::from_u128(1),
        "member": user(1), "rotation": rotation, "at": t0(),
    }});
    pool.evolve(&serde_json::from_value(stored).unwrap());
    assert_eq!(pool.rotation, rotation);
    assert_eq!(pool.picked_for(Uuid::from_u128(1)), Some(user(1)));
}

#[test]
fn a_pool_s_acceptance_deadline_is_set_checked_and_a_repeat_is_a_no_op() {
    use crate::deadline::Deadline;
    let mut pool = state(&[created(None)]);
    let set = |deadline| PoolCommand::SetAcceptanceDeadline {
        deadline,
        actor: admin(),
        at: t0(),
    };
    let events = pool.decide(set(Some(Deadline::BusinessHours(4)))).unwrap();
    assert_eq!(events.len(), 1);
    pool.evolve(&events[0]);
    assert_eq!(pool.acceptance_deadline, Some(Deadline::BusinessHours(4)));
    assert!(pool
        .decide(set(Some(Deadline::BusinessHours(4))))
        .unwrap()
        .is_empty());
    assert_eq!(
        pool.decide(set(Some(Deadline::Seconds(0))))
            .unwrap_err()
            .code(),
        "invalid_deadline"
    );
    let cleared = pool.decide(set(None)).unwrap();
    pool.evolve(&cleared[0]);
    assert_eq!(pool.acceptance_deadline, None);
}
