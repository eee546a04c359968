//! Demo data for `leadroute up --demo`: one org with PRM enabled, two partner accounts,
//! partner users in every assignability state, a queue, and leads owned in every way.
//!
//! Ids are fixed (UUID v5 of a name) and every step tolerates having been done before, so
//! seeding twice changes nothing. [`credentials`] then issues fresh demo API keys (the
//! previous ones are revoked) and sets the demo partner users' password through their
//! invitation links, so every call of the README can be tried.

use chrono::Duration;
use leadroute_app::access::{Access, AccessError, Role};
use leadroute_app::{AppError, CommandMeta, Commands, NewContact, NewLead, NewPartnerAccount};
use leadroute_domain::ids::{
    Actor, InternalUserId, InvitationId, LeadId, OrgId, Owner, PartnerAccountId, PartnerUserId,
    QueueId, UpstreamRef,
};
use leadroute_domain::org::{Org, SharingReviewAck, VisibleFields};
use leadroute_domain::queue::QueueMember;
use serde_json::json;
use uuid::Uuid;

const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6164_726f_7574_652d_6465_6d6f_0001);

/// The fixed id of a demo entity, by the name the seed gives it (an email, an account name).
pub fn demo_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&DEMO_NAMESPACE, name.as_bytes())
}

/// The demo org's id.
pub fn demo_org_id() -> OrgId {
    OrgId(demo_uuid("org"))
}

/// What seeding did.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// The demo org.
    pub org_id: OrgId,
    /// False when the demo org was already there.
    pub newly_seeded: bool,
}

/// The demo org's address in partner links (`/p/demo/`).
pub const DEMO_SLUG: &str = "demo";
/// The password of the demo partner users who can sign in ([`SIGNED_IN`]).
pub const DEMO_PASSWORD: &str = "demo-password-1";
/// Demo partner users who have signed in once (assignable) and have [`DEMO_PASSWORD`].
pub const SIGNED_IN: [&str; 2] = ["ada@northwind.example", "chloe@contoso.example"];
const ADMIN_KEY: &str = "demo admin key";
const MANAGER_KEY: &str = "demo channel manager key (EMEA)";

/// Credentials to try the demo with.
#[derive(Debug, Clone)]
pub struct DemoCredentials {
    /// The demo org.
    pub org_id: OrgId,
    /// A fresh admin API key.
    pub admin_key: String,
    /// A fresh API key of the channel manager who owns Northwind Resellers.
    pub manager_key: String,
    /// The partner portal's path (`/p/demo`; the org id for a demo seeded before slugs).
    pub portal: String,
}

/// Issue fresh demo API keys (revoking earlier demo keys) and give the [`SIGNED_IN`]
/// partner users [`DEMO_PASSWORD`] through their invitation links, once.
pub async fn credentials(access: &Access) -> Result<DemoCredentials, AccessError> {
    let org = demo_org_id();
    let mut keys = Vec::new();
    for (name, role, user) in [
        (ADMIN_KEY, Role::Admin, "admin"),
        (MANAGER_KEY, Role::ChannelManager, "manager-emea"),
    ] {
        access.revoke_api_keys_named(org, name).await?;
        let user = InternalUserId(demo_uuid(user));
        keys.push(access.create_api_key(org, name, role, user).await?.1);
    }
    for email in SIGNED_IN {
        let user = PartnerUserId(demo_uuid(email));
        match access.issue_invitation_link(org, user).await {
            Ok(link) => access.set_password(&link, DEMO_PASSWORD).await?,
            Err(AccessError::InvitationUsed) => {}
            Err(e) => return Err(e),
        }
    }
    let manager_key = keys.pop().expect("two keys");
    let slug = access.commands().state::<Org>(org, org).await?.slug;
    Ok(DemoCredentials {
        org_id: org,
        admin_key: keys.pop().expect("two keys"),
        manager_key,
        portal: format!("/p/{}", slug.unwrap_or_else(|| org.to_string())),
    })
}

/// Treat "already done" refusals as success, so every step can be repeated.
fn done_before(result: Result<leadroute_app::Committed, AppError>) -> Result<bool, AppError> {
    match result {
        Ok(committed) => Ok(committed.events > 0),
        Err(AppError::Refused { code, .. }) if code.contains("already") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Seed the demo org (idempotent).
pub async fn seed(commands: &Commands) -> Result<DemoSummary, AppError> {
    let org = demo_org_id();
    let admin = InternalUserId(demo_uuid("admin"));
    // A fresh time per command, as if an admin clicked through the flows.
    let meta = || CommandMeta::now(Actor::InternalUser(admin));
    let created = commands
        .create_org_with_slug(&meta(), org, "Demo Channel Co", Some(DEMO_SLUG))
        .await;
    let newly_seeded = done_before(created)?;
    let ack = SharingReviewAck {
        reviewed_by: admin,
        fields: VisibleFields {
            lead: ["company", "country", "industry", "employees"]
                .map(String::from)
                .into(),
            account: ["name", "tier"].map(String::from).into(),
        },
    };
    done_before(commands.enable_prm(&meta(), org, Some(ack)).await)?;

    let accounts = [
        ("Northwind Resellers", "EMEA", "gold", "manager-emea"),
        ("Contoso Distribution", "NA", "silver", "manager-na"),
    ];
    for (name, territory, tier, manager) in accounts {
        let new = NewPartnerAccount {
            account_id: PartnerAccountId(demo_uuid(name)),
            name: name.into(),
            channel_manager: InternalUserId(demo_uuid(manager)),
            territory: territory.into(),
            tier: tier.into(),
        };
        done_before(commands.create_partner_account(&meta(), org, &new).await)?;
        done_before(
            commands
                .activate_partner(&meta(), org, new.account_id)
                .await,
        )?;
    }

    // (name, email, account, activate, sign in)
    let users = [
        (
            "Ada Lovelace",
            "ada@northwind.example",
            "Northwind Resellers",
            true,
            true,
        ),
        (
            "Ben Okafor",
            "ben@northwind.example",
            "Northwind Resellers",
            true,
            false,
        ),
        (
            "Chloe Martin",
            "chloe@contoso.example",
            "Contoso Distribution",
            true,
            true,
        ),
        (
            "Dan Weiss",
            "dan@contoso.example",
            "Contoso Distribution",
            false,
            false,
        ),
    ];
    for (name, email, account, activate, sign_in) in users {
        let new = NewContact {
            user_id: PartnerUserId(demo_uuid(email)),
            account_id: PartnerAccountId(demo_uuid(account)),
            name: name.into(),
            email: email.into(),
        };
        done_before(commands.add_contact(&meta(), org, &new).await)?;
        if activate {
            let invitation = InvitationId(demo_uuid(&format!("invitation {email}")));
            let expires = meta().at + Duration::days(7);
            let activated = done_before(
                commands
                    .activate_partner_user(&meta(), org, new.user_id, invitation, expires)
                    .await,
            )?;
            if activated && sign_in {
                commands.record_sign_in(&meta(), org, new.user_id).await?;
            }
        }
    }

    let queue = QueueId(demo_uuid("queue emea"));
    done_before(
        commands
            .create_queue(&meta(), org, queue, "EMEA inbound")
            .await,
    )?;
    let northwind = QueueMember::PartnerAccount(PartnerAccountId(demo_uuid("Northwind Resellers")));
    done_before(
        commands
            .add_queue_member(&meta(), org, queue, northwind)
            .await,
    )?;

    seed_leads(commands, meta, org, queue).await?;
    Ok(DemoSummary {
        org_id: org,
        newly_seeded,
    })
}

async fn seed_leads(
    commands: &Commands,
    meta: impl Fn() -> CommandMeta,
    org: OrgId,
    queue: QueueId,
) -> Result<(), AppError> {
    let ada = PartnerUserId(demo_uuid("ada@northwind.example"));
    let chloe = PartnerUserId(demo_uuid("chloe@contoso.example"));
    let leads = [
        ("L-1001", "Globex", "DE", "manufacturing", 1200),
        ("L-1002", "Initech", "FR", "software", 80),
        ("L-1003", "Umbrella", "GB", "pharma", 5000),
        ("L-1004", "Hooli", "US", "software", 20000),
        ("L-1005", "Stark Industries", "DE", "manufacturing", 15000),
        ("L-1006", "Acme Corp", "US", "retail", 300),
    ];
    let mut ids: Vec<LeadId> = Vec::new();
    let mut fresh = true;
    for (upstream_id, company, country, industry, employees) in leads {
        let new = NewLead {
            upstream: UpstreamRef {
                system: "demo-crm".into(),
                lead_id: upstream_id.into(),
            },
            upstream_event_id: format!("{upstream_id}-created"),
            fields: [
                ("company", json!(company)),
                ("country", json!(country)),
                ("industry", json!(industry)),
                ("employees", json!(employees)),
                (
                    "email",
                    json!(format!(
                        "buyer@{}.example",
                        company.to_lowercase().replace(' ', "")
                    )),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            route: true,
            occurred_at: None,
            owner: None,
        };
        let (lead, committed) = commands.receive_lead(&meta(), org, &new).await?;
        fresh &= committed.events > 0;
        ids.push(lead);
    }
    if !fresh {
        // Seeded before: owners may have changed since; leave them.
        return Ok(());
    }
    for lead in [ids[0], ids[1], ids[4]] {
        done_before(commands.enqueue_lead(&meta(), org, lead, queue).await)?;
    }
    done_before(commands.claim_lead(&meta(), org, ids[4], queue, ada).await)?;
    done_before(
        commands
            .reassign_lead(&meta(), org, ids[2], Owner::PartnerUser(ada), true)
            .await,
    )?;
    done_before(
        commands
            .reassign_lead(&meta(), org, ids[3], Owner::PartnerUser(chloe), false)
            .await,
    )?;
    Ok(())
}
