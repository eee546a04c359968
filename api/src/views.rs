//! The API's response types for read-model rows: what `/openapi.json` documents and
//! clients receive. The read models' rows (`leadroute_projections::queries`) convert into
//! them, so a read-model change does not change the HTTP contract by accident.

use chrono::{DateTime, Utc};
use leadroute_projections::queries;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Every row of a read-model query as its response type.
pub fn all<R, V: From<R>>(rows: Vec<R>) -> Vec<V> {
    rows.into_iter().map(V::from).collect()
}

/// One lead in a partner inbox.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InboxItem {
    /// The lead.
    pub lead_id: Uuid,
    /// `offered`, `accepted` or `claimable`.
    pub state: String,
    /// When the offer lapses unless accepted (offered leads with a deadline).
    pub deadline: Option<DateTime<Utc>>,
    /// Seconds left until `deadline` (negative once passed, until the recall lands).
    pub seconds_left: Option<f64>,
    /// The queue it is claimable from (claimable leads only).
    pub queue_id: Option<Uuid>,
    /// Lead fields (all of them; partner-visible filtering happens at the API edge).
    pub fields: Value,
    /// When upstream sent it.
    pub received_at: DateTime<Utc>,
    /// Seconds since it reached its current owner.
    pub age_seconds: f64,
}

impl From<queries::InboxItem> for InboxItem {
    fn from(row: queries::InboxItem) -> Self {
        InboxItem {
            lead_id: row.lead_id,
            state: row.state,
            deadline: row.deadline,
            seconds_left: row.seconds_left,
            queue_id: row.queue_id,
            fields: row.fields,
            received_at: row.received_at,
            age_seconds: row.age_seconds,
        }
    }
}

/// One unclaimed lead of a queue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueuedLead {
    /// The lead.
    pub lead_id: Uuid,
    /// Lead fields.
    pub fields: Value,
    /// When upstream sent it.
    pub received_at: DateTime<Utc>,
    /// Seconds since it entered the queue.
    pub age_seconds: f64,
}

impl From<queries::QueuedLead> for QueuedLead {
    fn from(row: queries::QueuedLead) -> Self {
        QueuedLead {
            lead_id: row.lead_id,
            fields: row.fields,
            received_at: row.received_at,
            age_seconds: row.age_seconds,
        }
    }
}

/// One owner change of a lead.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OwnerChangeRow {
    /// The lead's event sequence number.
    pub sequence: i64,
    /// Previous owner kind (`None`: unassigned; `outside_territory` when a channel manager
    /// may not see it).
    pub from_kind: Option<String>,
    /// Previous owner id.
    pub from_id: Option<Uuid>,
    /// New owner kind (`outside_territory` when a channel manager may not see it); none
    /// when a decline or a lapse left the lead to nobody.
    pub to_kind: Option<String>,
    /// New owner id (none when hidden).
    pub to_id: Option<Uuid>,
    /// Who made the change.
    pub actor: Value,
    /// Why: `manual`, `enqueue`, `claim`, `rule`, `rerun`, `bulk`, `import`, `declined`
    /// or `lapsed`.
    pub cause: String,
    /// The bulk operation that made the change (cause `bulk`).
    pub operation_id: Option<Uuid>,
    /// The event that recorded it.
    pub event_type: String,
    /// When.
    pub changed_at: DateTime<Utc>,
}

impl From<queries::OwnerChangeRow> for OwnerChangeRow {
    fn from(row: queries::OwnerChangeRow) -> Self {
        OwnerChangeRow {
            sequence: row.sequence,
            from_kind: row.from_kind,
            from_id: row.from_id,
            to_kind: row.to_kind,
            to_id: row.to_id,
            actor: row.actor,
            cause: row.cause,
            operation_id: row.operation_id,
            event_type: row.event_type,
            changed_at: row.changed_at,
        }
    }
}

/// An owner as stored: kind and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OwnerRef {
    /// `partner_user`, `queue` or `internal_user` (`outside_territory` when a channel
    /// manager may not see it).
    pub kind: String,
    /// Its id (none when hidden).
    pub id: Option<Uuid>,
}

impl From<queries::OwnerRef> for OwnerRef {
    fn from(row: queries::OwnerRef) -> Self {
        OwnerRef {
            kind: row.kind,
            id: row.id,
        }
    }
}

/// A partner account in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DirectoryAccount {
    /// Its id.
    pub account_id: Uuid,
    /// Name.
    pub name: String,
    /// Owning channel manager.
    pub channel_manager: Uuid,
    /// Territory.
    pub territory: String,
    /// Tier.
    pub tier: String,
    /// An active partner.
    pub active: bool,
}

impl From<queries::DirectoryAccount> for DirectoryAccount {
    fn from(row: queries::DirectoryAccount) -> Self {
        DirectoryAccount {
            account_id: row.account_id,
            name: row.name,
            channel_manager: row.channel_manager,
            territory: row.territory,
            tier: row.tier,
            active: row.active,
        }
    }
}

/// A partner user in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DirectoryUser {
    /// Its id.
    pub user_id: Uuid,
    /// Its partner account.
    pub account_id: Uuid,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Active partner user.
    pub active: bool,
    /// Signed in at least once.
    pub signed_in_once: bool,
    /// Auto-assignment paused.
    pub paused: bool,
    /// Its account is an active partner.
    pub account_active: bool,
    /// May receive leads automatically: active, signed in once, account active, not paused
    /// (or the pause has ended).
    pub assignable: bool,
}

impl From<queries::DirectoryUser> for DirectoryUser {
    fn from(row: queries::DirectoryUser) -> Self {
        DirectoryUser {
            user_id: row.user_id,
            account_id: row.account_id,
            name: row.name,
            email: row.email,
            active: row.active,
            signed_in_once: row.signed_in_once,
            paused: row.paused,
            account_active: row.account_active,
            assignable: row.assignable,
        }
    }
}

/// A lead in a channel manager's view.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ManagedLead {
    /// The lead.
    pub lead_id: Uuid,
    /// `partner_user` or `queue`.
    pub owner_kind: String,
    /// The owner.
    pub owner_id: Uuid,
    /// Inbox status.
    pub status: String,
    /// When upstream sent it.
    pub received_at: DateTime<Utc>,
}

impl From<queries::ManagedLead> for ManagedLead {
    fn from(row: queries::ManagedLead) -> Self {
        ManagedLead {
            lead_id: row.lead_id,
            owner_kind: row.owner_kind,
            owner_id: row.owner_id,
            status: row.status,
            received_at: row.received_at,
        }
    }
}

/// A queue and its members.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueueRow {
    /// The queue.
    pub queue_id: Uuid,
    /// Its name.
    pub name: String,
    /// Member partner users.
    pub partner_users: Vec<Uuid>,
    /// Member partner accounts (all their users are members).
    pub partner_accounts: Vec<Uuid>,
}

impl From<queries::QueueRow> for QueueRow {
    fn from(row: queries::QueueRow) -> Self {
        QueueRow {
            queue_id: row.queue_id,
            name: row.name,
            partner_users: row.partner_users,
            partner_accounts: row.partner_accounts,
        }
    }
}

/// An email the mailer sent or is sending.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NotificationRow {
    /// The event that triggered it.
    pub event_id: Uuid,
    /// Recipient address.
    pub recipient: String,
    /// `access` or `assignment`.
    pub kind: String,
    /// The template version rendered (0: the built-in default).
    pub template_version: i32,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body.
    pub html_body: Option<String>,
    /// `log` or `smtp`.
    pub transport: String,
    /// `sending` or `sent`.
    pub status: String,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// When it was first attempted.
    pub created_at: DateTime<Utc>,
    /// When the transport accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<queries::NotificationRow> for NotificationRow {
    fn from(row: queries::NotificationRow) -> Self {
        NotificationRow {
            event_id: row.event_id,
            recipient: row.recipient,
            kind: row.kind,
            template_version: row.template_version,
            subject: row.subject,
            text_body: row.text_body,
            html_body: row.html_body,
            transport: row.transport,
            status: row.status,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

/// A lead held as a possible duplicate (`possible_duplicate`), until an admin or the owning
/// channel manager resolves it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HeldLead {
    /// The held lead.
    pub lead_id: Uuid,
    /// Its fields.
    pub fields: Value,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The open lead it matches.
    pub duplicate_of: Uuid,
    /// That lead's owner kind (`partner_user` or `queue`).
    pub owner_kind: Option<String>,
    /// That lead's owner.
    pub owner_id: Option<Uuid>,
}

impl From<queries::HeldLead> for HeldLead {
    fn from(row: queries::HeldLead) -> Self {
        HeldLead {
            lead_id: row.lead_id,
            fields: row.fields,
            received_at: row.received_at,
            duplicate_of: row.held_of,
            owner_kind: row.owner_kind,
            owner_id: row.owner_id,
        }
    }
}
