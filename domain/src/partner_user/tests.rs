//! Given/when/then tests of the PartnerUser aggregate and the assignability rule.

use super::*;
use crate::test_support::{admin, t0};
use chrono::Duration;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type UserTest = TestFramework<PartnerUser>;

fn add_contact(email: &str) -> PartnerUserCommand {
    add_named_contact("Ada Partner", email)
}

fn add_named_contact(name: &str, email: &str) -> PartnerUserCommand {
    PartnerUserCommand::AddContact {
        user_id: PartnerUserId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        account_id: PartnerAccountId(Uuid::from_u128(3)),
        name: name.into(),
        email: email.into(),
        actor: admin(),
        at: t0(),
    }
}

fn added() -> PartnerUserEvent {
    PartnerUserEvent::ContactAdded {
        user_id: PartnerUserId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        account_id: PartnerAccountId(Uuid::from_u128(3)),
        name: "Ada Partner".into(),
        email: "ada@northwind.example".into(),
        actor: admin(),
        at: t0(),
    }
}

fn invitation() -> InvitationId {
    InvitationId(Uuid::from_u128(9))
}

fn activate(account_active: bool) -> PartnerUserCommand {
    PartnerUserCommand::ActivatePartnerUser {
        invitation_id: invitation(),
        invitation_expires_at: t0() + Duration::days(7),
        account_active,
        actor: admin(),
        at: t0(),
    }
}

fn activated() -> PartnerUserEvent {
    PartnerUserEvent::PartnerUserActivated {
        invitation_id: invitation(),
        invitation_expires_at: t0() + Duration::days(7),
        actor: admin(),
        at: t0(),
    }
}

fn signed_in(first_sign_in: bool) -> PartnerUserEvent {
    PartnerUserEvent::PartnerUserSignedIn {
        first_sign_in,
        at: t0(),
    }
}

fn state(events: &[PartnerUserEvent]) -> PartnerUser {
    let mut user = PartnerUser::default();
    events.iter().for_each(|e| user.evolve(e));
    user
}

#[test]
fn adds_a_contact_with_a_normalised_email() {
    UserTest::with(())
        .given_no_previous_events()
        .when(add_contact("  Ada@Northwind.Example "))
        .then_expect_events(vec![added()]);
}

#[test]
fn refuses_a_contact_with_an_invalid_email() {
    UserTest::with(())
        .given_no_previous_events()
        .when(add_contact("ada-at-northwind"))
        .then_expect_error(PartnerUserError::InvalidEmail);
}

#[test]
fn refuses_to_add_a_contact_twice() {
    UserTest::with(())
        .given(vec![added()])
        .when(add_contact("ada@northwind.example"))
        .then_expect_error(PartnerUserError::ContactAlreadyExists);
}

#[test]
fn activates_a_contact_of_an_active_partner_with_an_expiring_invitation() {
    UserTest::with(())
        .given(vec![added()])
        .when(activate(true))
        .then_expect_events(vec![activated()]);
}

#[test]
fn refuses_to_activate_a_contact_of_an_account_that_is_not_an_active_partner() {
    UserTest::with(())
        .given(vec![added()])
        .when(activate(false))
        .then_expect_error(PartnerUserError::PartnerAccountNotActive);
}

#[test]
fn refuses_an_invitation_that_is_already_expired() {
    UserTest::with(())
        .given(vec![added()])
        .when(PartnerUserCommand::ActivatePartnerUser {
            invitation_id: invitation(),
            invitation_expires_at: t0(),
            account_active: true,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PartnerUserError::InvitationExpiryInPast);
}

#[test]
fn refuses_to_activate_an_active_partner_user() {
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(activate(true))
        .then_expect_error(PartnerUserError::AlreadyActive);
}

#[test]
fn refuses_commands_on_a_missing_contact() {
    UserTest::with(())
        .given_no_previous_events()
        .when(activate(true))
        .then_expect_error(PartnerUserError::ContactNotFound);
}

#[test]
fn flags_the_first_sign_in_only() {
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(PartnerUserCommand::RecordSignIn { at: t0() })
        .then_expect_events(vec![signed_in(true)]);
    UserTest::with(())
        .given(vec![added(), activated(), signed_in(true)])
        .when(PartnerUserCommand::RecordSignIn { at: t0() })
        .then_expect_events(vec![signed_in(false)]);
}

#[test]
fn refuses_a_sign_in_of_an_inactive_user() {
    UserTest::with(())
        .given(vec![added()])
        .when(PartnerUserCommand::RecordSignIn { at: t0() })
        .then_expect_error(PartnerUserError::NotActive);
}

#[test]
fn deactivates_an_active_partner_user() {
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(PartnerUserCommand::DeactivatePartnerUser {
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![PartnerUserEvent::PartnerUserDeactivated {
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn refuses_to_deactivate_an_inactive_user() {
    UserTest::with(())
        .given(vec![added()])
        .when(PartnerUserCommand::DeactivatePartnerUser {
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PartnerUserError::NotActive);
}

#[test]
fn pauses_and_resumes_auto_assignment() {
    let paused = PartnerUserEvent::AutoAssignmentPaused {
        until: None,
        actor: admin(),
        at: t0(),
    };
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(PartnerUserCommand::PauseAutoAssignment {
            until: None,
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![paused.clone()]);
    UserTest::with(())
        .given(vec![added(), activated(), paused.clone()])
        .when(PartnerUserCommand::PauseAutoAssignment {
            until: None,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PartnerUserError::AlreadyPaused);
    UserTest::with(())
        .given(vec![added(), activated(), paused])
        .when(PartnerUserCommand::ResumeAutoAssignment {
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![PartnerUserEvent::AutoAssignmentResumed {
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn a_pause_that_would_end_before_it_starts_is_refused() {
    for until in [t0() - chrono::Duration::minutes(1), t0()] {
        UserTest::with(())
            .given(vec![added(), activated()])
            .when(PartnerUserCommand::PauseAutoAssignment {
                until: Some(until),
                actor: admin(),
                at: t0(),
            })
            .then_expect_error(PartnerUserError::PauseEndsInPast);
    }
}

#[test]
fn refuses_to_resume_when_not_paused() {
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(PartnerUserCommand::ResumeAutoAssignment {
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PartnerUserError::NotPaused);
}

#[test]
fn a_user_is_assignable_only_when_active_signed_in_and_in_an_active_account() {
    assert_eq!(
        state(&[added()]).assignability(true),
        Err(NotAssignable::Inactive)
    );
    assert_eq!(
        state(&[added(), activated()]).assignability(true),
        Err(NotAssignable::NeverSignedIn)
    );
    let ready = state(&[added(), activated(), signed_in(true)]);
    assert_eq!(ready.assignability(true), Ok(()));
    assert_eq!(
        ready.assignability(false),
        Err(NotAssignable::PartnerAccountNotActive)
    );
    let gone = state(&[
        added(),
        activated(),
        signed_in(true),
        PartnerUserEvent::PartnerUserDeactivated {
            actor: admin(),
            at: t0(),
        },
    ]);
    assert_eq!(gone.assignability(true), Err(NotAssignable::Inactive));
}

#[test]
fn a_paused_user_is_still_assignable_manually() {
    let paused = state(&[
        added(),
        activated(),
        signed_in(true),
        PartnerUserEvent::AutoAssignmentPaused {
            until: None,
            actor: admin(),
            at: t0(),
        },
    ]);
    assert_eq!(paused.assignability(true), Ok(()));
}

#[test]
fn refuses_a_contact_without_a_name() {
    UserTest::with(())
        .given_no_previous_events()
        .when(add_named_contact("\t", "ada@northwind.example"))
        .then_expect_error(PartnerUserError::NameRequired);
}

#[test]
fn a_pause_with_an_end_lapses_and_may_be_set_again() {
    use chrono::Duration;
    let mut user = PartnerUser::default();
    let until = t0() + Duration::hours(2);
    user.evolve(&PartnerUserEvent::AutoAssignmentPaused {
        until: Some(until),
        actor: admin(),
        at: t0(),
    });
    assert!(user.paused_at(t0() + Duration::hours(1)));
    assert!(
        !user.paused_at(until + Duration::seconds(1)),
        "out of office has ended"
    );
    user.evolve(&PartnerUserEvent::AutoAssignmentPaused {
        until: None,
        actor: admin(),
        at: t0(),
    });
    assert!(
        user.paused_at(until + Duration::days(365)),
        "an open pause lasts until resumed"
    );
}

fn reset(at: chrono::DateTime<chrono::Utc>) -> PartnerUserCommand {
    PartnerUserCommand::RequestPasswordReset {
        invitation_id: InvitationId(Uuid::from_u128(10)),
        invitation_expires_at: at + Duration::hours(1),
        at,
    }
}

#[test]
fn a_password_reset_replaces_the_invitation() {
    let mut user = PartnerUser::default();
    for event in [added(), activated()] {
        user.evolve(&event);
    }
    let events = user.decide(reset(t0())).expect("reset");
    user.evolve(&events[0]);
    assert_eq!(
        user.invitation,
        Some((InvitationId(Uuid::from_u128(10)), t0() + Duration::hours(1)))
    );
}

#[test]
fn a_second_reset_within_a_minute_is_refused_and_later_one_is_not() {
    let first = PartnerUserEvent::PasswordResetRequested {
        invitation_id: InvitationId(Uuid::from_u128(10)),
        invitation_expires_at: t0() + Duration::hours(1),
        at: t0(),
    };
    UserTest::with(())
        .given(vec![added(), activated(), first.clone()])
        .when(reset(t0() + Duration::seconds(59)))
        .then_expect_error(PartnerUserError::ResetTooSoon);
    let mut user = PartnerUser::default();
    for event in [added(), activated(), first] {
        user.evolve(&event);
    }
    assert!(user.decide(reset(t0() + Duration::seconds(60))).is_ok());
}

#[test]
fn an_inactive_user_gets_no_reset() {
    UserTest::with(())
        .given(vec![added()])
        .when(reset(t0()))
        .then_expect_error(PartnerUserError::NotActive);
}

#[test]
fn preferences_need_a_known_time_zone() {
    let set = |zone: &str| PartnerUserCommand::SetPreferences {
        preferences: Preferences {
            language: Some(Language::Es),
            time_zone: Some(zone.into()),
        },
        actor: admin(),
        at: t0(),
    };
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(set("Mars/Olympus"))
        .then_expect_error(PartnerUserError::InvalidTimeZone);
    UserTest::with(())
        .given(vec![added(), activated()])
        .when(set("Europe/Madrid"))
        .then_expect_events(vec![PartnerUserEvent::PreferencesSet {
            preferences: Preferences {
                language: Some(Language::Es),
                time_zone: Some("Europe/Madrid".into()),
            },
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn a_language_tag_names_its_language() {
    assert_eq!(Language::of_tag("es-MX"), Some(Language::Es));
    assert_eq!(Language::of_tag("EN"), Some(Language::En));
    assert_eq!(Language::of_tag("fr"), None);
}
