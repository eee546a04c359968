//! The partner directory projector: partner accounts, partner users (with what decides
//! their assignability), queues and queue members. These events are few, so it writes one
//! statement per event.

use crate::projector::{ProjectionError, Projector};
use async_trait::async_trait;
use leadroute_domain::partner_account::PartnerAccountEvent as A;
use leadroute_domain::partner_user::PartnerUserEvent as U;
use leadroute_domain::queue::{QueueEvent as Q, QueueMember};
use leadroute_store::log::{AnyEvent, LogEvent};
use sqlx::PgConnection;
use uuid::Uuid;

/// Builds rm_partner_accounts, rm_partner_users, rm_queues and rm_queue_members.
pub struct DirectoryProjector;

#[async_trait]
impl Projector for DirectoryProjector {
    fn name(&self) -> &'static str {
        super::shared::DIRECTORY
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_partner_accounts",
            "rm_partner_users",
            "rm_queues",
            "rm_queue_members",
        ]
    }

    fn reading(&self) -> leadroute_store::log::Reading {
        leadroute_store::log::Reading {
            types: Some(&["PartnerAccount", "PartnerUser", "Queue"]),
            raw: false,
        }
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[LogEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            let id = event.aggregate_id;
            match &event.event {
                AnyEvent::PartnerAccount(e) => account(conn, id, e).await?,
                AnyEvent::PartnerUser(e) => user(conn, id, e).await?,
                AnyEvent::Queue(e) => queue(conn, id, e).await?,
                AnyEvent::Org(_)
                | AnyEvent::Lead(_)
                | AnyEvent::Pool(_)
                | AnyEvent::RuleSet(_)
                | AnyEvent::Templates(_)
                | AnyEvent::Bulk(_)
                | AnyEvent::Unread
                | AnyEvent::Undecodable(_) => {}
            }
        }
        Ok(())
    }
}

async fn account(conn: &mut PgConnection, id: Uuid, event: &A) -> Result<(), sqlx::Error> {
    let query = match event {
        A::PartnerAccountCreated {
            org_id,
            name,
            channel_manager,
            territory,
            tier,
            at,
            ..
        } => sqlx::query(
            "INSERT INTO rm_partner_accounts
                    (account_id, org_id, name, channel_manager, territory, tier, active, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, false, $7)",
        )
        .bind(id)
        .bind(org_id.0)
        .bind(name)
        .bind(channel_manager.0)
        .bind(territory)
        .bind(tier)
        .bind(at),
        A::PartnerActivated { .. } => {
            sqlx::query("UPDATE rm_partner_accounts SET active = true WHERE account_id = $1")
                .bind(id)
        }
        A::PartnerDeactivated { .. } => {
            sqlx::query("UPDATE rm_partner_accounts SET active = false WHERE account_id = $1")
                .bind(id)
        }
        A::ChannelManagerChanged { to, .. } => {
            sqlx::query("UPDATE rm_partner_accounts SET channel_manager = $2 WHERE account_id = $1")
                .bind(id)
                .bind(to.0)
        }
    };
    query.execute(conn).await.map(|_| ())
}

async fn user(conn: &mut PgConnection, id: Uuid, event: &U) -> Result<(), sqlx::Error> {
    let set = |column_value: &'static str| sqlx::query(column_value).bind(id);
    let query = match event {
        U::ContactAdded { org_id, account_id, name, email, at, .. } => sqlx::query(
            "INSERT INTO rm_partner_users
                    (user_id, org_id, account_id, name, email, active, signed_in_once, paused, created_at)
             VALUES ($1, $2, $3, $4, $5, false, false, false, $6)",
        )
        .bind(id)
        .bind(org_id.0)
        .bind(account_id.0)
        .bind(name)
        .bind(email)
        .bind(at),
        U::PartnerUserActivated { .. } => set("UPDATE rm_partner_users SET active = true WHERE user_id = $1"),
        U::PartnerUserDeactivated { .. } => set("UPDATE rm_partner_users SET active = false WHERE user_id = $1"),
        U::PartnerUserSignedIn { .. } => set("UPDATE rm_partner_users SET signed_in_once = true WHERE user_id = $1"),
        U::AutoAssignmentPaused { until, .. } => sqlx::query(
            "UPDATE rm_partner_users SET paused = true, paused_until = $2 WHERE user_id = $1",
        )
        .bind(id)
        .bind(until),
        U::AutoAssignmentResumed { .. } => set(
            "UPDATE rm_partner_users SET paused = false, paused_until = NULL WHERE user_id = $1",
        ),
        // Links and page settings live in the user's state, not in the directory.
        U::PasswordResetRequested { .. } | U::PreferencesSet { .. } => return Ok(()),
    };
    query.execute(conn).await.map(|_| ())
}

fn member_columns(member: &QueueMember) -> (&'static str, Uuid) {
    match member {
        QueueMember::PartnerUser(id) => ("partner_user", id.0),
        QueueMember::PartnerAccount(id) => ("partner_account", id.0),
    }
}

async fn queue(conn: &mut PgConnection, id: Uuid, event: &Q) -> Result<(), sqlx::Error> {
    let query = match event {
        Q::QueueCreated {
            org_id, name, at, ..
        } => sqlx::query(
            "INSERT INTO rm_queues (queue_id, org_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(org_id.0)
        .bind(name)
        .bind(at),
        Q::QueueMemberAdded { member, .. } => {
            let (kind, member_id) = member_columns(member);
            sqlx::query("INSERT INTO rm_queue_members (queue_id, member_kind, member_id) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(kind)
                .bind(member_id)
        }
        Q::QueueMemberRemoved { member, .. } => {
            let (kind, member_id) = member_columns(member);
            sqlx::query("DELETE FROM rm_queue_members WHERE queue_id = $1 AND member_kind = $2 AND member_id = $3")
                .bind(id)
                .bind(kind)
                .bind(member_id)
        }
    };
    query.execute(conn).await.map(|_| ())
}
