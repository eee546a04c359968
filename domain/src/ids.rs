//! Typed identifiers and the small value types shared by every aggregate.
//!
//! Every id is a newtype over a UUID, parsed at the edge and never passed around as a bare
//! string. This module holds no behaviour beyond parsing and formatting.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id (v4).
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// An organisation (tenant): every other id lives inside exactly one org.
    OrgId
);
uuid_id!(
    /// A partner account (reseller, distributor) of an org.
    PartnerAccountId
);
uuid_id!(
    /// A contact of a partner account; the same id once activated as a partner user.
    PartnerUserId
);
uuid_id!(
    /// A partner queue whose members claim leads from it.
    QueueId
);
uuid_id!(
    /// A lead. Derived from the upstream system and lead id by [`LeadId::for_upstream`].
    LeadId
);
uuid_id!(
    /// An internal user of the org (admin, channel manager).
    InternalUserId
);
uuid_id!(
    /// The one-time set-password invitation sent when a partner user is activated.
    InvitationId
);
uuid_id!(
    /// A round-robin pool of partner users and queues.
    PoolId
);
uuid_id!(
    /// A bulk reassignment operation.
    BulkOperationId
);

/// Namespace for [`BulkOperationId::for_key`]; never change it: re-submissions depend on it.
const BULK_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6164_726f_7574_652d_6275_6c6b_0001);

impl BulkOperationId {
    /// The operation id of a submission with a client key (an HTTP `Idempotency-Key` or the
    /// CLI's `--key`): the same org, submitter and key always name the same operation, so
    /// a re-submission finds it instead of starting another.
    pub fn for_key(org: OrgId, submitter: &str, key: &str) -> Self {
        let name = format!("{org}\u{1f}{submitter}\u{1f}{key}");
        Self(Uuid::new_v5(&BULK_NAMESPACE, name.as_bytes()))
    }
}

/// Namespace for [`LeadId::for_upstream`]; never change it: stored lead ids depend on it.
const LEAD_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6164_726f_7574_652d_6c65_6164_0001);

impl LeadId {
    /// The lead id of an upstream lead: the same org, system and upstream id always give
    /// the same id, so a repeated or reordered upstream event finds its lead without a lookup.
    pub fn for_upstream(org: OrgId, upstream: &UpstreamRef) -> Self {
        let name = format!("{}\u{1f}{}\u{1f}{}", org, upstream.system, upstream.lead_id);
        Self(Uuid::new_v5(&LEAD_NAMESPACE, name.as_bytes()))
    }
}

/// Where a lead comes from: the upstream CRM and its own id for the lead.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpstreamRef {
    /// Name of the upstream system, e.g. `salesforce`.
    pub system: String,
    /// The upstream system's id of the lead.
    pub lead_id: String,
}

/// Who owns a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Owner {
    /// A partner user.
    PartnerUser(PartnerUserId),
    /// A partner queue; one of its members may claim the lead.
    Queue(QueueId),
    /// An internal user of the org.
    InternalUser(InternalUserId),
}

/// Who issued a command; recorded on every owner change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An internal user (admin, channel manager).
    InternalUser(InternalUserId),
    /// A partner user.
    PartnerUser(PartnerUserId),
    /// A part of leadroute itself or an integration, by name (`intake`, `router`, ...).
    System(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::InternalUser(id) => write!(f, "internal_user:{id}"),
            Actor::PartnerUser(id) => write!(f, "partner_user:{id}"),
            Actor::System(name) => write!(f, "system:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_id_is_stable_per_org_system_and_upstream_id() {
        let org = OrgId(Uuid::nil());
        let a = UpstreamRef {
            system: "sf".into(),
            lead_id: "00Q1".into(),
        };
        let b = UpstreamRef {
            system: "sf".into(),
            lead_id: "00Q2".into(),
        };
        assert_eq!(LeadId::for_upstream(org, &a), LeadId::for_upstream(org, &a));
        assert_ne!(LeadId::for_upstream(org, &a), LeadId::for_upstream(org, &b));
        let other_org = OrgId(Uuid::from_u128(1));
        assert_ne!(
            LeadId::for_upstream(org, &a),
            LeadId::for_upstream(other_org, &a)
        );
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = QueueId::new_random();
        assert_eq!(id.to_string().parse::<QueueId>().unwrap(), id);
        assert!("not-a-uuid".parse::<QueueId>().is_err());
    }
}
