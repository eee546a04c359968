//! Given/when/then tests of the BulkOperation aggregate, one per rule.

use super::*;
use crate::ids::PartnerUserId;
use crate::test_support::{admin, t0};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type BulkTest = TestFramework<BulkOperation>;

fn lead(n: u128) -> LeadId {
    LeadId(Uuid::from_u128(100 + n))
}

fn target() -> Target {
    Target::PartnerUser(PartnerUserId(Uuid::from_u128(7)))
}

fn start(leads: Vec<LeadId>) -> BulkCommand {
    BulkCommand::Start(Box::new(StartBulk {
        operation_id: BulkOperationId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        selection: Selection::List,
        leads,
        target: target(),
        notify: true,
        reason: " territory change ".into(),
        actor: admin(),
        at: t0(),
    }))
}

fn started(total: usize) -> BulkEvent {
    BulkEvent::BulkOperationStarted {
        operation_id: BulkOperationId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        selection: Selection::List,
        target: target(),
        notify: true,
        reason: "territory change".into(),
        total,
        actor: admin(),
        at: t0(),
    }
}

fn frozen(range: std::ops::Range<u128>) -> BulkEvent {
    BulkEvent::BulkSelectionFrozen {
        leads: range.map(lead).collect(),
    }
}

fn moved(n: u128) -> LeadOutcome {
    LeadOutcome {
        lead_id: lead(n),
        result: OutcomeKind::Moved,
        to: Some(Owner::PartnerUser(PartnerUserId(Uuid::from_u128(7)))),
        code: None,
    }
}

fn refused(n: u128, code: &str) -> LeadOutcome {
    LeadOutcome {
        lead_id: lead(n),
        result: OutcomeKind::Refused,
        to: None,
        code: Some(code.into()),
    }
}

fn record(outcomes: Vec<LeadOutcome>) -> BulkCommand {
    BulkCommand::RecordOutcomes { outcomes, at: t0() }
}

#[test]
fn starting_freezes_the_selection_in_chunks_without_duplicates() {
    let mut leads: Vec<LeadId> = (0..FROZEN_CHUNK as u128 + 3).map(lead).collect();
    leads.push(lead(0));
    BulkTest::with(())
        .given_no_previous_events()
        .when(start(leads))
        .then_expect_events(vec![
            started(FROZEN_CHUNK + 3),
            frozen(0..FROZEN_CHUNK as u128),
            frozen(FROZEN_CHUNK as u128..FROZEN_CHUNK as u128 + 3),
        ]);
}

#[test]
fn an_empty_selection_completes_at_once() {
    BulkTest::with(())
        .given_no_previous_events()
        .when(start(vec![]))
        .then_expect_events(vec![
            started(0),
            BulkEvent::BulkOperationCompleted { at: t0() },
        ]);
}

#[test]
fn a_reason_is_required() {
    let BulkCommand::Start(mut blank) = start(vec![lead(1)]) else {
        unreachable!()
    };
    blank.reason = "  ".into();
    BulkTest::with(())
        .given_no_previous_events()
        .when(BulkCommand::Start(blank))
        .then_expect_error(BulkError::ReasonRequired);
}

#[test]
fn resubmitting_the_same_operation_changes_nothing_and_a_different_one_is_refused() {
    BulkTest::with(())
        .given(vec![started(2), frozen(0..2)])
        .when(start(vec![lead(0), lead(1)]))
        .then_expect_events(vec![]);
    BulkTest::with(())
        .given(vec![started(2), frozen(0..2)])
        .when(start(vec![lead(0), lead(5)]))
        .then_expect_error(BulkError::KeyReused);
}

#[test]
fn outcomes_follow_the_selection_and_the_last_ones_complete_it() {
    BulkTest::with(())
        .given(vec![started(3), frozen(0..3)])
        .when(record(vec![moved(1)]))
        .then_expect_error(BulkError::OutOfOrder);
    BulkTest::with(())
        .given(vec![
            started(3),
            frozen(0..3),
            BulkEvent::BulkLeadsProcessed {
                outcomes: vec![moved(0)],
                at: t0(),
            },
        ])
        .when(record(vec![moved(1), refused(2, "inactive")]))
        .then_expect_events(vec![
            BulkEvent::BulkLeadsProcessed {
                outcomes: vec![moved(1), refused(2, "inactive")],
                at: t0(),
            },
            BulkEvent::BulkOperationCompleted { at: t0() },
        ]);
}

#[test]
fn a_cancelled_operation_records_nothing_more() {
    let cancelled = BulkEvent::BulkOperationCancelled {
        actor: admin(),
        at: t0(),
    };
    BulkTest::with(())
        .given(vec![started(3), frozen(0..3)])
        .when(BulkCommand::Cancel {
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![cancelled.clone()]);
    BulkTest::with(())
        .given(vec![started(3), frozen(0..3), cancelled])
        .when(record(vec![moved(0)]))
        .then_expect_error(BulkError::Finished("cancelled"));
}

#[test]
fn state_counts_outcomes_and_knows_what_is_pending() {
    let mut op = BulkOperation::default();
    for event in [
        started(3),
        frozen(0..3),
        BulkEvent::BulkLeadsProcessed {
            outcomes: vec![moved(0), refused(1, "lead_not_found")],
            at: t0(),
        },
    ] {
        op.evolve(&event);
    }
    assert_eq!((op.moved, op.skipped, op.refused), (1, 0, 1));
    assert_eq!(op.pending(), &[lead(2)]);
    assert!(op.is_running());
}
