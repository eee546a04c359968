//! Live inbox updates: `GET /v1/stream`, server-sent events of the caller's inbox and queue
//! changes.
//!
//! Every API process runs one [`LiveFeed`]: an ordered JetStream consumer on the published
//! lead events (`<prefix>.*.events.Lead.>`), which turns each event into a
//! [`Notice`](feed::Notice) naming whom it concerns (the partner users and queues on either
//! side of an owner change, with the queues' members as they are then; the offeree of an
//! accept, decline, lapse or reminder; the owner of an updated lead) and broadcasts it in
//! process. Each stream keeps the notices that concern its caller, so any number of API
//! processes serve streams, each from the published events, none from another's memory.
//!
//! An event's SSE `id` is its stream sequence, the same on every API process. A client
//! that reconnects with `Last-Event-ID` first gets what it missed, replayed from the
//! stream by a consumer filtered to its org, then the live notices after it; a stream
//! that falls behind the broadcast catches up the same way. Each event says only which
//! lead changed and how (`offered`, `claimable`, `claimed`, `taken`, `accepted`,
//! `declined`, `recalled`, `removed`, `reminded`, `updated`): the page reads the lead
//! through the scoped reads, so a notice never carries what the reads would not show.
//!
//! # Layout
//! - `feed`: the process's feed and the replay of missed events;
//! - `stream`: the `GET /v1/stream` handler, one stream per connection.

pub mod feed;
pub(crate) mod stream;

pub use feed::{LiveFeed, LiveSource};
