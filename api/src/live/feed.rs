//! The feed: one ordered JetStream consumer per API process on the published lead events,
//! each turned into a [`Notice`] and broadcast in process; and the replay of what a stream
//! missed, from JetStream.

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures::StreamExt;
use leadroute_app::Commands;
use leadroute_domain::ids::{LeadId, OrgId, Owner, PartnerAccountId, PartnerUserId, QueueId};
use leadroute_domain::lead::{Lead, LeadEvent};
use leadroute_domain::queue::{Queue, QueueMember};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Notices a stream may fall behind by before it catches up from JetStream.
const BROADCAST_CAPACITY: usize = 4096;
/// Most events one reconnect replays; further back, the client is told to reload.
const MAX_REPLAY: u64 = 10_000;

/// Where the published events are: the events stream and the subject prefix of the
/// process's NATS names.
#[derive(Debug, Clone)]
pub struct LiveSource {
    /// JetStream of the NATS server the publisher writes to.
    pub js: jetstream::Context,
    /// The events stream (`<PREFIX>_EVENTS`).
    pub stream: String,
    /// The subject prefix (`leadroute`): lead events are `<prefix>.<org>.events.Lead.<type>`.
    pub prefix: String,
}

/// Who an owner change or offer event concerns, and how.
#[derive(Debug, Clone, PartialEq)]
pub enum Concern {
    /// The lead moved from `from` to `to` (`claim` when a queue member claimed it).
    Moved {
        /// Owner before.
        from: Option<Owner>,
        /// Owner after.
        to: Owner,
        /// A claim from a queue.
        claim: bool,
    },
    /// Something happened to the offer of partner user `user` (accepted, declined,
    /// recalled, reminded).
    Offer {
        /// The offeree.
        user: PartnerUserId,
        /// `accepted`, `declined`, `recalled` or `reminded`.
        change: &'static str,
    },
    /// The lead's fields changed; `owner` is its owner now.
    Updated {
        /// The owner, if any.
        owner: Option<Owner>,
    },
}

/// One published lead event as the streams see it.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Its stream sequence (the SSE id).
    pub seq: u64,
    /// Its org.
    pub org: OrgId,
    /// The lead.
    pub lead: LeadId,
    /// Whom it concerns.
    pub concern: Concern,
    /// Its log position (`TX/POS`): a read with it as `min_position` shows the change.
    pub position: Option<String>,
    /// The members of the queues it names, as the feed read them when it saw the event.
    pub queues: Vec<(QueueId, Vec<QueueMember>)>,
}

impl Notice {
    /// What the notice means to partner user `me` of account `account`: the change to
    /// tell, or `None` when it does not concern them.
    pub fn change_for(&self, me: PartnerUserId, account: PartnerAccountId) -> Option<&'static str> {
        let mine = |owner: &Option<Owner>| match owner {
            Some(Owner::PartnerUser(user)) => *user == me,
            _ => false,
        };
        let my_queue = |owner: &Option<Owner>| match owner {
            Some(Owner::Queue(queue)) => self.queues.iter().any(|(id, members)| {
                id == queue
                    && members.iter().any(|member| match member {
                        QueueMember::PartnerUser(user) => *user == me,
                        QueueMember::PartnerAccount(of) => *of == account,
                    })
            }),
            _ => false,
        };
        match &self.concern {
            Concern::Moved { from, to, claim } => {
                let to = Some(*to);
                if mine(&to) {
                    Some(if *claim { "claimed" } else { "offered" })
                } else if my_queue(&to) {
                    Some("claimable")
                } else if mine(from) {
                    Some("removed")
                } else if my_queue(from) {
                    Some("taken")
                } else {
                    None
                }
            }
            Concern::Offer { user, change } => (*user == me).then_some(*change),
            Concern::Updated { owner } => (mine(owner) || my_queue(owner)).then_some("updated"),
        }
    }
}

/// The published envelope's fields a notice needs.
#[derive(Deserialize)]
struct Published {
    org_id: Option<Uuid>,
    aggregate_id: Uuid,
    position: Option<PublishedPosition>,
    payload: LeadEvent,
}

/// The event's position in the log.
#[derive(Deserialize)]
struct PublishedPosition {
    transaction_id: String,
    global_position: i64,
}

/// Whom a lead event concerns (`None`: no partner user; `owner_now` answers for updates).
async fn concern_of<F, Fut>(event: LeadEvent, owner_now: F) -> Option<Concern>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Option<Owner>>,
{
    use LeadEvent as E;
    Some(match event {
        E::LeadRouted { change, .. }
        | E::LeadReassigned { change, .. }
        | E::LeadEnqueued { change } => Concern::Moved {
            from: change.from,
            to: change.to,
            claim: false,
        },
        E::LeadClaimed { change } => Concern::Moved {
            from: change.from,
            to: change.to,
            claim: true,
        },
        E::LeadAccepted { by, .. } => Concern::Offer {
            user: by,
            change: "accepted",
        },
        E::LeadDeclined { by, .. } => Concern::Offer {
            user: by,
            change: "declined",
        },
        E::LeadOfferLapsed { from, .. } => Concern::Offer {
            user: from,
            change: "recalled",
        },
        E::LeadOfferReminded { to, .. } => Concern::Offer {
            user: to,
            change: "reminded",
        },
        E::LeadUpdated { .. } => Concern::Updated {
            owner: owner_now().await,
        },
        _ => return None,
    })
}

/// The in-process broadcast of one API process's notices (see the module docs).
#[derive(Clone)]
pub struct LiveFeed {
    source: LiveSource,
    /// The last sequence broadcast, and the sender: both behind one lock, so a stream
    /// that subscribes learns exactly where its live notices start.
    inner: Arc<Mutex<(u64, broadcast::Sender<Arc<Notice>>)>>,
}

impl LiveFeed {
    /// Start following the lead events of `source` (from the stream's end), broadcasting
    /// notices until the process ends. Leads' owners and queues' members come from
    /// `commands` (the process's cached aggregate states).
    pub async fn start(source: LiveSource, commands: Commands) -> anyhow::Result<LiveFeed> {
        let stream = source.js.get_stream(&source.stream).await.map_err(|e| {
            anyhow::anyhow!("the events stream {} is not there: {e}", source.stream)
        })?;
        let last = stream.get_info().await?.state.last_sequence;
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let feed = LiveFeed {
            source,
            inner: Arc::new(Mutex::new((last, sender))),
        };
        let follower = feed.clone();
        tokio::spawn(async move { follower.follow(last, commands).await });
        Ok(feed)
    }

    /// Broadcast every lead event after `last`, recreating the consumer after a failure.
    async fn follow(self, mut last: u64, commands: Commands) {
        loop {
            match self.follow_from(&mut last, &commands).await {
                Ok(()) => tracing::warn!("the live feed's consumer ended; following again"),
                Err(e) => tracing::warn!(error = %e, "the live feed failed; following again"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow_from(&self, last: &mut u64, commands: &Commands) -> anyhow::Result<()> {
        let subject = format!("{}.*.events.Lead.>", self.source.prefix);
        let mut messages = self.replay_consumer(subject, *last + 1).await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!(e))?
                .stream_sequence;
            let notice = notice_of(seq, &message.payload, commands).await;
            let mut inner = self.inner.lock().expect("the feed lock is never poisoned");
            inner.0 = seq;
            *last = seq;
            if let Some(notice) = notice {
                // No receiver is fine: nobody is connected.
                let _ = inner.1.send(Arc::new(notice));
            }
        }
        Ok(())
    }

    /// An ordered consumer of `subject` from `start`.
    async fn replay_consumer(
        &self,
        subject: String,
        start: u64,
    ) -> anyhow::Result<async_nats::jetstream::consumer::pull::Ordered> {
        let stream = self.source.js.get_stream(&self.source.stream).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subject,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start.max(1),
                },
                ..Default::default()
            })
            .await?;
        Ok(consumer.messages().await?)
    }

    /// Subscribe: the sequence the live notices start after, and the receiver.
    pub(super) fn subscribe(&self) -> (u64, broadcast::Receiver<Arc<Notice>>) {
        let inner = self.inner.lock().expect("the feed lock is never poisoned");
        (inner.0, inner.1.subscribe())
    }

    /// The notices of `org`'s lead events after `after` up to at least `until`, from
    /// JetStream (a reconnect or a stream that fell behind). `None` when more than
    /// [`MAX_REPLAY`] events are missed or the stream no longer holds them.
    pub(super) async fn missed(
        &self,
        org: OrgId,
        after: u64,
        until: u64,
        commands: &Commands,
    ) -> anyhow::Result<Option<Vec<Notice>>> {
        if until <= after {
            return Ok(Some(Vec::new()));
        }
        let stream = self.source.js.get_stream(&self.source.stream).await?;
        let info = stream.get_info().await?;
        if until - after > MAX_REPLAY || info.state.first_sequence > after + 1 {
            return Ok(None);
        }
        let subject = format!("{}.{}.events.Lead.>", self.source.prefix, org.0);
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subject,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await?;
        let mut pending = consumer.cached_info().num_pending;
        let mut messages = consumer.messages().await?;
        let mut out = Vec::new();
        while pending > 0 {
            let Some(message) = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .map_err(|_| anyhow::anyhow!("the replay stalled"))?
            else {
                break;
            };
            let message = message?;
            let info = message.info().map_err(|e| anyhow::anyhow!(e))?;
            let seq = info.stream_sequence;
            pending = info.pending;
            if let Some(notice) = notice_of(seq, &message.payload, commands).await {
                out.push(notice);
            }
            if seq >= until {
                break;
            }
        }
        Ok(Some(out))
    }
}

/// The notice of a published lead event (`None` when it concerns no partner user or does
/// not read as one).
async fn notice_of(seq: u64, body: &[u8], commands: &Commands) -> Option<Notice> {
    let published: Published = serde_json::from_slice(body).ok()?;
    let org = OrgId(published.org_id?);
    let lead = LeadId(published.aggregate_id);
    let position = published
        .position
        .map(|p| format!("{}/{}", p.transaction_id, p.global_position));
    let concern = concern_of(published.payload, || async {
        commands
            .state::<Lead>(org, lead)
            .await
            .ok()
            .and_then(|lead| lead.owner)
    })
    .await?;
    // Who may see a queue's leads is decided once here, not by every stream.
    let named: Vec<QueueId> = match &concern {
        Concern::Moved { from, to, .. } => [*from, Some(*to)]
            .into_iter()
            .flatten()
            .filter_map(|owner| match owner {
                Owner::Queue(queue) => Some(queue),
                _ => None,
            })
            .collect(),
        Concern::Updated {
            owner: Some(Owner::Queue(queue)),
        } => vec![*queue],
        _ => Vec::new(),
    };
    let mut queues = Vec::with_capacity(named.len());
    for queue in named {
        let members = commands.state::<Queue>(org, queue).await.ok()?.members;
        queues.push((queue, members.into_iter().collect()));
    }
    Some(Notice {
        seq,
        org,
        lead,
        concern,
        position,
        queues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> PartnerUserId {
        PartnerUserId(Uuid::from_u128(n))
    }

    fn queue(n: u128) -> QueueId {
        QueueId(Uuid::from_u128(n))
    }

    fn account(n: u128) -> PartnerAccountId {
        PartnerAccountId(Uuid::from_u128(n))
    }

    /// A notice of a move; queue 5's members are user 2 and the users of account 7.
    fn moved(from: Option<Owner>, to: Owner, claim: bool) -> Notice {
        let members = vec![
            QueueMember::PartnerUser(user(2)),
            QueueMember::PartnerAccount(account(7)),
        ];
        Notice {
            seq: 1,
            org: OrgId(Uuid::from_u128(9)),
            lead: LeadId(Uuid::from_u128(8)),
            concern: Concern::Moved { from, to, claim },
            position: None,
            queues: vec![(queue(5), members)],
        }
    }

    #[test]
    fn an_owner_change_concerns_both_sides_and_nobody_else() {
        let offer = moved(None, Owner::PartnerUser(user(1)), false);
        assert_eq!(offer.change_for(user(1), account(6)), Some("offered"));
        assert_eq!(offer.change_for(user(2), account(6)), None);
        let away = moved(
            Some(Owner::PartnerUser(user(1))),
            Owner::PartnerUser(user(3)),
            false,
        );
        assert_eq!(away.change_for(user(1), account(6)), Some("removed"));
        assert_eq!(away.change_for(user(3), account(6)), Some("offered"));
        assert_eq!(away.change_for(user(2), account(7)), None);
    }

    #[test]
    fn a_claim_is_taken_for_the_other_members_directly_or_through_their_account() {
        let claim = moved(
            Some(Owner::Queue(queue(5))),
            Owner::PartnerUser(user(1)),
            true,
        );
        assert_eq!(claim.change_for(user(1), account(6)), Some("claimed"));
        assert_eq!(claim.change_for(user(2), account(6)), Some("taken"));
        assert_eq!(claim.change_for(user(4), account(7)), Some("taken"));
        assert_eq!(claim.change_for(user(3), account(6)), None);
        let enqueued = moved(None, Owner::Queue(queue(5)), false);
        assert_eq!(enqueued.change_for(user(4), account(7)), Some("claimable"));
        assert_eq!(enqueued.change_for(user(3), account(6)), None);
    }

    #[test]
    fn an_offer_event_concerns_its_offeree_only() {
        let notice = Notice {
            seq: 2,
            org: OrgId(Uuid::from_u128(9)),
            lead: LeadId(Uuid::from_u128(8)),
            concern: Concern::Offer {
                user: user(1),
                change: "recalled",
            },
            position: None,
            queues: Vec::new(),
        };
        assert_eq!(notice.change_for(user(1), account(6)), Some("recalled"));
        assert_eq!(notice.change_for(user(2), account(6)), None);
    }
}
