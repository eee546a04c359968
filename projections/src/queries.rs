//! Read-model queries: partner inbox, queue view, ownership history and owner at time T,
//! partner directory, channel-manager view. Every query is scoped to one org; a partner
//! user's inbox holds only their own leads and those claimable from their queues.
//!
//! Reads only: nothing here writes.

use crate::projectors::leads::status;
use crate::projectors::owner_columns;
use chrono::{DateTime, Utc};
use leadroute_domain::bulk::LeadFilter;
use leadroute_domain::ids::{
    InternalUserId, LeadId, OrgId, Owner, PartnerAccountId, PartnerUserId, QueueId,
};
use leadroute_domain::partner_user::Standing;
use leadroute_domain::routing::criteria::Criterion;
use leadroute_domain::routing::{judge, Verdict};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// Inbox state of a lead claimable from one of the user's queues.
pub const CLAIMABLE: &str = "claimable";

/// Filters and paging of the partner inbox.
#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    /// Only this state: `offered`, `accepted` or `claimable`.
    pub state: Option<String>,
    /// Only leads received at or after this time.
    pub received_since: Option<DateTime<Utc>>,
    /// Page after this item (newest first): the last item's `(received_at, lead_id)`.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// Page size (at most 500).
    pub limit: i64,
}

/// One lead in a partner inbox.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// The inbox of partner user `user` of `org`, newest first: the leads they own, and the
/// leads of their queues (direct membership or through their account) when they may claim
/// (active, signed in once, account active).
pub async fn partner_inbox(
    pool: &PgPool,
    org: OrgId,
    user: PartnerUserId,
    query: &InboxQuery,
) -> Result<Vec<InboxItem>, sqlx::Error> {
    let (after_at, after_id) = query
        .after
        .map_or((None, None), |(at, id)| (Some(at), Some(id)));
    sqlx::query_as(
        "WITH me AS (
                  SELECT u.user_id, u.account_id, (u.active AND u.signed_in_once AND a.active) AS can_claim
                    FROM rm_partner_users u JOIN rm_partner_accounts a USING (account_id)
                   WHERE u.user_id = $2 AND u.org_id = $1),
              owners AS (
                  SELECT 'partner_user' AS owner_kind, user_id AS owner_id FROM me
                  UNION
                  -- claimable leads only for members who may claim (pausing does not matter)
                  SELECT 'queue', m.queue_id FROM rm_queue_members m JOIN me
                      ON (m.member_kind = 'partner_user' AND m.member_id = me.user_id)
                      OR (m.member_kind = 'partner_account' AND m.member_id = me.account_id)
                   WHERE me.can_claim)
         SELECT l.lead_id, l.state, l.queue_id, l.fields, l.received_at, l.offer_deadline AS deadline,
                extract(epoch FROM l.offer_deadline - clock_timestamp())::float8 AS seconds_left,
                extract(epoch FROM clock_timestamp() - l.owner_since)::float8 AS age_seconds
           FROM owners o
           CROSS JOIN LATERAL (
               SELECT lead_id, fields, received_at, owner_since, offer_deadline,
                      CASE WHEN owner_kind = 'queue' THEN $3 ELSE status END AS state,
                      CASE WHEN owner_kind = 'queue' THEN owner_id END AS queue_id
                 FROM rm_leads
                WHERE owner_id = o.owner_id AND owner_kind = o.owner_kind AND org_id = $1
                  AND ($4::text IS NULL OR (CASE WHEN owner_kind = 'queue' THEN $3 ELSE status END) = $4)
                  AND ($5::timestamptz IS NULL OR received_at >= $5)
                  AND ($6::timestamptz IS NULL OR (received_at, lead_id) < ($6, $7))
                ORDER BY received_at DESC, lead_id DESC
                LIMIT $8) l
          ORDER BY l.received_at DESC, l.lead_id DESC
          LIMIT $8",
    )
    .bind(org.0)
    .bind(user.0)
    .bind(CLAIMABLE)
    .bind(query.state.as_deref().map(status::stored))
    .bind(query.received_since)
    .bind(after_at)
    .bind(after_id)
    .bind(query.limit.clamp(1, 500))
    .fetch_all(pool)
    .await
}

/// How many leads of each inbox state partner user `user` has: `(offered, accepted,
/// claimable)`, counted like [`partner_inbox`] lists them.
pub async fn inbox_counts(
    pool: &PgPool,
    org: OrgId,
    user: PartnerUserId,
) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "WITH me AS (
                  SELECT u.user_id, u.account_id, (u.active AND u.signed_in_once AND a.active) AS can_claim
                    FROM rm_partner_users u JOIN rm_partner_accounts a USING (account_id)
                   WHERE u.user_id = $2 AND u.org_id = $1),
              queues AS (
                  SELECT m.queue_id FROM rm_queue_members m JOIN me
                      ON (m.member_kind = 'partner_user' AND m.member_id = me.user_id)
                      OR (m.member_kind = 'partner_account' AND m.member_id = me.account_id)
                   WHERE me.can_claim)
         SELECT count(*) FILTER (WHERE owner_kind = 'partner_user' AND status = $3),
                count(*) FILTER (WHERE owner_kind = 'partner_user' AND status = $4),
                count(*) FILTER (WHERE owner_kind = 'queue')
           FROM rm_leads
          WHERE org_id = $1
            AND ((owner_kind = 'partner_user' AND owner_id = $2)
                 OR (owner_kind = 'queue' AND owner_id IN (SELECT queue_id FROM queues)))",
    )
    .bind(org.0)
    .bind(user.0)
    .bind(status::OFFERED)
    .bind(status::ACCEPTED)
    .fetch_one(pool)
    .await
}

/// The queues partner user `user` belongs to (directly or through their account), with
/// their names.
pub async fn member_queues(
    pool: &PgPool,
    org: OrgId,
    user: PartnerUserId,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT q.queue_id, q.name
           FROM rm_partner_users u
           JOIN rm_queue_members m
             ON (m.member_kind = 'partner_user' AND m.member_id = u.user_id)
             OR (m.member_kind = 'partner_account' AND m.member_id = u.account_id)
           JOIN rm_queues q ON q.queue_id = m.queue_id AND q.org_id = u.org_id
          WHERE u.user_id = $2 AND u.org_id = $1
          ORDER BY q.name, q.queue_id",
    )
    .bind(org.0)
    .bind(user.0)
    .fetch_all(pool)
    .await
}

/// One unclaimed lead of a queue.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// Unclaimed leads of `queue`, oldest in the queue first.
pub async fn queue_view(
    pool: &PgPool,
    org: OrgId,
    queue: QueueId,
    limit: i64,
) -> Result<Vec<QueuedLead>, sqlx::Error> {
    sqlx::query_as(
        "SELECT lead_id, fields, received_at,
                extract(epoch FROM clock_timestamp() - owner_since)::float8 AS age_seconds
           FROM rm_leads
          WHERE owner_id = $2 AND owner_kind = 'queue' AND org_id = $1 AND status = $3
          ORDER BY owner_since, lead_id
          LIMIT $4",
    )
    .bind(org.0)
    .bind(queue.0)
    .bind(status::QUEUED)
    .bind(limit.clamp(1, 500))
    .fetch_all(pool)
    .await
}

/// One owner change of a lead.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// Every owner change of `lead` in order; `None` when the lead is not in `org`.
pub async fn ownership_history(
    pool: &PgPool,
    org: OrgId,
    lead: LeadId,
) -> Result<Option<Vec<OwnerChangeRow>>, sqlx::Error> {
    if !lead_in_org(pool, org, lead).await? {
        return Ok(None);
    }
    let rows = sqlx::query_as(
        "SELECT sequence, from_kind, from_id, to_kind, to_id, actor, cause, operation_id,
                event_type, changed_at
           FROM rm_ownership_history WHERE lead_id = $1 ORDER BY sequence",
    )
    .bind(lead.0)
    .fetch_all(pool)
    .await?;
    Ok(Some(rows))
}

/// An owner as stored: kind and id.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OwnerRef {
    /// `partner_user`, `queue` or `internal_user` (`outside_territory` when a channel
    /// manager may not see it).
    pub kind: String,
    /// Its id (none when hidden).
    pub id: Option<Uuid>,
}

/// What a channel manager sees of an owner outside their territory.
pub const OUTSIDE_TERRITORY: &str = "outside_territory";

/// The owner of `lead` at time `at`: `None` when the lead is not in `org`, `Some(None)`
/// when it had no owner then.
pub async fn owner_at(
    pool: &PgPool,
    org: OrgId,
    lead: LeadId,
    at: DateTime<Utc>,
) -> Result<Option<Option<OwnerRef>>, sqlx::Error> {
    if !lead_in_org(pool, org, lead).await? {
        return Ok(None);
    }
    let owner = sqlx::query_as(
        // A decline or a lapse left the lead to nobody (no `to_kind`).
        "SELECT kind, id FROM (
             SELECT to_kind AS kind, to_id AS id FROM rm_ownership_history
              WHERE lead_id = $1 AND changed_at <= $2 ORDER BY changed_at DESC, sequence DESC LIMIT 1
         ) latest WHERE kind IS NOT NULL",
    )
    .bind(lead.0)
    .bind(at)
    .fetch_optional(pool)
    .await?;
    Ok(Some(owner))
}

async fn lead_in_org(pool: &PgPool, org: OrgId, lead: LeadId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rm_leads WHERE lead_id = $1 AND org_id = $2)")
        .bind(lead.0)
        .bind(org.0)
        .fetch_one(pool)
        .await
}

/// A partner account in the directory.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// The partner accounts of `org`, by name.
pub async fn partner_accounts(
    pool: &PgPool,
    org: OrgId,
) -> Result<Vec<DirectoryAccount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, name, channel_manager, territory, tier, active
           FROM rm_partner_accounts WHERE org_id = $1 ORDER BY name, account_id",
    )
    .bind(org.0)
    .fetch_all(pool)
    .await
}

/// A partner user in the directory.
#[derive(Debug, Clone, PartialEq)]
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

/// A directory row with what judging it needs.
#[derive(FromRow)]
struct DirectoryRow {
    user_id: Uuid,
    account_id: Uuid,
    name: String,
    email: String,
    active: bool,
    signed_in_once: bool,
    paused: bool,
    paused_until: Option<DateTime<Utc>>,
    account_active: bool,
}

/// The partner users of `org`, by name; with `assignable_only`, only those offered when
/// picking an owner. Whether a user is assignable is `routing::judge`'s verdict on the
/// row's standing, now: the rule the router applies.
pub async fn partner_users(
    pool: &PgPool,
    org: OrgId,
    assignable_only: bool,
) -> Result<Vec<DirectoryUser>, sqlx::Error> {
    let rows: Vec<DirectoryRow> = sqlx::query_as(
        "SELECT u.user_id, u.account_id, u.name, u.email, u.active, u.signed_in_once, u.paused,
                u.paused_until, a.active AS account_active
           FROM rm_partner_users u JOIN rm_partner_accounts a USING (account_id)
          WHERE u.org_id = $1
          ORDER BY u.name, u.user_id",
    )
    .bind(org.0)
    .fetch_all(pool)
    .await?;
    let now = Utc::now();
    Ok(rows
        .into_iter()
        .map(|row| {
            let standing = Standing {
                active: row.active,
                signed_in_once: row.signed_in_once,
                account_active: row.account_active,
                paused: row.paused,
                paused_until: row.paused_until,
            };
            DirectoryUser {
                user_id: row.user_id,
                account_id: row.account_id,
                name: row.name,
                email: row.email,
                active: row.active,
                signed_in_once: row.signed_in_once,
                paused: row.paused,
                account_active: row.account_active,
                assignable: judge(&standing, now) == Verdict::Assignable,
            }
        })
        .filter(|user| user.assignable || !assignable_only)
        .collect())
}

/// A lead in a channel manager's view.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// Leads owned by the partner users, and by the queues with members, of the partner
/// accounts `manager` owns; newest first.
pub async fn channel_manager_leads(
    pool: &PgPool,
    org: OrgId,
    manager: InternalUserId,
    limit: i64,
) -> Result<Vec<ManagedLead>, sqlx::Error> {
    sqlx::query_as(
        "WITH accounts AS (SELECT account_id FROM rm_partner_accounts WHERE org_id = $1 AND channel_manager = $2),
              users AS (SELECT user_id FROM rm_partner_users WHERE account_id IN (SELECT account_id FROM accounts)),
              owners AS (
                  SELECT 'partner_user' AS owner_kind, user_id AS owner_id FROM users
                  UNION
                  SELECT 'queue', queue_id FROM rm_queue_members
                   WHERE (member_kind = 'partner_account' AND member_id IN (SELECT account_id FROM accounts))
                      OR (member_kind = 'partner_user' AND member_id IN (SELECT user_id FROM users)))
         SELECT l.lead_id, l.owner_kind, l.owner_id, l.status, l.received_at
           FROM owners o
           JOIN rm_leads l ON l.owner_id = o.owner_id AND l.owner_kind = o.owner_kind AND l.org_id = $1
          ORDER BY l.received_at DESC, l.lead_id DESC
          LIMIT $3",
    )
    .bind(org.0)
    .bind(manager.0)
    .bind(limit.clamp(1, 5000))
    .fetch_all(pool)
    .await
}

/// A queue and its members.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// The queues of `org` by name; only those `member` belongs to (directly or through its
/// account) when given.
pub async fn queues(
    pool: &PgPool,
    org: OrgId,
    scope: QueueScope,
) -> Result<Vec<QueueRow>, sqlx::Error> {
    let (user, account, manager) = match scope {
        QueueScope::Org => (None, None, None),
        QueueScope::Member(u, a) => (Some(u.0), Some(a.0), None),
        QueueScope::Territory(m) => (None, None, Some(m.0)),
    };
    sqlx::query_as(
        "WITH accounts AS (SELECT account_id FROM rm_partner_accounts WHERE org_id = $1 AND channel_manager = $4),
              users AS (SELECT user_id FROM rm_partner_users WHERE account_id IN (SELECT account_id FROM accounts))
         SELECT q.queue_id, q.name,
                coalesce(array_agg(m.member_id) FILTER (WHERE m.member_kind = 'partner_user'), '{}') AS partner_users,
                coalesce(array_agg(m.member_id) FILTER (WHERE m.member_kind = 'partner_account'), '{}') AS partner_accounts
           FROM rm_queues q LEFT JOIN rm_queue_members m USING (queue_id)
          WHERE q.org_id = $1
          GROUP BY q.queue_id, q.name
         HAVING ($2::uuid IS NULL AND $4::uuid IS NULL)
             OR bool_or(m.member_kind = 'partner_user' AND m.member_id = $2)
             OR bool_or(m.member_kind = 'partner_account' AND m.member_id = $3)
             OR bool_or(m.member_kind = 'partner_user' AND m.member_id IN (SELECT user_id FROM users))
             OR bool_or(m.member_kind = 'partner_account' AND m.member_id IN (SELECT account_id FROM accounts))
          ORDER BY q.name, q.queue_id",
    )
    .bind(org.0)
    .bind(user)
    .bind(account)
    .bind(manager)
    .fetch_all(pool)
    .await
}

/// Which queues of an org a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueScope {
    /// Every queue (admins).
    Org,
    /// The queues with this partner user, or their account, as a member.
    Member(PartnerUserId, PartnerAccountId),
    /// The queues in this channel manager's territory: with a user or account of an
    /// account they own as a member.
    Territory(InternalUserId),
}

/// Whether an owner (`partner_user` or `queue`) lies in the territory of channel manager
/// `manager`: a user of an account they own, or a queue with such a user or account as member.
pub async fn in_manager_territory(
    pool: &PgPool,
    org: OrgId,
    manager: InternalUserId,
    owner: &Owner,
) -> Result<bool, sqlx::Error> {
    let (kind, id) = crate::projectors::owner_columns(owner);
    sqlx::query_scalar(
        "WITH accounts AS (SELECT account_id FROM rm_partner_accounts WHERE org_id = $1 AND channel_manager = $2),
              users AS (SELECT user_id FROM rm_partner_users WHERE account_id IN (SELECT account_id FROM accounts))
         SELECT CASE $3
                  WHEN 'partner_user' THEN $4 IN (SELECT user_id FROM users)
                  WHEN 'queue' THEN EXISTS (
                      SELECT 1 FROM rm_queue_members
                       WHERE queue_id = $4
                         AND ((member_kind = 'partner_account' AND member_id IN (SELECT account_id FROM accounts))
                           OR (member_kind = 'partner_user' AND member_id IN (SELECT user_id FROM users))))
                  ELSE false END",
    )
    .bind(org.0)
    .bind(manager.0)
    .bind(kind)
    .bind(id)
    .fetch_one(pool)
    .await
}

/// Every lead field name present in the leads of `org`, sorted (for the sharing review).
pub async fn lead_field_names(pool: &PgPool, org: OrgId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT k FROM rm_leads, jsonb_object_keys(fields) AS k WHERE org_id = $1 ORDER BY k",
    )
    .bind(org.0)
    .fetch_all(pool)
    .await
}

/// Leads of `org` received in `[from, to)`, oldest first, at most `limit`.
pub async fn leads_received_between(
    pool: &PgPool,
    org: OrgId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT lead_id FROM rm_leads WHERE org_id = $1 AND received_at >= $2 AND received_at < $3
          ORDER BY received_at, lead_id LIMIT $4",
    )
    .bind(org.0)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The active partner users of `account` in `org` (queue members through their account).
pub async fn account_users(
    pool: &PgPool,
    org: OrgId,
    account: PartnerAccountId,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM rm_partner_users WHERE org_id = $1 AND account_id = $2 AND active
          ORDER BY user_id",
    )
    .bind(org.0)
    .bind(account.0)
    .fetch_all(pool)
    .await
}

/// An email the mailer sent or is sending.
#[derive(Debug, Clone, PartialEq, FromRow)]
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

/// The emails of `org`, newest first.
pub async fn notifications(
    pool: &PgPool,
    org: OrgId,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, recipient, kind, template_version, subject, text_body, html_body, transport,
                status, last_error, created_at, sent_at
           FROM notifications WHERE org_id = $1 ORDER BY created_at DESC LIMIT $2",
    )
    .bind(org.0)
    .bind(limit.clamp(1, 500))
    .fetch_all(pool)
    .await
}

/// The leads of `org` a bulk reassignment's filter selects, oldest first. `within_accounts`
/// narrows them to leads owned by partner users of those accounts (a channel manager's
/// leads); `among` narrows them to the given lead ids. Field criteria are evaluated here, on
/// the projected field values, exactly as assignment rules evaluate them.
pub async fn bulk_selection(
    pool: &PgPool,
    org: OrgId,
    filter: &LeadFilter,
    within_accounts: Option<&[Uuid]>,
    among: Option<&[Uuid]>,
) -> Result<Vec<LeadId>, sqlx::Error> {
    let owner = filter.owner.as_ref().map(owner_columns);
    let rows: Vec<(Uuid, Value)> = sqlx::query_as(
        "SELECT l.lead_id, l.fields FROM rm_leads l
          WHERE l.org_id = $1
            AND ($2::text IS NULL OR (l.owner_kind = $2 AND l.owner_id = $3))
            AND ($4::uuid IS NULL OR (l.owner_kind = 'partner_user' AND l.owner_id IN
                    (SELECT user_id FROM rm_partner_users WHERE org_id = $1 AND account_id = $4)))
            AND ($5::text IS NULL OR l.status = $5)
            AND ($6::timestamptz IS NULL OR l.received_at >= $6)
            AND ($7::timestamptz IS NULL OR l.received_at < $7)
            AND ($8::uuid[] IS NULL OR (l.owner_kind = 'partner_user' AND l.owner_id IN
                    (SELECT user_id FROM rm_partner_users WHERE org_id = $1 AND account_id = ANY($8))))
            AND ($9::uuid[] IS NULL OR l.lead_id = ANY($9))
          ORDER BY l.received_at, l.lead_id",
    )
    .bind(org.0)
    .bind(owner.map(|(kind, _)| kind))
    .bind(owner.map(|(_, id)| id))
    .bind(filter.partner_account_id.map(|a| a.0))
    .bind(filter.status.as_deref().map(status::stored))
    .bind(filter.received_after)
    .bind(filter.received_before)
    .bind(within_accounts)
    .bind(among)
    .fetch_all(pool)
    .await?;
    let criteria: Vec<Criterion> = filter.fields.iter().map(Criterion::normalized).collect();
    Ok(rows
        .into_iter()
        .filter(|(_, fields)| criteria.iter().all(|c| c.matches(fields.get(c.field()))))
        .map(|(id, _)| LeadId(id))
        .collect())
}

/// An offer timer that is due.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct DueTimer {
    /// The lead.
    pub lead_id: Uuid,
    /// Its org.
    pub org_id: Uuid,
    /// The offer's deadline (the lead checks it is still the offer's).
    pub deadline: DateTime<Utc>,
    /// The reminder is due (the deadline is not yet); else the deadline passed.
    pub remind: bool,
    /// When it came due (the reminder time or the deadline): the paging key, with the
    /// lead and `remind`.
    pub due: DateTime<Utc>,
}

/// Up to `limit` offer timers due at `now`, the most overdue first, after `after` (the
/// last one of the previous page): deadlines passed, and reminders whose time came before
/// their deadline.
pub async fn due_timers(
    pool: &PgPool,
    now: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid, bool)>,
    limit: i64,
) -> Result<Vec<DueTimer>, sqlx::Error> {
    let (after_due, after_lead, after_remind) =
        after.map_or((None, None, None), |(d, l, r)| (Some(d), Some(l), Some(r)));
    sqlx::query_as(
        "SELECT lead_id, org_id, deadline, remind, due FROM (
             SELECT lead_id, org_id, deadline, false AS remind, deadline AS due
               FROM rm_offer_timers WHERE deadline <= $1
             UNION ALL
             SELECT lead_id, org_id, deadline, true, remind_at
               FROM rm_offer_timers WHERE remind_at <= $1 AND deadline > $1
         ) due
          WHERE $3::timestamptz IS NULL OR (due, lead_id, remind) > ($3, $4, $5)
          ORDER BY due, lead_id, remind LIMIT $2",
    )
    .bind(now)
    .bind(limit.clamp(1, 10_000))
    .bind(after_due)
    .bind(after_lead)
    .bind(after_remind)
    .fetch_all(pool)
    .await
}

/// For each new lead of `org` (with the `(kind, value)` keys it is looked up by), the
/// open lead a partner owns that holds one of those values in a field `fields` names for
/// that kind (`(kind, field)`), the earliest received: `lead -> (that lead, owner kind,
/// owner id)`. Found through the `rm_lead_keys` index.
pub async fn duplicates(
    pool: &PgPool,
    org: OrgId,
    fields: &[(&str, &str)],
    leads: &[(Uuid, Vec<(&str, String)>)],
) -> Result<Vec<(Uuid, Uuid, String, Uuid)>, sqlx::Error> {
    let (mut ids, mut kinds, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (lead, keys) in leads {
        for (kind, value) in keys {
            ids.push(*lead);
            kinds.push(*kind);
            values.push(value.as_str());
        }
    }
    if ids.is_empty() || fields.is_empty() {
        return Ok(vec![]);
    }
    let (field_kinds, field_names): (Vec<&str>, Vec<&str>) = fields.iter().copied().unzip();
    sqlx::query_as(
        // One index lookup per key (a nested loop whatever the table statistics say): the
        // cost follows the batch, not the number of leads.
        "SELECT DISTINCT ON (q.lead_id) q.lead_id, m.lead_id, m.owner_kind, m.owner_id
           FROM unnest($2::uuid[], $3::text[], $4::text[]) AS q(lead_id, kind, value)
           CROSS JOIN LATERAL (
               SELECT l.lead_id, l.owner_kind, l.owner_id, l.received_at
                 FROM rm_lead_keys k
                 JOIN rm_leads l ON l.lead_id = k.lead_id
                WHERE k.org_id = $1 AND k.kind = q.kind AND k.value = q.value
                  AND k.lead_id <> q.lead_id
                  AND (k.kind, k.field) IN (SELECT * FROM unnest($5::text[], $6::text[]))
                  AND l.org_id = $1 AND l.owner_kind IN ('partner_user', 'queue')
                  AND lower(btrim(coalesce(l.fields->>'status', ''))) <> ALL ($7)
                ORDER BY l.received_at, l.lead_id
                LIMIT 1) m
          ORDER BY q.lead_id, m.received_at, m.lead_id",
    )
    .bind(org.0)
    .bind(&ids)
    .bind(&kinds)
    .bind(&values)
    .bind(&field_kinds)
    .bind(&field_names)
    .bind(leadroute_domain::routing::CLOSED_STATUSES.as_slice())
    .fetch_all(pool)
    .await
}

/// A lead held as a possible duplicate.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct HeldLead {
    /// The held lead.
    pub lead_id: Uuid,
    /// Its fields.
    pub fields: Value,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The open lead it matches.
    pub held_of: Uuid,
    /// That lead's owner kind (`partner_user` or `queue`; none if it has none now).
    pub owner_kind: Option<String>,
    /// That lead's owner.
    pub owner_id: Option<Uuid>,
}

/// Up to `limit` leads of `org` held as possible duplicates, oldest first, with the lead
/// each matches and that lead's current owner: every one, or with `manager` those whose
/// matching owner is in that channel manager's territory.
pub async fn held_leads(
    pool: &PgPool,
    org: OrgId,
    manager: Option<InternalUserId>,
    limit: i64,
) -> Result<Vec<HeldLead>, sqlx::Error> {
    sqlx::query_as(
        "WITH accounts AS (SELECT account_id FROM rm_partner_accounts WHERE org_id = $1 AND channel_manager = $2),
              users AS (SELECT user_id FROM rm_partner_users WHERE account_id IN (SELECT account_id FROM accounts)),
              owners AS (
                  SELECT 'partner_user' AS owner_kind, user_id AS owner_id FROM users
                  UNION
                  SELECT 'queue', queue_id FROM rm_queue_members
                   WHERE (member_kind = 'partner_account' AND member_id IN (SELECT account_id FROM accounts))
                      OR (member_kind = 'partner_user' AND member_id IN (SELECT user_id FROM users)))
         SELECT h.lead_id, h.fields, h.received_at, h.held_of, m.owner_kind, m.owner_id
           FROM rm_leads h LEFT JOIN rm_leads m ON m.lead_id = h.held_of
          WHERE h.org_id = $1 AND h.status = $3
            AND ($2::uuid IS NULL
                 OR EXISTS (SELECT 1 FROM owners o WHERE o.owner_kind = m.owner_kind AND o.owner_id = m.owner_id))
          ORDER BY h.received_at, h.lead_id
          LIMIT $4",
    )
    .bind(org.0)
    .bind(manager.map(|m| m.0))
    .bind(status::HELD)
    .bind(limit.clamp(1, 5000))
    .fetch_all(pool)
    .await
}

/// An offer that lapses soon.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct LapsingOffer {
    /// The lead.
    pub lead_id: Uuid,
    /// The partner user it is offered to.
    pub user_id: Uuid,
    /// Their partner account.
    pub account_id: Option<Uuid>,
    /// When it lapses.
    pub deadline: DateTime<Utc>,
    /// Seconds left (negative while the recall is on its way).
    pub seconds_left: f64,
}

/// Pending offers of `org` that lapse within `within_seconds`, soonest first: of the
/// partner accounts `manager` owns, or of every account when `None`.
pub async fn lapsing_offers(
    pool: &PgPool,
    org: OrgId,
    manager: Option<InternalUserId>,
    within_seconds: i64,
    limit: i64,
) -> Result<Vec<LapsingOffer>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.lead_id, t.user_id, u.account_id, t.deadline,
                extract(epoch FROM t.deadline - clock_timestamp())::float8 AS seconds_left
           FROM rm_offer_timers t
           LEFT JOIN rm_partner_users u ON u.user_id = t.user_id
           LEFT JOIN rm_partner_accounts a ON a.account_id = u.account_id
          WHERE t.org_id = $1 AND t.deadline <= clock_timestamp() + make_interval(secs => $3)
            AND ($2::uuid IS NULL OR a.channel_manager = $2)
          ORDER BY t.deadline, t.lead_id
          LIMIT $4",
    )
    .bind(org.0)
    .bind(manager.map(|m| m.0))
    .bind(within_seconds as f64)
    .bind(limit.clamp(1, 5000))
    .fetch_all(pool)
    .await
}

/// How a partner account answers its offers.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AccountAcceptance {
    /// The partner account.
    pub account_id: Uuid,
    /// Its name.
    pub name: String,
    /// Offers made to its users.
    pub offers: i64,
    /// Of those, accepted.
    pub accepted: i64,
    /// Declined.
    pub declined: i64,
    /// Recalled at their deadline.
    pub lapsed: i64,
    /// Still open.
    pub pending: i64,
    /// Accepted of the answered ones (accepted, declined, lapsed); none before any answer.
    pub acceptance_rate: Option<f64>,
    /// Median seconds from offer to acceptance.
    pub median_seconds_to_accept: Option<f64>,
}

/// Acceptance per partner account of `org` (those `manager` owns, or every one when
/// `None`), from the offers made to their users since `since`.
pub async fn acceptance(
    pool: &PgPool,
    org: OrgId,
    manager: Option<InternalUserId>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<AccountAcceptance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.account_id, a.name,
                count(o.lead_id) AS offers,
                count(*) FILTER (WHERE o.outcome = 'accepted') AS accepted,
                count(*) FILTER (WHERE o.outcome = 'declined') AS declined,
                count(*) FILTER (WHERE o.outcome = 'lapsed') AS lapsed,
                count(*) FILTER (WHERE o.outcome = 'pending') AS pending,
                (count(*) FILTER (WHERE o.outcome = 'accepted'))::float8
                    / nullif(count(*) FILTER (WHERE o.outcome IN ('accepted', 'declined', 'lapsed')), 0)
                    AS acceptance_rate,
                percentile_cont(0.5) WITHIN GROUP (
                    ORDER BY extract(epoch FROM o.answered_at - o.offered_at))
                    FILTER (WHERE o.outcome = 'accepted') AS median_seconds_to_accept
           FROM rm_partner_accounts a
           JOIN rm_partner_users u ON u.account_id = a.account_id
           JOIN rm_offers o ON o.user_id = u.user_id AND o.org_id = $1
          WHERE a.org_id = $1 AND ($2::uuid IS NULL OR a.channel_manager = $2)
            AND ($3::timestamptz IS NULL OR o.offered_at >= $3)
          GROUP BY a.account_id, a.name
          ORDER BY a.name, a.account_id",
    )
    .bind(org.0)
    .bind(manager.map(|m| m.0))
    .bind(since)
    .fetch_all(pool)
    .await
}
