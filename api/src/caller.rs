//! Who is calling and what they may touch: the bearer-token middleware, the `Caller`
//! extractor, and the scope checks every handler runs before it acts or reads.
//!
//! A resource outside the caller's scope answers exactly like a missing one (404), so a
//! caller learns nothing about other orgs, accounts or partners. A role that may never do
//! something gets 403.

use super::problem::ApiError;
use crate::state::ApiState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use leadroute_app::access::{AccessError, Principal, Role};
use leadroute_app::CommandMeta;
use leadroute_domain::ids::{
    Actor, InternalUserId, LeadId, OrgId, Owner, PartnerAccountId, PartnerUserId, QueueId,
};
use leadroute_domain::lead::Lead;
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::queue::Queue;
use leadroute_projections::queries;
use serde_json::Value;
use uuid::Uuid;

/// Middleware: resolve the bearer token to a [`Principal`] or answer 401.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(request.headers()).ok_or(ApiError::Unauthenticated(
        "send an API key or session token as `Authorization: Bearer <token>`",
    ))?;
    let principal = principal_of(&state, token).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Who `token` stands for: 401 when it is unknown, revoked or expired; a store failure
/// answers as one.
pub async fn principal_of(state: &ApiState, token: &str) -> Result<Principal, ApiError> {
    state.access.authenticate(token).await.map_err(|e| match e {
        AccessError::InvalidCredentials => {
            ApiError::Unauthenticated("the token is unknown, revoked or expired")
        }
        other => other.into(),
    })
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or(ApiError::Unauthenticated("this route needs a bearer token"))
    }
}

const ROLE_FORBIDDEN: &str = "the caller's role may not do this";

/// A set of roles a route admits (see [`Allowed`]).
pub trait Roles: Send + Sync {
    /// Internal roles admitted.
    const ROLES: &'static [Role];
    /// Whether partner users (and nobody else) are admitted instead.
    const PARTNER: bool = false;
}

/// Admins only.
pub struct AdminRole;
impl Roles for AdminRole {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Admins and channel managers.
pub struct StaffRole;
impl Roles for StaffRole {
    const ROLES: &'static [Role] = &[Role::Admin, Role::ChannelManager];
}

/// Partner users only.
pub struct PartnerRole;
impl Roles for PartnerRole {
    const ROLES: &'static [Role] = &[];
    const PARTNER: bool = true;
}

/// Extractor: the caller's role is admitted by `R`, else 403. Placed before a body
/// extractor, it answers a forbidden role before the body is read, so a caller who may
/// never do something learns that first (not that their body was malformed).
pub struct Allowed<R>(std::marker::PhantomData<R>);

impl<R: Roles, S: Send + Sync> FromRequestParts<S> for Allowed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if R::PARTNER {
            caller.partner()?;
        } else {
            caller.internal(R::ROLES)?;
        }
        Ok(Allowed(std::marker::PhantomData))
    }
}

impl Caller {
    /// The caller's org: every read and command is scoped to it.
    pub fn org(&self) -> OrgId {
        match &self.0 {
            Principal::Internal { org, .. } | Principal::Partner { org, .. } => *org,
        }
    }

    /// The key or partner user behind the request (idempotency keys are per caller).
    pub fn principal_id(&self) -> Uuid {
        match &self.0 {
            Principal::Internal { key_id, .. } => *key_id,
            Principal::Partner { user, .. } => user.0,
        }
    }

    /// Metadata of a command issued by the caller now.
    pub fn meta(&self) -> CommandMeta {
        CommandMeta::now(match &self.0 {
            Principal::Internal { user, .. } => Actor::InternalUser(*user),
            Principal::Partner { user, .. } => Actor::PartnerUser(*user),
        })
    }

    /// The internal user behind the request, if its role is one of `roles`; else 403.
    pub fn internal(&self, roles: &[Role]) -> Result<(Role, InternalUserId), ApiError> {
        match &self.0 {
            Principal::Internal { role, user, .. } if roles.contains(role) => Ok((*role, *user)),
            _ => Err(ApiError::Forbidden(ROLE_FORBIDDEN)),
        }
    }

    /// The partner user behind the request; else 403.
    pub fn partner(&self) -> Result<(PartnerUserId, PartnerAccountId), ApiError> {
        match &self.0 {
            Principal::Partner { user, account, .. } => Ok((*user, *account)),
            _ => Err(ApiError::Forbidden("only partner users may do this")),
        }
    }

    /// A partner account the caller manages: any of the org for an admin, their own for a
    /// channel manager.
    pub async fn managed_account(
        &self,
        state: &ApiState,
        id: PartnerAccountId,
    ) -> Result<PartnerAccount, ApiError> {
        let (role, user) = self.internal(&[Role::Admin, Role::ChannelManager])?;
        let account = state
            .commands
            .state::<PartnerAccount>(self.org(), id)
            .await?;
        if role == Role::ChannelManager && account.channel_manager != Some(user) {
            return Err(ApiError::not_found(
                "partner_account_not_found",
                "partner_account",
                id,
            ));
        }
        Ok(account)
    }

    /// A contact / partner user the caller manages (its account is managed by the caller).
    pub async fn managed_user(
        &self,
        state: &ApiState,
        id: PartnerUserId,
    ) -> Result<PartnerUser, ApiError> {
        self.internal(&[Role::Admin, Role::ChannelManager])?;
        let user = state.commands.state::<PartnerUser>(self.org(), id).await?;
        let account = user.account_id.ok_or_else(|| missing_user(id))?;
        match self.managed_account(state, account).await {
            Err(ApiError::NotFound { .. }) => Err(missing_user(id)),
            other => other.map(|_| user),
        }
    }

    /// A queue in a channel manager's territory (one of its members is a partner user or
    /// account they manage); admins reach every queue of the org.
    pub async fn territory_queue(&self, state: &ApiState, id: QueueId) -> Result<(), ApiError> {
        let (role, user) = self.internal(&[Role::Admin, Role::ChannelManager])?;
        state.commands.state::<Queue>(self.org(), id).await?;
        if role == Role::ChannelManager
            && !queries::in_manager_territory(&state.pool, self.org(), user, &Owner::Queue(id))
                .await?
        {
            return Err(ApiError::not_found("queue_not_found", "queue", id));
        }
        Ok(())
    }

    /// A lead the caller may see: any of the org for admins and integrations; unassigned
    /// or in their territory for a channel manager; owned by them, or waiting in one of
    /// their queues, for a partner user.
    pub async fn readable_lead(&self, state: &ApiState, id: LeadId) -> Result<Lead, ApiError> {
        let lead = state.commands.state::<Lead>(self.org(), id).await?;
        let visible = match (&self.0, lead.owner) {
            (Principal::Internal { role, user, .. }, owner) => match (role, owner) {
                (Role::ChannelManager, Some(owner)) => {
                    queries::in_manager_territory(&state.pool, self.org(), *user, &owner).await?
                }
                _ => true,
            },
            (Principal::Partner { user, .. }, Some(Owner::PartnerUser(owner))) => owner == *user,
            (Principal::Partner { user, account, .. }, Some(Owner::Queue(queue))) => state
                .commands
                .state::<Queue>(self.org(), queue)
                .await?
                .has_member(*user, *account),
            (Principal::Partner { .. }, _) => false,
        };
        if !visible {
            return Err(ApiError::not_found("lead_not_found", "lead", id));
        }
        Ok(lead)
    }

    /// Lead fields as the caller may see them: all for internal users; for partner users
    /// the org's partner-visible fields of leads they accepted, and only the
    /// pre-acceptance fields among them of leads offered to them or claimable from their
    /// queues.
    pub async fn visible_fields(&self, state: &ApiState) -> Result<PartnerFields, ApiError> {
        match self.0 {
            Principal::Internal { .. } => Ok(PartnerFields {
                accepted: FieldFilter(None),
                offered: FieldFilter(None),
            }),
            Principal::Partner { org, .. } => {
                let org = state.commands.state::<Org>(org, org).await?;
                Ok(PartnerFields {
                    accepted: FieldFilter(Some(org.partner_fields(true))),
                    offered: FieldFilter(Some(org.partner_fields(false))),
                })
            }
        }
    }
}

/// The lead fields a caller may see, by whether they accepted the lead.
pub struct PartnerFields {
    accepted: FieldFilter,
    offered: FieldFilter,
}

impl PartnerFields {
    /// The filter of a lead the caller accepted (`true`) or not (offered, claimable).
    pub fn of(&self, accepted: bool) -> &FieldFilter {
        match accepted {
            true => &self.accepted,
            false => &self.offered,
        }
    }
}

fn missing_user(id: PartnerUserId) -> ApiError {
    ApiError::not_found("contact_not_found", "contact", id)
}

/// Which lead fields a caller may see (`None`: all).
pub struct FieldFilter(Option<std::collections::BTreeSet<String>>);

impl FieldFilter {
    /// Whether the caller may see the value named `name`.
    pub fn shows(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|visible| visible.contains(name))
    }

    /// Drop the fields the caller may not see from a JSON object of lead fields.
    pub fn apply(&self, fields: Value) -> Value {
        match (&self.0, fields) {
            (Some(visible), Value::Object(map)) => Value::Object(
                map.into_iter()
                    .filter(|(name, _)| visible.contains(name))
                    .collect(),
            ),
            (Some(_), _) => Value::Object(Default::default()),
            (None, fields) => fields,
        }
    }
}
