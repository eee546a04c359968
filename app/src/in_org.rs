//! Aggregates that belong to one org once they exist: how each is named when missing, and
//! whether it is loaded from this process's cache.

use cqrs_es::Aggregate;
use leadroute_domain::bulk::BulkOperation;
use leadroute_domain::ids::OrgId;
use leadroute_domain::lead::Lead;
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::pool::Pool;
use leadroute_domain::queue::Queue;
use leadroute_domain::routing::rules::Target;
use leadroute_domain::rule_set::RuleSet;
use leadroute_domain::templates::Templates;
use leadroute_domain::Refusal;

/// An aggregate that belongs to one org once it exists.
pub trait InOrg: Aggregate<Services = ()> + Clone + Send + Sync + 'static
where
    Self::Error: Refusal + Send + Sync + 'static,
{
    /// Loaded incrementally from a cached state (only its new events are read): for
    /// aggregates with a long history loaded over and over, such as a pool with a pick per
    /// routed lead.
    const CACHED: bool = false;
    /// Name reported when it is missing (`contact`).
    const WHAT: &'static str;
    /// Code reported when it is missing: the domain's own code for that aggregate.
    const NOT_FOUND: &'static str;
    /// Its org, `None` while it does not exist.
    fn org(&self) -> Option<OrgId>;
    /// The owner whose open leads this aggregate counts toward (a lead's holder); a commit
    /// that changes it moves the count in the same transaction.
    fn holder(&self) -> Option<uuid::Uuid> {
        None
    }
    /// Why this aggregate waits and for which target's id (a lead waiting for a place);
    /// a commit that changes it records it in the same transaction.
    fn waiting(&self) -> Option<(&'static str, Option<uuid::Uuid>)> {
        None
    }
}

impl InOrg for Org {
    const CACHED: bool = true;
    const WHAT: &'static str = "org";
    const NOT_FOUND: &'static str = "org_not_found";
    fn org(&self) -> Option<OrgId> {
        self.id
    }
}

impl InOrg for PartnerAccount {
    const WHAT: &'static str = "partner_account";
    const NOT_FOUND: &'static str = "partner_account_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for PartnerUser {
    const WHAT: &'static str = "contact";
    const NOT_FOUND: &'static str = "contact_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Queue {
    const WHAT: &'static str = "queue";
    const NOT_FOUND: &'static str = "queue_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Pool {
    const CACHED: bool = true;
    const WHAT: &'static str = "pool";
    const NOT_FOUND: &'static str = "pool_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for RuleSet {
    const CACHED: bool = true;
    const WHAT: &'static str = "rule_set";
    const NOT_FOUND: &'static str = "rule_set_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Templates {
    const WHAT: &'static str = "templates";
    const NOT_FOUND: &'static str = "templates_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for BulkOperation {
    const CACHED: bool = true;
    const WHAT: &'static str = "bulk_operation";
    const NOT_FOUND: &'static str = "bulk_operation_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Lead {
    const WHAT: &'static str = "lead";
    const NOT_FOUND: &'static str = "lead_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
    fn holder(&self) -> Option<uuid::Uuid> {
        Lead::holder(self)
    }
    fn waiting(&self) -> Option<(&'static str, Option<uuid::Uuid>)> {
        let target = self.waiting_for.map(|target| match target {
            Target::PartnerUser(user) => user.0,
            Target::Queue(queue) => queue.0,
            Target::Pool(pool) => pool.0,
        });
        self.waiting.map(|reason| (reason.code(), target))
    }
}
