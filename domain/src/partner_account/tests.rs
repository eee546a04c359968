//! Given/when/then tests of the PartnerAccount aggregate, one per rule.

use super::*;
use crate::test_support::{admin, t0};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type AccountTest = TestFramework<PartnerAccount>;

fn manager(n: u128) -> InternalUserId {
    InternalUserId(Uuid::from_u128(100 + n))
}

fn create_command() -> PartnerAccountCommand {
    create_named("Northwind Resellers")
}

fn create_named(name: &str) -> PartnerAccountCommand {
    PartnerAccountCommand::CreatePartnerAccount {
        account_id: PartnerAccountId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        name: name.into(),
        channel_manager: manager(1),
        territory: "EMEA".into(),
        tier: "gold".into(),
        actor: admin(),
        at: t0(),
    }
}

pub(crate) fn created() -> PartnerAccountEvent {
    PartnerAccountEvent::PartnerAccountCreated {
        account_id: PartnerAccountId(Uuid::from_u128(1)),
        org_id: OrgId(Uuid::from_u128(2)),
        name: "Northwind Resellers".into(),
        channel_manager: manager(1),
        territory: "EMEA".into(),
        tier: "gold".into(),
        actor: admin(),
        at: t0(),
    }
}

fn activated() -> PartnerAccountEvent {
    PartnerAccountEvent::PartnerActivated {
        actor: admin(),
        at: t0(),
    }
}

fn activate(org_prm_enabled: bool) -> PartnerAccountCommand {
    PartnerAccountCommand::ActivatePartner {
        org_prm_enabled,
        actor: admin(),
        at: t0(),
    }
}

#[test]
fn creates_a_partner_account() {
    AccountTest::with(())
        .given_no_previous_events()
        .when(create_command())
        .then_expect_events(vec![created()]);
}

#[test]
fn refuses_to_create_an_account_twice() {
    AccountTest::with(())
        .given(vec![created()])
        .when(create_command())
        .then_expect_error(PartnerAccountError::AccountAlreadyExists);
}

#[test]
fn refuses_commands_on_a_missing_account() {
    AccountTest::with(())
        .given_no_previous_events()
        .when(activate(true))
        .then_expect_error(PartnerAccountError::AccountNotFound);
}

#[test]
fn activates_a_partner_when_prm_is_enabled() {
    AccountTest::with(())
        .given(vec![created()])
        .when(activate(true))
        .then_expect_events(vec![activated()]);
}

#[test]
fn refuses_to_activate_a_partner_before_prm_is_enabled() {
    AccountTest::with(())
        .given(vec![created()])
        .when(activate(false))
        .then_expect_error(PartnerAccountError::PrmNotEnabled);
}

#[test]
fn refuses_to_activate_an_active_partner() {
    AccountTest::with(())
        .given(vec![created(), activated()])
        .when(activate(true))
        .then_expect_error(PartnerAccountError::AlreadyActive);
}

#[test]
fn deactivates_an_active_partner() {
    AccountTest::with(())
        .given(vec![created(), activated()])
        .when(PartnerAccountCommand::DeactivatePartner {
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![PartnerAccountEvent::PartnerDeactivated {
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn refuses_to_deactivate_an_inactive_partner() {
    AccountTest::with(())
        .given(vec![created()])
        .when(PartnerAccountCommand::DeactivatePartner {
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PartnerAccountError::NotActive);
}

#[test]
fn changes_the_channel_manager() {
    AccountTest::with(())
        .given(vec![created()])
        .when(PartnerAccountCommand::ChangeChannelManager {
            channel_manager: manager(2),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![PartnerAccountEvent::ChannelManagerChanged {
            from: manager(1),
            to: manager(2),
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn refuses_to_change_to_the_same_channel_manager() {
    AccountTest::with(())
        .given(vec![created()])
        .when(PartnerAccountCommand::ChangeChannelManager {
            channel_manager: manager(1),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(PartnerAccountError::UnchangedChannelManager);
}

#[test]
fn refuses_an_account_without_a_name() {
    AccountTest::with(())
        .given_no_previous_events()
        .when(create_named(" "))
        .then_expect_error(PartnerAccountError::NameRequired);
}
