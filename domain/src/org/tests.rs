//! Given/when/then tests of the Org aggregate, one per rule.

use super::*;
use crate::test_support::{admin, t0};
use cqrs_es::test::TestFramework;

type OrgTest = TestFramework<Org>;

fn org_id() -> OrgId {
    OrgId(uuid::Uuid::from_u128(7))
}

fn created() -> OrgEvent {
    OrgEvent::OrgCreated {
        org_id: org_id(),
        name: "Acme".into(),
        slug: Some("acme".into()),
        actor: admin(),
        at: t0(),
    }
}

fn ack() -> SharingReviewAck {
    SharingReviewAck {
        reviewed_by: InternalUserId(uuid::Uuid::from_u128(1)),
        fields: VisibleFields {
            lead: ["company".to_string(), "country".to_string()].into(),
            account: ["name".to_string()].into(),
        },
    }
}

fn enabled() -> OrgEvent {
    OrgEvent::PrmEnabled {
        acknowledgement: ack(),
        actor: admin(),
        at: t0(),
    }
}

#[test]
fn creates_an_org() {
    OrgTest::with(())
        .given_no_previous_events()
        .when(OrgCommand::CreateOrg {
            slug: Some("acme".into()),
            org_id: org_id(),
            name: " Acme ".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn refuses_to_create_an_org_twice() {
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::CreateOrg {
            slug: Some("acme".into()),
            org_id: org_id(),
            name: "Acme".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::OrgAlreadyExists);
}

#[test]
fn refuses_an_org_without_a_name() {
    OrgTest::with(())
        .given_no_previous_events()
        .when(OrgCommand::CreateOrg {
            slug: Some("acme".into()),
            org_id: org_id(),
            name: "  ".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::NameRequired);
}

#[test]
fn refuses_commands_on_an_org_that_does_not_exist() {
    OrgTest::with(())
        .given_no_previous_events()
        .when(OrgCommand::EnablePrm {
            acknowledgement: Some(ack()),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::OrgNotFound);
}

#[test]
fn enables_prm_recording_who_reviewed_which_fields() {
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::EnablePrm {
            acknowledgement: Some(ack()),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![enabled()]);
}

#[test]
fn refuses_to_enable_prm_without_the_sharing_review() {
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::EnablePrm {
            acknowledgement: None,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::SharingReviewNotAcknowledged);
}

#[test]
fn refuses_a_sharing_review_with_a_blank_field_name() {
    let mut ack = ack();
    ack.fields.lead.insert(" ".into());
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::EnablePrm {
            acknowledgement: Some(ack),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::BlankFieldName);
}

#[test]
fn refuses_to_enable_prm_twice() {
    OrgTest::with(())
        .given(vec![created(), enabled()])
        .when(OrgCommand::EnablePrm {
            acknowledgement: Some(ack()),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::PrmAlreadyEnabled);
}

#[test]
fn refuses_to_disable_prm_once_enabled() {
    OrgTest::with(())
        .given(vec![created(), enabled()])
        .when(OrgCommand::DisablePrm { actor: admin() })
        .then_expect_error(OrgError::PrmIrreversible);
}

#[test]
fn refuses_to_disable_prm_that_was_never_enabled() {
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::DisablePrm { actor: admin() })
        .then_expect_error(OrgError::PrmNotEnabled);
}

#[test]
fn sets_partner_visible_fields() {
    let fields = VisibleFields {
        lead: ["email".to_string()].into(),
        account: BTreeSet::new(),
    };
    OrgTest::with(())
        .given(vec![created(), enabled()])
        .when(OrgCommand::SetPartnerVisibleFields {
            fields: fields.clone(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![OrgEvent::PartnerVisibleFieldsSet {
            fields,
            actor: admin(),
            at: t0(),
        }]);
}

#[test]
fn enabling_prm_makes_the_reviewed_fields_visible() {
    let mut org = Org::default();
    org.evolve(&created());
    org.evolve(&enabled());
    assert!(org.prm_enabled);
    assert_eq!(org.visible_fields, ack().fields);
}

#[test]
fn refuses_partner_visible_fields_with_a_blank_name() {
    let fields = VisibleFields {
        lead: ["".to_string()].into(),
        account: BTreeSet::new(),
    };
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::SetPartnerVisibleFields {
            fields,
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::BlankFieldName);
}

#[test]
fn an_org_declines_with_the_default_reasons_until_it_sets_its_own() {
    let org = Org::default();
    assert!(org.workflow.declines_with("not_my_territory"));
    assert!(org.workflow.declines_with("other"));
    let workflow = PartnerWorkflow {
        decline_reasons: vec!["wrong_region".into(), "other".into()],
        ..PartnerWorkflow::default()
    };
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::SetPartnerWorkflow {
            workflow: workflow.clone(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_events(vec![OrgEvent::PartnerWorkflowSet {
            workflow: workflow.clone(),
            actor: admin(),
            at: t0(),
        }]);
    let mut org = Org::default();
    org.evolve(&created());
    org.evolve(&OrgEvent::PartnerWorkflowSet {
        workflow,
        actor: admin(),
        at: t0(),
    });
    assert!(org.workflow.declines_with("wrong_region"));
    assert!(!org.workflow.declines_with("not_my_territory"));
}

#[test]
fn refuses_malformed_decline_reasons_naming_the_entry() {
    let refused = |reasons: Vec<&str>| {
        let workflow = PartnerWorkflow {
            decline_reasons: reasons.into_iter().map(String::from).collect(),
            ..PartnerWorkflow::default()
        };
        workflow.problem().expect("refused")
    };
    assert!(refused(vec![]).starts_with("decline_reasons:"));
    assert!(refused(vec!["ok", "Not Ok"]).starts_with("decline_reasons[1]"));
    assert!(refused(vec!["a\0"]).starts_with("decline_reasons[0]"));
    assert!(refused(vec!["dup", "dup"]).contains("listed twice"));
    assert!(refused(vec!["x"; MAX_DECLINE_REASONS + 1]).starts_with("decline_reasons:"));
    OrgTest::with(())
        .given(vec![created()])
        .when(OrgCommand::SetPartnerWorkflow {
            workflow: PartnerWorkflow {
                decline_reasons: vec![],
                ..PartnerWorkflow::default()
            },
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::InvalidWorkflow(
            "decline_reasons: list 1 to 50 reason codes".into(),
        ));
}

#[test]
fn deadlines_come_from_the_entry_else_the_org_with_a_reminder_at_its_share() {
    use crate::deadline::Deadline;
    let at: DateTime<Utc> = "2026-12-08T10:00:00Z".parse().unwrap();
    let mut workflow = PartnerWorkflow::default();
    assert_eq!(workflow.due(None, at), None, "no deadline by default");
    workflow.acceptance_deadline = Some(Deadline::Seconds(3600));
    workflow.reminder_percent = Some(50);
    let (deadline, remind) = workflow.due(None, at).unwrap();
    assert_eq!(deadline, at + chrono::Duration::hours(1));
    assert_eq!(remind, Some(at + chrono::Duration::minutes(30)));
    let (deadline, _) = workflow.due(Some(Deadline::BusinessHours(2)), at).unwrap();
    assert_eq!(deadline, at + chrono::Duration::hours(2));
    for (bad, at_fault) in [
        (
            PartnerWorkflow {
                acceptance_deadline: Some(Deadline::Seconds(0)),
                ..PartnerWorkflow::default()
            },
            "acceptance_deadline.seconds",
        ),
        (
            PartnerWorkflow {
                reminder_percent: Some(100),
                ..PartnerWorkflow::default()
            },
            "reminder_percent",
        ),
        (
            PartnerWorkflow {
                business_hours: crate::deadline::BusinessHours {
                    end_hour: 3,
                    ..Default::default()
                },
                ..PartnerWorkflow::default()
            },
            "business_hours",
        ),
    ] {
        assert!(bad.problem().unwrap().starts_with(at_fault), "{bad:?}");
    }
}

#[test]
fn before_acceptance_a_partner_sees_only_the_pre_acceptance_fields_among_the_visible_ones() {
    let mut org = Org::default();
    org.evolve(&created());
    org.evolve(&enabled()); // visible: company, country
    org.evolve(&OrgEvent::PartnerWorkflowSet {
        workflow: PartnerWorkflow {
            pre_acceptance_fields: ["company".to_string(), "industry".to_string()].into(),
            ..PartnerWorkflow::default()
        },
        actor: admin(),
        at: t0(),
    });
    let names = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>();
    assert_eq!(names(org.partner_fields(false)), ["company"]);
    assert_eq!(names(org.partner_fields(true)), ["company", "country"]);
    let blank = PartnerWorkflow {
        pre_acceptance_fields: [" ".to_string()].into(),
        ..PartnerWorkflow::default()
    };
    assert!(blank.problem().unwrap().contains("pre_acceptance_fields"));
}

#[test]
fn a_slug_is_lower_case_letters_digits_and_inner_dashes() {
    for good in ["acme", "acme-eu", "a1", "partner-portal-2"] {
        assert!(is_slug(good), "{good}");
    }
    let uuid = uuid::Uuid::from_u128(7).to_string();
    for bad in [
        "", "a", "Acme", "-acme", "acme-", "ac me", "acmé", "a/b", &uuid,
    ] {
        assert!(!is_slug(bad), "{bad}");
    }
    assert!(!is_slug(&"a".repeat(MAX_SLUG_CHARS + 1)));
}

#[test]
fn a_name_suggests_its_slug() {
    assert_eq!(slug_of("Acme Corp.").as_deref(), Some("acme-corp"));
    assert_eq!(
        slug_of("  Compañía Ibérica  ").as_deref(),
        Some("compania-iberica")
    );
    assert_eq!(slug_of("!!!"), None);
    assert_eq!(
        slug_of(&"x".repeat(200)).map(|s| s.len()),
        Some(MAX_SLUG_CHARS - 4)
    );
}

#[test]
fn an_org_with_a_malformed_slug_is_refused() {
    OrgTest::with(())
        .given_no_previous_events()
        .when(OrgCommand::CreateOrg {
            slug: Some("Not A Slug".into()),
            org_id: org_id(),
            name: "Acme".into(),
            actor: admin(),
            at: t0(),
        })
        .then_expect_error(OrgError::InvalidSlug);
}
