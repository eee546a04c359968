//! Live streams (`GET /v1/stream`) over real NATS: 500 connected clients on one API process
//! each receive the events of their own inbox and queues and never another partner's; a
//! client that reconnects with `Last-Event-ID` misses nothing and gets nothing twice; who
//! may open a stream.

use futures::future::join_all;
use leadroute_tests::api::{TestApi, TestOrg};
use leadroute_tests::sse::{SseEvent, SseStream};
use leadroute_tests::TestNats;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

/// Partner users of the big test, in accounts of five.
const USERS: usize = 50;
/// Streams each of them opens.
const STREAMS_PER_USER: usize = 10;

async fn partner(api: &TestApi, org: &TestOrg, account: Uuid) -> (Uuid, String) {
    let email = format!("{}@partner.example", Uuid::new_v4().simple());
    let user = api.activated_user(&org.admin, account, &email).await;
    let token = api.signed_in(org.id, user, &email).await;
    (user, token)
}

async fn open(api: &TestApi, token: &str, last: Option<&str>) -> (SseStream, SseEvent) {
    let url = format!("{}/v1/stream", api.base);
    let mut stream = SseStream::open(&api.client, &url, token, last)
        .await
        .unwrap_or_else(|e| panic!("the stream opens: {e:?}"));
    let ready = stream
        .next(Duration::from_secs(10))
        .await
        .expect("the stream says it is ready");
    assert_eq!(ready.event, "ready");
    (stream, ready)
}

/// A new lead, offered to `user` by the admin.
async fn offer(api: &TestApi, org: &TestOrg, user: Uuid, company: &str) -> Uuid {
    let (lead, _) = api.lead(&org.admin, json!({"company": company})).await;
    api.reassign(
        &org.admin,
        lead,
        json!({"to": {"kind": "partner_user", "id": user}}),
    )
    .await
    .ok();
    lead
}

/// The `(lead, change)` pairs of `events`' lead events.
fn changes(events: &[SseEvent]) -> Vec<(Uuid, String)> {
    events
        .iter()
        .filter(|e| e.event == "lead")
        .map(|e| {
            let data = e.json();
            let lead = data["lead_id"].as_str().unwrap().parse().unwrap();
            (lead, data["change"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_streams_each_get_their_own_events_and_never_another_partners() {
    let nats = TestNats::new().await;
    let api = TestApi::spawn_live(&nats).await;
    let org = api.prm_org().await;
    let mut users = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..USERS {
        if i % 5 == 0 {
            accounts.push(api.managed_account(&org).await.1);
        }
        let (user, token) = partner(&api, &org, *accounts.last().unwrap()).await;
        users.push((user, token, accounts.len() - 1));
    }
    // The first account's five users are members of a queue.
    let queue = api.create_queue(&org.admin, "EMEA").await;
    api.add_queue_member(&org.admin, queue, "partner_account", accounts[0])
        .await
        .ok();

    let mut streams = Vec::new();
    for (index, (_, token, _)) in users.iter().enumerate() {
        for _ in 0..STREAMS_PER_USER {
            streams.push((index, open(&api, token, None).await.0));
        }
    }
    assert_eq!(streams.len(), USERS * STREAMS_PER_USER);

    // One lead offered to each user, and one put in the queue.
    let mut offered = Vec::new();
    for (user, _, _) in &users {
        offered.push(offer(&api, &org, *user, "Globex").await);
    }
    let (queued, _) = api.lead(&org.admin, json!({"company": "Umbrella"})).await;
    api.post(
        &format!("/v1/leads/{queued}/enqueue"),
        &org.admin,
        json!({"queue_id": queue}),
    )
    .await
    .ok();

    // Every stream gets exactly what concerns its user, then nothing more.
    let received = join_all(streams.into_iter().map(|(index, mut stream)| async move {
        let expected = if users_in_queue(index) { 2 } else { 1 };
        let mut events = Vec::new();
        while events.len() < expected {
            match stream.next(Duration::from_secs(30)).await {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events.extend(stream.until_quiet(Duration::from_millis(1500)).await);
        (index, events)
    }))
    .await;
    for (index, events) in received {
        let mut want = vec![(offered[index], "offered".to_string())];
        if users_in_queue(index) {
            want.push((queued, "claimable".to_string()));
        }
        let got = changes(&events);
        assert_eq!(
            got.iter().collect::<BTreeSet<_>>(),
            want.iter().collect::<BTreeSet<_>>(),
            "stream of user {index}: {events:?}"
        );
        assert_eq!(got.len(), want.len(), "nothing twice: {events:?}");
    }
}

/// Whether the user at `index` is in the first account (the queue's member).
fn users_in_queue(index: usize) -> bool {
    index < 5
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let nats = TestNats::new().await;
    let api = TestApi::spawn_live(&nats).await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (ada, ada_token) = partner(&api, &org, account).await;
    let (bob, _) = partner(&api, &org, account).await;

    let (mut stream, ready) = open(&api, &ada_token, None).await;
    let first = offer(&api, &org, ada, "Globex").await;
    let event = stream
        .next(Duration::from_secs(10))
        .await
        .expect("an event");
    assert_eq!(
        changes(std::slice::from_ref(&event)),
        [(first, "offered".into())]
    );
    let seen = event.id.clone().expect("events have ids");
    assert!(seen.parse::<u64>().unwrap() > ready.id.unwrap().parse::<u64>().unwrap());
    drop(stream);

    // Disconnected: three more offers to Ada, one to Bob, one of Ada's taken back.
    let mut missed = Vec::new();
    for company in ["Initech", "Umbrella", "Hooli"] {
        missed.push(offer(&api, &org, ada, company).await);
    }
    offer(&api, &org, bob, "Stark").await;
    api.reassign(
        &org.admin,
        first,
        json!({"to": {"kind": "partner_user", "id": bob}}),
    )
    .await
    .ok();

    // Reconnecting after the last id seen replays exactly what Ada missed, in order.
    let (mut resumed, _) = open(&api, &ada_token, Some(&seen)).await;
    let mut events = Vec::new();
    while events.len() < 4 {
        events.push(
            resumed
                .next(Duration::from_secs(15))
                .await
                .expect("the missed events arrive"),
        );
    }
    events.extend(resumed.until_quiet(Duration::from_secs(1)).await);
    let mut want: Vec<(Uuid, String)> = missed.iter().map(|l| (*l, "offered".into())).collect();
    want.push((first, "removed".into()));
    assert_eq!(changes(&events), want);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in stream order: {ids:?}"
    );

    // Resuming from the newest id replays nothing; the next live event still comes.
    let last = ids.last().unwrap().to_string();
    let (mut again, _) = open(&api, &ada_token, Some(&last)).await;
    assert!(again.next(Duration::from_secs(1)).await.is_none());
    let fresh = offer(&api, &org, ada, "Wayne").await;
    let event = again
        .next(Duration::from_secs(10))
        .await
        .expect("live again");
    assert_eq!(changes(&[event]), [(fresh, "offered".into())]);
}

#[tokio::test]
async fn only_partner_users_open_streams_and_only_where_events_are_followed() {
    let nats = TestNats::new().await;
    let api = TestApi::spawn_live(&nats).await;
    let org = api.prm_org().await;
    let url = format!("{}/v1/stream", api.base);
    let refused = |answer: Result<SseStream, (StatusCode, String)>| match answer {
        Ok(_) => panic!("the stream opened"),
        Err((status, body)) => (status, serde_json::from_str::<Value>(&body).unwrap()),
    };
    let (status, body) = refused(SseStream::open(&api.client, &url, "lrs_unknown", None).await);
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, _) = refused(SseStream::open(&api.client, &url, &org.admin, None).await);
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An API process that follows no events answers 503 with a stable code.
    let plain = TestApi::spawn().await;
    let org = plain.prm_org().await;
    let (_, account) = plain.managed_account(&org).await;
    let (_, token) = partner(&plain, &org, account).await;
    let url = format!("{}/v1/stream", plain.base);
    let (status, body) = refused(SseStream::open(&plain.client, &url, &token, None).await);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "stream_unavailable");
}
