//! Given/when/then tests of the Lead aggregate, one per rule.

use super::*;
use crate::ids::{InternalUserId, QueueId};
use crate::test_support::{admin, t0};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

type LeadTest = TestFramework<Lead>;

fn org() -> OrgId {
    OrgId(Uuid::from_u128(1))
}

fn upstream() -> UpstreamRef {
    UpstreamRef {
        system: "salesforce".into(),
        lead_id: "00Q42".into(),
    }
}

fn user(n: u128) -> PartnerUserId {
    PartnerUserId(Uuid::from_u128(100 + n))
}

fn queue() -> QueueId {
    QueueId(Uuid::from_u128(200))
}

fn crm() -> Actor {
    Actor::System("intake".into())
}

fn fields(pairs: &[(&str, serde_json::Value)]) -> LeadFields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn receive(event_id: &str, f: LeadFields) -> LeadCommand {
    LeadCommand::ReceiveLead(ReceiveLead {
        lead_id: LeadId::for_upstream(org(), &upstream()),
        org_id: org(),
        upstream: upstream(),
        upstream_event_id: event_id.into(),
        fields: f,
        route: true,
        occurred_at: None,
        owner: None,
        owner_known: false,
        actor: crm(),
        at: t0(),
    })
}

fn received() -> LeadEvent {
    LeadEvent::LeadReceived {
        lead_id: LeadId::for_upstream(org(), &upstream()),
        org_id: org(),
        upstream: upstream(),
        upstream_event_id: "evt-1".into(),
        fields: fields(&[("company", json!("Globex")), ("country", json!("DE"))]),
        route: true,
        occurred_at: None,
        actor: crm(),
        at: t0(),
    }
}

fn change(from: Option<Owner>, to: Owner, actor: Actor, cause: OwnerChangeCause) -> OwnerChange {
    OwnerChange {
        from,
        to,
        actor,
        cause,
        at: t0(),
    }
}

fn enqueued() -> LeadEvent {
    LeadEvent::LeadEnqueued {
        change: change(
            None,
            Owner::Queue(queue()),
            admin(),
            OwnerChangeCause::Enqueue,
        ),
    }
}

fn reassign(to: Owner, target: Result<(), NotAssignable>, notify: bool) -> LeadCommand {
    LeadCommand::ReassignLead {
        remind_at: None,
        deadline: None,
        to,
        target,
        notify,
        operation: None,
        actor: admin(),
        at: t0(),
    }
}

fn claim(
    claimant: PartnerUserId,
    member: bool,
    assignable: Result<(), NotAssignable>,
) -> LeadCommand {
    LeadCommand::ClaimLead(ClaimLead {
        queue_id: queue(),
        claimant,
        claimant_is_member: member,
        claimant_assignable: assignable,
        at: t0(),
    })
}

fn claimed_by(claimant: PartnerUserId) -> LeadEvent {
    LeadEvent::LeadClaimed {
        change: change(
            Some(Owner::Queue(queue())),
            Owner::PartnerUser(claimant),
            Actor::PartnerUser(claimant),
            OwnerChangeCause::Claim,
        ),
    }
}

#[test]
fn a_lead_that_arrives_owned_gets_its_owner_by_import_and_is_not_routed() {
    let owner = Owner::PartnerUser(user(1));
    let owned = |known: bool| {
        let LeadCommand::ReceiveLead(mut command) = receive(
            "evt-1",
            fields(&[("company", json!("Globex")), ("country", json!("DE"))]),
        ) else {
            unreachable!()
        };
        command.owner = Some(owner);
        command.owner_known = known;
        LeadCommand::ReceiveLead(command)
    };
    let mut not_routed = received();
    if let LeadEvent::LeadReceived { route, .. } = &mut not_routed {
        *route = false;
    }
    LeadTest::with(())
        .given_no_previous_events()
        .when(owned(true))
        .then_expect_events(vec![
            not_routed,
            LeadEvent::LeadReassigned {
                remind_at: None,
                deadline: None,
                change: change(None, owner, crm(), OwnerChangeCause::Import),
                notify: false,
                operation: None,
            },
        ]);
    LeadTest::with(())
        .given_no_previous_events()
        .when(owned(false))
        .then_expect_error(LeadError::UnknownOwner);
}

#[test]
fn receives_a_new_lead() {
    LeadTest::with(())
        .given_no_previous_events()
        .when(receive(
            "evt-1",
            fields(&[("company", json!("Globex")), ("country", json!("DE"))]),
        ))
        .then_expect_events(vec![received()]);
}

#[test]
fn a_repeated_upstream_event_id_is_a_no_op() {
    LeadTest::with(())
        .given(vec![received()])
        .when(receive("evt-1", fields(&[("company", json!("Other"))])))
        .then_expect_events(vec![]);
}

#[test]
fn refuses_an_upstream_event_without_an_id() {
    LeadTest::with(())
        .given_no_previous_events()
        .when(receive(" ", LeadFields::new()))
        .then_expect_error(LeadError::UpstreamEventIdRequired);
}

#[test]
fn an_update_records_only_the_changed_fields() {
    LeadTest::with(())
        .given(vec![received()])
        .when(receive(
            "evt-2",
            fields(&[("company", json!("Globex")), ("country", json!("FR"))]),
        ))
        .then_expect_events(vec![LeadEvent::LeadUpdated {
            upstream_event_id: "evt-2".into(),
            changed: fields(&[("country", json!("FR"))]),
            route: true,
            occurred_at: None,
            actor: crm(),
            at: t0(),
        }]);
}

#[test]
fn refuses_commands_on_a_missing_lead() {
    LeadTest::with(())
        .given_no_previous_events()
        .when(reassign(Owner::PartnerUser(user(1)), Ok(()), false))
        .then_expect_error(LeadError::LeadNotFound);
}

#[test]
fn reassigns_to_an_assignable_partner_user_recording_previous_owner_actor_cause_and_notify() {
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(reassign(Owner::PartnerUser(user(1)), Ok(()), true))
        .then_expect_events(vec![LeadEvent::LeadReassigned {
            remind_at: None,
            deadline: None,
            change: change(
                Some(Owner::Queue(queue())),
                Owner::PartnerUser(user(1)),
                admin(),
                OwnerChangeCause::Manual,
            ),
            notify: true,
            operation: None,
        }]);
}

#[test]
fn reassigns_to_an_internal_user() {
    let owner = Owner::InternalUser(InternalUserId(Uuid::from_u128(5)));
    LeadTest::with(())
        .given(vec![received()])
        .when(reassign(owner, Ok(()), false))
        .then_expect_events(vec![LeadEvent::LeadReassigned {
            remind_at: None,
            deadline: None,
            change: change(None, owner, admin(), OwnerChangeCause::Manual),
            notify: false,
            operation: None,
        }]);
}

#[test]
fn refuses_assignment_to_user_who_never_signed_in() {
    LeadTest::with(())
        .given(vec![received()])
        .when(reassign(
            Owner::PartnerUser(user(1)),
            Err(NotAssignable::NeverSignedIn),
            false,
        ))
        .then_expect_error(LeadError::NotAssignable(NotAssignable::NeverSignedIn));
}

#[test]
fn refuses_assignment_to_an_inactive_user() {
    LeadTest::with(())
        .given(vec![received()])
        .when(reassign(
            Owner::PartnerUser(user(1)),
            Err(NotAssignable::Inactive),
            false,
        ))
        .then_expect_error(LeadError::NotAssignable(NotAssignable::Inactive));
}

#[test]
fn refuses_assignment_to_a_user_of_an_inactive_partner_account() {
    LeadTest::with(())
        .given(vec![received()])
        .when(reassign(
            Owner::PartnerUser(user(1)),
            Err(NotAssignable::PartnerAccountNotActive),
            false,
        ))
        .then_expect_error(LeadError::NotAssignable(
            NotAssignable::PartnerAccountNotActive,
        ));
}

#[test]
fn refuses_reassignment_to_the_current_owner() {
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(reassign(Owner::Queue(queue()), Ok(()), false))
        .then_expect_error(LeadError::AlreadyOwner);
}

#[test]
fn enqueues_a_lead() {
    LeadTest::with(())
        .given(vec![received()])
        .when(LeadCommand::EnqueueLead {
            queue_id: queue(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![enqueued()]);
}

#[test]
fn refuses_to_enqueue_into_the_queue_that_already_owns_the_lead() {
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(LeadCommand::EnqueueLead {
            queue_id: queue(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(LeadError::AlreadyOwner);
}

#[test]
fn an_assignable_member_claims_a_queued_lead() {
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(claim(user(1), true, Ok(())))
        .then_expect_events(vec![claimed_by(user(1))]);
}

#[test]
fn a_second_claim_is_refused_as_already_claimed() {
    LeadTest::with(())
        .given(vec![received(), enqueued(), claimed_by(user(1))])
        .when(claim(user(2), true, Ok(())))
        .then_expect_error(LeadError::AlreadyClaimed);
}

#[test]
fn refuses_a_claim_of_a_lead_not_in_the_queue() {
    LeadTest::with(())
        .given(vec![received()])
        .when(claim(user(1), true, Ok(())))
        .then_expect_error(LeadError::NotInQueue);
}

#[test]
fn refuses_a_claim_by_a_non_member() {
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(claim(user(1), false, Ok(())))
        .then_expect_error(LeadError::NotAQueueMember);
}

#[test]
fn refuses_a_claim_by_a_member_who_is_not_assignable() {
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(claim(user(1), true, Err(NotAssignable::NeverSignedIn)))
        .then_expect_error(LeadError::NotAssignable(NotAssignable::NeverSignedIn));
}

#[test]
fn refusal_codes_are_the_stable_reason_codes() {
    assert_eq!(
        LeadError::NotAssignable(NotAssignable::NeverSignedIn).code(),
        "never_signed_in"
    );
    assert_eq!(
        LeadError::NotAssignable(NotAssignable::Inactive).code(),
        "inactive"
    );
    assert_eq!(LeadError::AlreadyClaimed.code(), "already_claimed");
}

#[test]
fn reassigns_to_a_queue() {
    LeadTest::with(())
        .given(vec![received()])
        .when(reassign(Owner::Queue(queue()), Ok(()), false))
        .then_expect_events(vec![LeadEvent::LeadReassigned {
            remind_at: None,
            deadline: None,
            change: change(
                None,
                Owner::Queue(queue()),
                admin(),
                OwnerChangeCause::Manual,
            ),
            notify: false,
            operation: None,
        }]);
}

fn decision(trigger: crate::routing::Trigger) -> crate::routing::Decision {
    crate::routing::Decision {
        matched_entry: Some(1),
        ..crate::routing::Decision::new(3, trigger)
    }
}

fn route(trigger: u128, outcome: RouteOutcome) -> LeadCommand {
    LeadCommand::RouteLead(RouteLead {
        remind_at: None,
        deadline: None,
        trigger: Uuid::from_u128(trigger),
        decision: decision(crate::routing::Trigger::Received),
        outcome,
        actor: Actor::System("router".into()),
        at: t0(),
    })
}

fn assign(to: Owner) -> RouteOutcome {
    RouteOutcome::Assign {
        to,
        notify: true,
        target: Ok(()),
    }
}

#[test]
fn routing_records_the_owner_change_with_cause_rule_and_its_decision() {
    LeadTest::with(())
        .given(vec![received()])
        .when(route(9, assign(Owner::PartnerUser(user(1)))))
        .then_expect_events(vec![LeadEvent::LeadRouted {
            remind_at: None,
            deadline: None,
            trigger: Uuid::from_u128(9),
            change: OwnerChange {
                from: None,
                to: Owner::PartnerUser(user(1)),
                actor: Actor::System("router".into()),
                cause: OwnerChangeCause::Rule,
                at: t0(),
            },
            notify: true,
            decision: decision(crate::routing::Trigger::Received),
        }]);
}

#[test]
fn a_redelivered_routing_trigger_changes_nothing() {
    let mut lead = Lead::default();
    lead.evolve(&received());
    for event in lead
        .decide(route(9, assign(Owner::Queue(queue()))))
        .unwrap()
    {
        lead.evolve(&event);
    }
    assert_eq!(
        lead.decide(route(9, assign(Owner::PartnerUser(user(2))))),
        Ok(vec![])
    );
    assert_eq!(lead.owner, Some(Owner::Queue(queue())));
}

#[test]
fn routing_to_the_current_owner_or_keeping_it_records_kept_existing_owner() {
    let mut lead = Lead::default();
    lead.evolve(&received());
    for event in lead
        .decide(route(1, assign(Owner::Queue(queue()))))
        .unwrap()
    {
        lead.evolve(&event);
    }
    for outcome in [assign(Owner::Queue(queue())), RouteOutcome::Keep] {
        let events = lead.decide(route(2, outcome)).unwrap();
        assert!(
            matches!(events.as_slice(), [LeadEvent::LeadOwnerKept { .. }]),
            "{events:?}"
        );
    }
}

#[test]
fn routing_refuses_an_owner_who_may_not_receive_leads_and_records_unrouted_reasons() {
    LeadTest::with(())
        .given(vec![received()])
        .when(route(
            1,
            RouteOutcome::Assign {
                to: Owner::PartnerUser(user(1)),
                notify: false,
                target: Err(NotAssignable::NeverSignedIn),
            },
        ))
        .then_expect_error(LeadError::NotAssignable(NotAssignable::NeverSignedIn));
    let mut lead = Lead::default();
    lead.evolve(&received());
    let events = lead
        .decide(route(
            1,
            RouteOutcome::Leave(crate::routing::NotRouted::NoRuleMatched),
        ))
        .unwrap();
    assert!(matches!(
        events.as_slice(),
        [LeadEvent::LeadNotRouted {
            reason: crate::routing::NotRouted::NoRuleMatched,
            ..
        }]
    ));
}

fn bulk_move(to: Owner, operation: u128) -> LeadCommand {
    LeadCommand::ReassignLead {
        remind_at: None,
        deadline: None,
        to,
        target: Ok(()),
        notify: false,
        operation: Some(BulkOperationId(Uuid::from_u128(operation))),
        actor: admin(),
        at: t0(),
    }
}

fn bulk_moved(from: Option<Owner>, to: Owner, operation: u128) -> LeadEvent {
    LeadEvent::LeadReassigned {
        remind_at: None,
        deadline: None,
        change: change(from, to, admin(), OwnerChangeCause::Bulk),
        notify: false,
        operation: Some(BulkOperationId(Uuid::from_u128(operation))),
    }
}

#[test]
fn a_bulk_move_records_cause_bulk_and_the_operation() {
    LeadTest::with(())
        .given(vec![received()])
        .when(bulk_move(Owner::PartnerUser(user(1)), 7))
        .then_expect_events(vec![bulk_moved(None, Owner::PartnerUser(user(1)), 7)]);
}

#[test]
fn a_lead_moves_at_most_once_per_bulk_operation() {
    let first = bulk_moved(None, Owner::PartnerUser(user(1)), 7);
    LeadTest::with(())
        .given(vec![received(), first.clone()])
        .when(bulk_move(Owner::PartnerUser(user(2)), 7))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![received(), first])
        .when(bulk_move(Owner::PartnerUser(user(2)), 8))
        .then_expect_events(vec![bulk_moved(
            Some(Owner::PartnerUser(user(1))),
            Owner::PartnerUser(user(2)),
            8,
        )]);
}

fn received_at(minute: i64, pairs: &[(&str, serde_json::Value)]) -> LeadEvent {
    match received() {
        LeadEvent::LeadReceived {
            lead_id,
            org_id,
            upstream,
            route,
            actor,
            at,
            ..
        } => LeadEvent::LeadReceived {
            lead_id,
            org_id,
            upstream,
            upstream_event_id: "evt-1".into(),
            fields: fields(pairs),
            route,
            occurred_at: Some(t0() + chrono::Duration::minutes(minute)),
            actor,
            at,
        },
        _ => unreachable!(),
    }
}

fn receive_at(event_id: &str, minute: i64, pairs: &[(&str, serde_json::Value)]) -> LeadCommand {
    let LeadCommand::ReceiveLead(mut command) = receive(event_id, fields(pairs)) else {
        unreachable!()
    };
    command.occurred_at = Some(t0() + chrono::Duration::minutes(minute));
    LeadCommand::ReceiveLead(command)
}

#[test]
fn an_upstream_event_older_than_the_newest_applied_changes_no_value() {
    LeadTest::with(())
        .given(vec![received_at(10, &[("country", json!("FR"))])])
        .when(receive_at(
            "evt-0",
            5,
            &[("country", json!("DE")), ("company", json!("Globex"))],
        ))
        .then_expect_events(vec![LeadEvent::LeadUpdateStale {
            upstream_event_id: "evt-0".into(),
            occurred_at: t0() + chrono::Duration::minutes(5),
            newest_applied: t0() + chrono::Duration::minutes(10),
            filled: fields(&[("company", json!("Globex"))]),
            actor: crm(),
            at: t0(),
        }]);
}

#[test]
fn an_upstream_event_as_new_as_the_newest_applied_is_applied_in_arrival_order() {
    LeadTest::with(())
        .given(vec![received_at(10, &[("country", json!("FR"))])])
        .when(receive_at("evt-2", 10, &[("country", json!("DE"))]))
        .then_expect_events(vec![LeadEvent::LeadUpdated {
            upstream_event_id: "evt-2".into(),
            changed: fields(&[("country", json!("DE"))]),
            route: true,
            occurred_at: Some(t0() + chrono::Duration::minutes(10)),
            actor: crm(),
            at: t0(),
        }]);
}

#[test]
fn a_stale_event_is_remembered_so_its_redelivery_is_a_no_op() {
    let stale = LeadEvent::LeadUpdateStale {
        upstream_event_id: "evt-0".into(),
        occurred_at: t0(),
        newest_applied: t0() + chrono::Duration::minutes(10),
        filled: LeadFields::new(),
        actor: crm(),
        at: t0(),
    };
    LeadTest::with(())
        .given(vec![received_at(10, &[("country", json!("FR"))]), stale])
        .when(receive_at("evt-0", 0, &[("country", json!("DE"))]))
        .then_expect_events(vec![]);
}

#[test]
fn updates_may_not_grow_a_lead_past_the_field_limit() {
    let many = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect::<LeadFields>()
    };
    let full = match received() {
        LeadEvent::LeadReceived {
            lead_id,
            org_id,
            upstream,
            upstream_event_id,
            route,
            occurred_at,
            actor,
            at,
            ..
        } => LeadEvent::LeadReceived {
            lead_id,
            org_id,
            upstream,
            upstream_event_id,
            fields: many(0, crate::limits::MAX_FIELDS),
            route,
            occurred_at,
            actor,
            at,
        },
        _ => unreachable!(),
    };
    LeadTest::with(())
        .given(vec![full.clone()])
        .when(receive("evt-2", many(crate::limits::MAX_FIELDS, 1)))
        .then_expect_error(LeadError::TooManyFields);
    LeadTest::with(())
        .given(vec![full])
        .when(receive("evt-3", many(0, 3)))
        .then_expect_events(vec![LeadEvent::LeadUpdated {
            upstream_event_id: "evt-3".into(),
            changed: LeadFields::new(),
            route: true,
            occurred_at: None,
            actor: crm(),
            at: t0(),
        }]);
}

fn freed(trigger: u128, outcome: RouteOutcome) -> LeadCommand {
    let LeadCommand::RouteLead(mut route) = route(trigger, outcome) else {
        unreachable!()
    };
    route.decision.trigger = crate::routing::Trigger::Freed;
    LeadCommand::RouteLead(route)
}

/// `lead` after `command`'s events.
fn after(mut lead: Lead, command: LeadCommand) -> Lead {
    for event in lead.decide(command).unwrap() {
        lead.evolve(&event);
    }
    lead
}

#[test]
fn a_lead_left_for_capacity_or_eligibility_with_no_owner_waits_until_an_owner_or_a_close() {
    use crate::routing::NotRouted;
    let mut lead = Lead::default();
    lead.evolve(&received());
    for (reason, waits) in [
        (NotRouted::AllAtCapacity, true),
        (NotRouted::NoAssignableMember, true),
        (NotRouted::NoRuleMatched, false),
    ] {
        let left = after(lead.clone(), route(1, RouteOutcome::Leave(reason)));
        assert_eq!(left.waiting, waits.then_some(reason), "{reason:?}");
        assert_eq!(left.holder(), None);
    }
    let waiting = after(
        lead,
        route(1, RouteOutcome::Leave(NotRouted::AllAtCapacity)),
    );
    // Routed: it waits no more, and its owner holds it.
    let routed = after(
        waiting.clone(),
        route(2, assign(Owner::PartnerUser(user(1)))),
    );
    assert_eq!(routed.waiting, None);
    assert_eq!(routed.holder(), Some(user(1).0));
    // An owned lead left unrouted again keeps its owner and does not wait.
    let owned = after(
        routed,
        route(3, RouteOutcome::Leave(NotRouted::AllAtCapacity)),
    );
    assert_eq!((owned.waiting, owned.holder()), (None, Some(user(1).0)));
    // Closed upstream: it waits for nothing and holds no place.
    let mut closed = waiting;
    closed.evolve(&LeadEvent::LeadUpdated {
        upstream_event_id: "evt-9".into(),
        changed: fields(&[("status", json!(" Won "))]),
        route: true,
        occurred_at: None,
        actor: crm(),
        at: t0(),
    });
    assert_eq!(closed.waiting, None);
    closed.owner = Some(Owner::Queue(queue()));
    assert_eq!(closed.holder(), None, "a closed lead holds no place");
}

#[test]
fn a_freed_decision_routes_only_a_waiting_lead_and_records_nothing_when_it_still_has_no_place() {
    use crate::routing::NotRouted;
    let mut lead = Lead::default();
    lead.evolve(&received());
    let to = Owner::PartnerUser(user(1));
    // Not waiting (never routed): nothing.
    assert_eq!(lead.decide(freed(5, assign(to))), Ok(vec![]));
    let waiting = after(
        lead,
        route(1, RouteOutcome::Leave(NotRouted::AllAtCapacity)),
    );
    // Still no place: nothing is recorded, and it still waits.
    let left = RouteOutcome::Leave(NotRouted::AllAtCapacity);
    assert_eq!(waiting.decide(freed(5, left)), Ok(vec![]));
    // A place: routed, with cause rule.
    let routed = after(waiting, freed(5, assign(to)));
    assert_eq!(routed.owner, Some(to));
    assert_eq!(
        routed.last_change.as_ref().unwrap().cause,
        OwnerChangeCause::Rule
    );
    // Woken again (another router, the same or another waking): nothing.
    assert_eq!(
        routed.decide(freed(6, assign(Owner::Queue(queue())))),
        Ok(vec![])
    );
}

fn offered_to(to: PartnerUserId, deadline: Option<DateTime<Utc>>) -> LeadEvent {
    LeadEvent::LeadReassigned {
        remind_at: None,
        change: change(
            None,
            Owner::PartnerUser(to),
            admin(),
            OwnerChangeCause::Manual,
        ),
        notify: false,
        operation: None,
        deadline,
    }
}

fn decline(by: PartnerUserId, reason: &str, note: Option<&str>, known: bool) -> LeadCommand {
    LeadCommand::DeclineLead(DeclineLead {
        by,
        reason: reason.into(),
        note: note.map(String::from),
        reason_known: known,
        at: t0(),
    })
}

fn lead_after(events: &[LeadEvent]) -> Lead {
    let mut lead = Lead::default();
    for event in events {
        lead.evolve(event);
    }
    lead
}

#[test]
fn a_lead_given_to_a_partner_user_is_an_offer_until_accepted() {
    let lead = lead_after(&[received(), offered_to(user(1), None)]);
    assert_eq!(lead.offer.map(|o| o.to), Some(user(1)));
    assert!(!lead.accepted);
    LeadTest::with(())
        .given(vec![received(), offered_to(user(1), None)])
        .when(LeadCommand::AcceptLead {
            by: user(1),
            at: t0(),
        })
        .then_expect_events(vec![LeadEvent::LeadAccepted {
            by: user(1),
            at: t0(),
        }]);
    let accepted = lead_after(&[
        received(),
        offered_to(user(1), None),
        LeadEvent::LeadAccepted {
            by: user(1),
            at: t0(),
        },
    ]);
    assert!(accepted.accepted && accepted.offer.is_none());
}

#[test]
fn accepting_twice_is_a_no_op_and_only_the_offeree_accepts() {
    LeadTest::with(())
        .given(vec![
            received(),
            offered_to(user(1), None),
            LeadEvent::LeadAccepted {
                by: user(1),
                at: t0(),
            },
        ])
        .when(LeadCommand::AcceptLead {
            by: user(1),
            at: t0(),
        })
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![received(), offered_to(user(1), None)])
        .when(LeadCommand::AcceptLead {
            by: user(2),
            at: t0(),
        })
        .then_expect_error(LeadError::NotOffered);
    // A queue's lead is nobody's offer.
    LeadTest::with(())
        .given(vec![received(), enqueued()])
        .when(LeadCommand::AcceptLead {
            by: user(1),
            at: t0(),
        })
        .then_expect_error(LeadError::NotOffered);
}

#[test]
fn a_claim_counts_as_acceptance() {
    let lead = lead_after(&[received(), enqueued(), claimed_by(user(1))]);
    assert!(lead.accepted);
    assert!(lead.offer.is_none());
    LeadTest::with(())
        .given(vec![received(), enqueued(), claimed_by(user(1))])
        .when(decline(user(1), "no_capacity", None, true))
        .then_expect_error(LeadError::AlreadyAccepted);
}

#[test]
fn a_decline_lets_the_lead_go_and_excludes_the_decliner_for_good() {
    LeadTest::with(())
        .given(vec![received(), offered_to(user(1), None)])
        .when(decline(
            user(1),
            " not_qualified ",
            Some("  too small "),
            true,
        ))
        .then_expect_events(vec![LeadEvent::LeadDeclined {
            by: user(1),
            reason: "not_qualified".into(),
            note: Some("too small".into()),
            at: t0(),
        }]);
    let declined = LeadEvent::LeadDeclined {
        by: user(1),
        reason: "not_qualified".into(),
        note: None,
        at: t0(),
    };
    let mut lead = lead_after(&[received(), offered_to(user(1), None), declined.clone()]);
    assert_eq!(lead.owner, None);
    assert_eq!(lead.holder(), None, "a declined lead holds no capacity");
    assert!(lead.declined.contains(&user(1)));
    // Offered to someone else later, the decliner stays excluded.
    lead.evolve(&offered_to(user(2), None));
    assert!(lead.declined.contains(&user(1)));
    let line = declined
        .history_line()
        .expect("a decline is a history line");
    assert_eq!(line.from, Some(Owner::PartnerUser(user(1))));
    assert_eq!(line.to, None);
    assert_eq!(line.cause, OwnerChangeCause::Declined);
}

#[test]
fn a_decline_needs_a_known_reason_and_a_note_for_other() {
    let given = || LeadTest::with(()).given(vec![received(), offered_to(user(1), None)]);
    given()
        .when(decline(user(1), "because", None, false))
        .then_expect_error(LeadError::UnknownDeclineReason);
    given()
        .when(decline(user(1), "  ", None, true))
        .then_expect_error(LeadError::UnknownDeclineReason);
    given()
        .when(decline(user(1), "other", Some("   "), true))
        .then_expect_error(LeadError::DeclineNoteRequired);
    given()
        .when(decline(user(1), "other", Some("bad\0note"), true))
        .then_expect_error(LeadError::InvalidNote(crate::limits::TextFault::Nul(
            "note".into(),
        )));
    let long = "x".repeat(crate::limits::MAX_NOTE_CHARS + 1);
    given()
        .when(decline(user(1), "other", Some(&long), true))
        .then_expect_error(LeadError::InvalidNote(crate::limits::TextFault::TooLong(
            "note".into(),
            crate::limits::MAX_NOTE_CHARS,
        )));
    given()
        .when(decline(user(2), "duplicate", None, true))
        .then_expect_error(LeadError::NotOffered);
}

#[test]
fn an_offer_lapses_once_at_its_own_deadline_and_not_after_acceptance() {
    let deadline = t0() + chrono::Duration::seconds(2);
    let late = t0() + chrono::Duration::seconds(3);
    let lapse = |deadline, at| LeadCommand::LapseOffer {
        deadline,
        actor: Actor::System("scheduler".into()),
        at,
    };
    let lapsed = LeadEvent::LeadOfferLapsed {
        from: user(1),
        deadline,
        actor: Actor::System("scheduler".into()),
        at: late,
    };
    LeadTest::with(())
        .given(vec![received(), offered_to(user(1), Some(deadline))])
        .when(lapse(deadline, late))
        .then_expect_events(vec![lapsed.clone()]);
    // Not yet due, a repeat after the recall, a timer of an earlier offer, an accepted
    // offer: nothing.
    LeadTest::with(())
        .given(vec![received(), offered_to(user(1), Some(deadline))])
        .when(lapse(deadline, t0()))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![
            received(),
            offered_to(user(1), Some(deadline)),
            lapsed.clone(),
        ])
        .when(lapse(deadline, late))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![
            received(),
            offered_to(user(1), Some(deadline)),
            offered_to(user(2), Some(late)),
        ])
        .when(lapse(deadline, late))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![
            received(),
            offered_to(user(1), Some(deadline)),
            LeadEvent::LeadAccepted {
                by: user(1),
                at: t0(),
            },
        ])
        .when(lapse(deadline, late))
        .then_expect_events(vec![]);
    let lead = lead_after(&[received(), offered_to(user(1), Some(deadline)), lapsed]);
    assert_eq!(lead.owner, None);
    assert!(lead.lapsed.contains(&user(1)));
}

#[test]
fn only_offers_to_partner_users_carry_a_deadline() {
    let deadline = Some(t0() + chrono::Duration::hours(4));
    LeadTest::with(())
        .given(vec![received()])
        .when(LeadCommand::ReassignLead {
            remind_at: None,
            to: Owner::Queue(queue()),
            target: Ok(()),
            notify: false,
            operation: None,
            deadline,
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![LeadEvent::LeadReassigned {
            remind_at: None,
            change: change(
                None,
                Owner::Queue(queue()),
                admin(),
                OwnerChangeCause::Manual,
            ),
            notify: false,
            operation: None,
            deadline: None,
        }]);
}

#[test]
fn a_reminder_goes_out_once_for_the_pending_offer_it_was_set_for() {
    let deadline = t0() + chrono::Duration::seconds(100);
    let remind_at = t0() + chrono::Duration::seconds(50);
    let offered = LeadEvent::LeadReassigned {
        change: change(
            None,
            Owner::PartnerUser(user(1)),
            admin(),
            OwnerChangeCause::Manual,
        ),
        notify: false,
        operation: None,
        deadline: Some(deadline),
        remind_at: Some(remind_at),
    };
    let reminded = LeadEvent::LeadOfferReminded {
        to: user(1),
        deadline,
        at: remind_at,
    };
    let remind = |at| LeadCommand::RemindOffer { deadline, at };
    LeadTest::with(())
        .given(vec![received(), offered.clone()])
        .when(remind(remind_at))
        .then_expect_events(vec![reminded.clone()]);
    // Too early, twice, or after acceptance: nothing.
    LeadTest::with(())
        .given(vec![received(), offered.clone()])
        .when(remind(t0()))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![received(), offered.clone(), reminded.clone()])
        .when(remind(deadline))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![
            received(),
            offered.clone(),
            LeadEvent::LeadAccepted {
                by: user(1),
                at: t0(),
            },
        ])
        .when(remind(deadline))
        .then_expect_events(vec![]);
    // The reminder does not move the deadline: the offer still lapses at it.
    let lead = lead_after(&[received(), offered, reminded]);
    let offer = lead.offer.unwrap();
    assert!(offer.reminded);
    assert_eq!(offer.deadline, Some(deadline));
}

#[test]
fn a_held_lead_is_not_routed_until_resolved_and_each_resolution_does_what_it_says() {
    let of = LeadId(Uuid::from_u128(77));
    let owner = Owner::PartnerUser(user(2));
    let held = LeadEvent::LeadHeld {
        trigger: Uuid::from_u128(1),
        of,
        owner,
        decision: decision(crate::routing::Trigger::Received),
        at: t0(),
    };
    let resolve = |resolution| LeadCommand::ResolveHold {
        resolution,
        actor: admin(),
        at: t0(),
    };
    LeadTest::with(())
        .given(vec![received(), held.clone()])
        .when(route(2, assign(Owner::PartnerUser(user(1)))))
        .then_expect_events(vec![]);
    LeadTest::with(())
        .given(vec![received()])
        .when(resolve(HoldResolution::Reject))
        .then_expect_error(LeadError::NotHeld);
    LeadTest::with(())
        .given(vec![received(), held.clone()])
        .when(resolve(HoldResolution::Merge))
        .then_expect_events(vec![LeadEvent::LeadHoldResolved {
            resolution: HoldResolution::Merge,
            into: Some(of),
            actor: admin(),
            at: t0(),
        }]);
    let after = |resolution| {
        lead_after(&[
            received(),
            held.clone(),
            LeadEvent::LeadHoldResolved {
                resolution,
                into: (resolution == HoldResolution::Merge).then_some(of),
                actor: admin(),
                at: t0(),
            },
        ])
    };
    assert_eq!(after(HoldResolution::Merge).merged_into, Some(of));
    assert!(after(HoldResolution::Reject).rejected);
    let released = after(HoldResolution::RouteAnyway);
    assert!(released.duplicate_cleared && released.held.is_none());
    // Released, it is routed; rejected, never.
    LeadTest::with(())
        .given(vec![
            received(),
            held.clone(),
            LeadEvent::LeadHoldResolved {
                resolution: HoldResolution::Reject,
                into: None,
                actor: admin(),
                at: t0(),
            },
        ])
        .when(route(3, assign(Owner::PartnerUser(user(1)))))
        .then_expect_events(vec![]);
}
