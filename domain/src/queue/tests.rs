//! Given/when/then tests of the Queue aggregate, one per rule.

use super::*;
use crate::test_support::{admin, t0};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type QueueTest = TestFramework<Queue>;

fn created() -> QueueEvent {
    QueueEvent::QueueCreated {
        queue_id: QueueId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        name: "EMEA inbound".into(),
        actor: admin(),
        at: t0(),
    }
}

fn user(n: u128) -> PartnerUserId {
    PartnerUserId(Uuid::from_u128(10 + n))
}

fn account(n: u128) -> PartnerAccountId {
    PartnerAccountId(Uuid::from_u128(20 + n))
}

fn added(member: QueueMember) -> QueueEvent {
    QueueEvent::QueueMemberAdded {
        member,
        actor: admin(),
        at: t0(),
    }
}

#[test]
fn creates_a_queue() {
    QueueTest::with(())
        .given_no_previous_events()
        .when(QueueCommand::CreateQueue {
            queue_id: QueueId(Uuid::from_u128(1)),
            org_id: OrgId(Uuid::from_u128(2)),
            name: "EMEA inbound".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn refuses_to_create_a_queue_twice() {
    QueueTest::with(())
        .given(vec![created()])
        .when(QueueCommand::CreateQueue {
            queue_id: QueueId(Uuid::from_u128(1)),
            org_id: OrgId(Uuid::from_u128(2)),
            name: "again".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(QueueError::QueueAlreadyExists);
}

#[test]
fn refuses_members_for_a_missing_queue() {
    QueueTest::with(())
        .given_no_previous_events()
        .when(QueueCommand::AddQueueMember {
            member: QueueMember::PartnerUser(user(1)),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(QueueError::QueueNotFound);
}

#[test]
fn adds_a_user_or_a_whole_account_as_member() {
    for member in [
        QueueMember::PartnerUser(user(1)),
        QueueMember::PartnerAccount(account(1)),
    ] {
        QueueTest::with(())
            .given(vec![created()])
            .when(QueueCommand::AddQueueMember {
                member,
                actor: admin(),
                at: t0(),
            })
            .then_expect_events(vec![added(member)]);
    }
}

#[test]
fn refuses_to_add_a_member_twice() {
    let member = QueueMember::PartnerUser(user(1));
    QueueTest::with(())
        .given(vec![created(), added(member)])
        .when(QueueCommand::AddQueueMember {
            member,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(QueueError::AlreadyMember);
}

#[test]
fn removes_a_member() {
    let member = QueueMember::PartnerAccount(account(1));
    QueueTest::with(())
        .given(vec![created(), added(member)])
        .when(QueueCommand::RemoveQueueMember {
            member,
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![QueueEvent::QueueMemberRemoved {
            member,
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn refuses_to_remove_a_non_member() {
    QueueTest::with(())
        .given(vec![created()])
        .when(QueueCommand::RemoveQueueMember {
            member: QueueMember::PartnerUser(user(1)),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(QueueError::NotAMember);
}

#[test]
fn membership_counts_direct_users_and_whole_accounts() {
    let mut queue = Queue::default();
    queue.evolve(&created());
    queue.evolve(&added(QueueMember::PartnerUser(user(1))));
    queue.evolve(&added(QueueMember::PartnerAccount(account(2))));
    assert!(queue.has_member(user(1), account(9)));
    assert!(queue.has_member(user(5), account(2)));
    assert!(!queue.has_member(user(5), account(9)));
}

#[test]
fn refuses_a_queue_without_a_name() {
    QueueTest::with(())
        .given_no_previous_events()
        .when(QueueCommand::CreateQueue {
            queue_id: QueueId(Uuid::from_u128(1)),
            org_id: OrgId(Uuid::from_u128(2)),
            name: " ".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(QueueError::NameRequired);
}
