//! The router against real NATS and PostgreSQL: leads published by the publisher are routed
//! by router workers on the durable consumer through a pool, fairly (equal shares, weights,
//! a member deactivated midway skipped with the others keeping their order), and each lead
//! is decided exactly once even with two router processes on one consumer. Also the
//! default owner, `no_rule_matched`, keep-owner and watched-field updates; leads waiting
//! for capacity or an eligible member routed, oldest first, when a place frees (by the
//! event that frees it, or by the sweep for a pause that runs out); and two intake and two
//! router processes on capped pools with leads closing meanwhile: no cap passed, no dead
//! letter, every waiting lead routed.

use leadroute_app::NewLead;
use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, PoolId, QueueId, UpstreamRef};
use leadroute_domain::lead::{Lead, LeadFields};
use leadroute_domain::routing::criteria::Criterion;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::{Entry, RuleSetSpec, Target};
use leadroute_store::schema::EVENTS_TABLE;
use leadroute_tests::eventually;
use leadroute_tests::pipeline::Pipeline;
use leadroute_workers::tasks::Tasks;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// An org on the shared pipeline fixture, with `routers` router processes.
struct World {
    pipeline: Pipeline,
    org: OrgId,
    routers: Vec<Tasks>,
}

impl std::ops::Deref for World {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl World {
    async fn start(routers: usize) -> World {
        World::start_sweeping(routers, leadroute_workers::waker::SWEEP).await
    }

    /// With routers whose waker sweeps every `sweep`.
    async fn start_sweeping(routers: usize, sweep: Duration) -> World {
        let pipeline = Pipeline::start().await;
        let org = pipeline.app.prm_org().await;
        let mut workers = Vec::new();
        for _ in 0..routers {
            workers.push(pipeline.router_sweeping(1, sweep).await);
        }
        World {
            pipeline,
            org,
            routers: workers,
        }
    }

    async fn users(&self, n: usize) -> Vec<PartnerUserId> {
        let account = self.app.active_partner(self.org).await;
        let mut users = Vec::new();
        for _ in 0..n {
            users.push(self.app.assignable_user(self.org, account).await);
        }
        users
    }

    async fn pool(&self, members: &[(PartnerUserId, u32)]) -> PoolId {
        self.capped_pool(members, None).await
    }

    /// A pool of `members` (with their weights) whose members hold at most `cap` open leads.
    async fn capped_pool(&self, members: &[(PartnerUserId, u32)], cap: Option<u32>) -> PoolId {
        let pool = PoolId::new_random();
        let meta = self.app.meta();
        self.app
            .commands
            .create_pool(&meta, self.org, pool, "round-robin", cap)
            .await
            .unwrap();
        for (user, weight) in members {
            let member = Member::PartnerUser(*user);
            self.app
                .commands
                .add_pool_member(&meta, self.org, pool, member, Some(*weight), None)
                .await
                .unwrap();
        }
        pool
    }

    async fn publish(&self, spec: RuleSetSpec) {
        self.app
            .commands
            .publish_rule_set(&self.app.meta(), self.org, &spec)
            .await
            .unwrap();
    }

    async fn lead(&self, fields: LeadFields) -> leadroute_domain::ids::LeadId {
        self.lead_from(&uuid::Uuid::new_v4().to_string(), fields)
            .await
    }

    /// Close a lead upstream (its `status` becomes won).
    async fn close(&self, lead: leadroute_domain::ids::LeadId) {
        let upstream = self.upstream_of(lead).await;
        self.lead_from(&upstream, fields(&[("status", json!("won"))]))
            .await;
    }

    async fn upstream_of(&self, lead: leadroute_domain::ids::LeadId) -> String {
        let state = self.app.commands.state::<Lead>(self.org, lead).await;
        state.unwrap().upstream.unwrap().lead_id
    }

    /// A new lead, or an update of it, from upstream lead `upstream`.
    async fn lead_from(&self, upstream: &str, fields: LeadFields) -> leadroute_domain::ids::LeadId {
        let new = NewLead {
            upstream: UpstreamRef {
                system: "crm".into(),
                lead_id: upstream.to_string(),
            },
            upstream_event_id: uuid::Uuid::new_v4().to_string(),
            fields,
            route: true,
            occurred_at: None,
            owner: None,
        };
        self.app
            .commands
            .receive_lead(&self.app.meta(), self.org, &new)
            .await
            .unwrap()
            .0
    }

    /// The routing events of a lead once it has `n` of them.
    async fn decided(&self, lead: leadroute_domain::ids::LeadId, n: usize) -> Vec<String> {
        eventually(Duration::from_secs(60), || async {
            let types = self.routing_events(lead).await;
            (types.len() >= n).then_some(types)
        })
        .await
        .unwrap_or_else(|| panic!("lead {lead} was not routed"))
    }

    async fn routing_events(&self, lead: leadroute_domain::ids::LeadId) -> Vec<String> {
        sqlx::query_scalar(&format!(
            "SELECT event_type FROM {EVENTS_TABLE} WHERE aggregate_id = $1
                AND event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted') ORDER BY sequence"
        ))
        .bind(lead.to_string())
        .fetch_all(&self.app.db.pool)
        .await
        .unwrap()
    }

    /// Wait until every committed event is published and the router consumer has nothing
    /// pending or unacknowledged.
    /// Publish `n` new CRM leads of the org on NATS and wait for the server's acks.
    async fn publish_created(&self, n: usize) {
        let subject = self.names.crm_subject(self.org.0, "created");
        let mut acks = Vec::new();
        for i in 0..n {
            let body = json!({
                "schema_version": 1, "upstream_event_id": format!("e{i}"), "upstream_system": "crm",
                "upstream_lead_id": format!("L{i}"), "occurred_at": "2026-11-28T08:00:00Z",
                "fields": {"company": format!("Company {i}")}
            });
            acks.push(
                self.nats
                    .js
                    .publish(subject.clone(), body.to_string().into())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }

    /// Wait (up to `within`) until `n` leads are routed; whether they were.
    async fn routed(&self, n: i64, within: Duration) -> bool {
        eventually(within, || async {
            let routed: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {EVENTS_TABLE} WHERE event_type = 'LeadRouted'"
            ))
            .fetch_one(&self.app.db.pool)
            .await
            .ok()?;
            (routed == n).then_some(())
        })
        .await
        .is_some()
    }

    async fn drained(&self) {
        self.pipeline.drained(&self.names.router_consumer()).await;
    }

    async fn owner(&self, lead: leadroute_domain::ids::LeadId) -> Option<Owner> {
        self.app
            .commands
            .state::<Lead>(self.org, lead)
            .await
            .unwrap()
            .owner
    }

    async fn stop(self) {
        for workers in self.routers {
            workers.stop().await;
        }
        self.pipeline.stop().await;
    }
}

fn to(target: Target) -> RuleSetSpec {
    RuleSetSpec {
        entries: vec![Entry {
            acceptance_deadline: None,
            fallback: None,
            criteria: vec![],
            target,
            keep_owner: false,
            notify: false,
        }],
        ..Default::default()
    }
}

fn fields(pairs: &[(&str, serde_json::Value)]) -> LeadFields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Route `n` leads one after the other; the owner of each.
async fn route_in_turn(world: &World, n: usize) -> Vec<Owner> {
    let mut owners = Vec::new();
    for _ in 0..n {
        let lead = world.lead(fields(&[])).await;
        assert_eq!(world.decided(lead, 1).await, ["LeadRouted"]);
        owners.push(world.owner(lead).await.unwrap());
    }
    owners
}

#[tokio::test]
async fn three_members_and_six_leads_give_two_each_and_a_deactivated_member_is_skipped() {
    let world = World::start(1).await;
    let users = world.users(3).await;
    let pool = world
        .pool(&[(users[0], 1), (users[1], 1), (users[2], 1)])
        .await;
    world.publish(to(Target::Pool(pool))).await;
    let first = route_in_turn(&world, 6).await;
    let expected: Vec<Owner> = [0, 1, 2, 0, 1, 2]
        .iter()
        .map(|&i| Owner::PartnerUser(users[i]))
        .collect();
    assert_eq!(first, expected, "two each, in turn");

    // One more to A, then B is deactivated: C and A alternate, in their order.
    assert_eq!(
        route_in_turn(&world, 1).await,
        [Owner::PartnerUser(users[0])]
    );
    world
        .app
        .commands
        .deactivate_partner_user(&world.app.meta(), world.org, users[1])
        .await
        .unwrap();
    let after = route_in_turn(&world, 4).await;
    let expected: Vec<Owner> = [2, 0, 2, 0]
        .iter()
        .map(|&i| Owner::PartnerUser(users[i]))
        .collect();
    assert_eq!(after, expected, "B skipped; C and A keep their order");
    world.stop().await;
}

#[tokio::test]
async fn weights_two_one_one_over_forty_leads_give_twenty_ten_ten() {
    let world = World::start(1).await;
    let users = world.users(3).await;
    let pool = world
        .pool(&[(users[0], 2), (users[1], 1), (users[2], 1)])
        .await;
    world.publish(to(Target::Pool(pool))).await;
    let mut leads = Vec::new();
    for _ in 0..40 {
        leads.push(world.lead(fields(&[])).await);
    }
    let mut counts: HashMap<Owner, usize> = HashMap::new();
    for lead in leads {
        world.decided(lead, 1).await;
        *counts.entry(world.owner(lead).await.unwrap()).or_default() += 1;
    }
    let got: Vec<usize> = users
        .iter()
        .map(|u| counts[&Owner::PartnerUser(*u)])
        .collect();
    assert_eq!(got, [20, 10, 10]);
    world.stop().await;
}

#[tokio::test]
async fn two_routers_on_one_consumer_decide_each_of_a_thousand_leads_once_and_fairly() {
    let world = World::start(2).await;
    let users = world.users(3).await;
    let pool = world
        .pool(&[(users[0], 3), (users[1], 2), (users[2], 1)])
        .await;
    world.publish(to(Target::Pool(pool))).await;
    let mut leads = Vec::new();
    for _ in 0..1000 {
        leads.push(world.lead(fields(&[])).await);
    }
    let mut counts: HashMap<Owner, usize> = HashMap::new();
    for lead in &leads {
        assert_eq!(
            world.decided(*lead, 1).await,
            ["LeadRouted"],
            "lead {lead} decided exactly once"
        );
        *counts.entry(world.owner(*lead).await.unwrap()).or_default() += 1;
    }
    for (user, weight) in users.iter().zip([3.0, 2.0, 1.0]) {
        let share = 1000.0 * weight / 6.0;
        let got = counts[&Owner::PartnerUser(*user)] as f64;
        assert!(
            (got - share).abs() <= 1.0,
            "{got} leads against a share of {share}"
        );
    }
    world.drained().await;
    let decisions: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {EVENTS_TABLE}
          WHERE event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted')"
    ))
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        decisions, 1000,
        "every lead decided exactly once, after every redelivery"
    );
    let picks: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {EVENTS_TABLE} WHERE event_type = 'PoolMemberPicked'"
    ))
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(picks, 1000, "one pick per lead");
    world.stop().await;
}

#[tokio::test]
async fn unmatched_leads_go_to_the_default_owner_or_stay_with_no_rule_matched() {
    let world = World::start(1).await;
    let users = world.users(1).await;
    let queue = world.app.staffed_queue(world.org).await;
    let de = Criterion::Equals {
        field: "country".into(),
        value: "DE".into(),
    };
    let mut spec = RuleSetSpec {
        entries: vec![Entry {
            acceptance_deadline: None,
            fallback: None,
            criteria: vec![de],
            target: Target::PartnerUser(users[0]),
            keep_owner: false,
            notify: true,
        }],
        ..Default::default()
    };
    world.publish(spec.clone()).await;
    let unmatched = world.lead(fields(&[("country", json!("US"))])).await;
    assert_eq!(world.decided(unmatched, 1).await, ["LeadNotRouted"]);
    assert_eq!(world.owner(unmatched).await, None);

    spec.default_owner = Some(Target::Queue(queue));
    world.publish(spec).await;
    let defaulted = world.lead(fields(&[("country", json!("US"))])).await;
    assert_eq!(world.decided(defaulted, 1).await, ["LeadRouted"]);
    assert_eq!(world.owner(defaulted).await, Some(Owner::Queue(queue)));
    let matched = world.lead(fields(&[("country", json!(" de "))])).await;
    world.decided(matched, 1).await;
    assert_eq!(
        world.owner(matched).await,
        Some(Owner::PartnerUser(users[0]))
    );
    world.stop().await;
}

#[tokio::test]
async fn a_watched_field_update_reroutes_and_an_unwatched_one_does_not() {
    let world = World::start(1).await;
    let queues: Vec<QueueId> = vec![
        world.app.staffed_queue(world.org).await,
        world.app.staffed_queue(world.org).await,
    ];
    let by_country = |country: &str, queue: QueueId| Entry {
        acceptance_deadline: None,
        fallback: None,
        criteria: vec![Criterion::Equals {
            field: "country".into(),
            value: country.into(),
        }],
        target: Target::Queue(queue),
        keep_owner: false,
        notify: false,
    };
    let spec = RuleSetSpec {
        entries: vec![by_country("DE", queues[0]), by_country("FR", queues[1])],
        watched_fields: ["country".to_string()].into(),
        ..Default::default()
    };
    world.publish(spec).await;
    let upstream = UpstreamRef {
        system: "crm".into(),
        lead_id: "L-1".into(),
    };
    let send = |event: &str, pairs: &[(&str, serde_json::Value)]| NewLead {
        upstream: upstream.clone(),
        upstream_event_id: event.into(),
        fields: fields(pairs),
        route: true,
        occurred_at: None,
        owner: None,
    };
    let meta = world.app.meta();
    let (lead, _) = world
        .app
        .commands
        .receive_lead(&meta, world.org, &send("e1", &[("country", json!("DE"))]))
        .await
        .unwrap();
    world.decided(lead, 1).await;
    assert_eq!(world.owner(lead).await, Some(Owner::Queue(queues[0])));
    world
        .app
        .commands
        .receive_lead(
            &meta,
            world.org,
            &send("e2", &[("country", json!("DE")), ("phone", json!("555"))]),
        )
        .await
        .unwrap();
    world
        .app
        .commands
        .receive_lead(&meta, world.org, &send("e3", &[("country", json!("FR"))]))
        .await
        .unwrap();
    assert_eq!(
        world.decided(lead, 2).await,
        ["LeadRouted", "LeadRouted"],
        "only the watched update re-routed"
    );
    assert_eq!(world.owner(lead).await, Some(Owner::Queue(queues[1])));
    let mut opted_out = send("e4", &[("country", json!("DE"))]);
    opted_out.route = false;
    world
        .app
        .commands
        .receive_lead(&meta, world.org, &opted_out)
        .await
        .unwrap();
    world.drained().await;
    assert_eq!(
        world.routing_events(lead).await.len(),
        2,
        "an update opted out of routing is not routed"
    );
    assert_eq!(world.owner(lead).await, Some(Owner::Queue(queues[1])));
    world.stop().await;
}

#[tokio::test]
async fn leads_from_the_intake_are_routed_in_the_transaction_that_receives_them_once_and_fairly() {
    let world = World::start(1).await;
    let intake = world.intake(2).await;
    let users = world.users(3).await;
    let pool = world
        .pool(&[(users[0], 3), (users[1], 2), (users[2], 1)])
        .await;
    world.publish(to(Target::Pool(pool))).await;
    world.publish_created(600).await;
    assert!(
        world.routed(600, Duration::from_secs(120)).await,
        "every lead is routed"
    );
    world.drained().await;
    // Each decision is in its lead's receiving transaction, triggered by its LeadReceived.
    let inline: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {EVENTS_TABLE} r JOIN {EVENTS_TABLE} d
            ON d.aggregate_id = r.aggregate_id AND d.aggregate_type = 'Lead'
           AND d.event_type = 'LeadRouted' AND r.event_type = 'LeadReceived'
         WHERE d.transaction_id = r.transaction_id
           AND d.payload->'LeadRouted'->>'trigger' = r.event_id::text"
    ))
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(inline, 600);
    let (decisions, picks): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted')),
                count(*) FILTER (WHERE event_type = 'PoolMemberPicked')
           FROM {EVENTS_TABLE}"
    ))
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (decisions, picks),
        (600, 600),
        "the router consumer, seeing each trigger decided, adds nothing"
    );
    let owners = eventually(Duration::from_secs(30), || async {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT owner_id::text FROM rm_leads WHERE org_id = $1 AND owner_id IS NOT NULL",
        )
        .bind(world.org.0)
        .fetch_all(&world.app.db.pool)
        .await
        .ok()?;
        (rows.len() == 600).then_some(rows)
    })
    .await
    .expect("the leads projection shows the 600 owners");
    for (user, weight) in users.iter().zip([3.0, 2.0, 1.0]) {
        let share = 600.0 * weight / 6.0;
        let got = owners.iter().filter(|o| **o == user.to_string()).count() as f64;
        assert!(
            (got - share).abs() <= 1.0,
            "{got} leads against a share of {share}"
        );
    }
    intake.stop().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_intake_processes_racing_for_one_pool_route_every_lead_and_dead_letter_none() {
    use leadroute_app::Commands;
    let world = World::start(0).await;
    let users = world.users(5).await;
    let members: Vec<(PartnerUserId, u32)> = users.iter().map(|u| (*u, 1)).collect();
    let pool = world.pool(&members).await;
    world.publish(to(Target::Pool(pool))).await;
    // Two processes: each its own event store cache, both deciding picks of the one pool.
    let mut intakes = Vec::new();
    for _ in 0..2 {
        let commands = Commands::new(world.app.db.pool.clone());
        intakes.push(
            Tasks::intake(&commands, &world.nats.url, world.names.clone(), 2)
                .await
                .unwrap(),
        );
    }
    let leads = 1000;
    world.publish_created(leads).await;
    assert!(
        world.routed(leads as i64, Duration::from_secs(180)).await,
        "every lead is routed"
    );
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&world.app.db.pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "lost races are not failures");
    // One fair rotation across both processes: 1,000 leads over 5 equal members.
    let shares: Vec<(Option<String>, i64)> = sqlx::query_as(&format!(
        "SELECT payload->'PoolMemberPicked'->'member'->>'id', count(*) FROM {EVENTS_TABLE}
          WHERE event_type = 'PoolMemberPicked' GROUP BY 1"
    ))
    .fetch_all(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(shares.len(), 5);
    assert!(shares.iter().all(|(_, n)| *n == 200), "{shares:?}");
    for intake in intakes {
        intake.stop().await;
    }
    world.stop().await;
}

/// The trigger kind of a lead's last routing decision.
async fn last_trigger(world: &World, lead: leadroute_domain::ids::LeadId) -> String {
    let payload = world.app.last_payload(lead).await;
    let decision = payload
        .as_object()
        .and_then(|event| event.values().next())
        .map(|event| event["decision"]["trigger"].clone());
    decision
        .and_then(|t| t.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn waiting_leads_are_routed_oldest_first_when_a_member_frees_capacity() {
    // No sweep: what moves the waiting leads here is the closing event itself.
    let world = World::start_sweeping(1, Duration::from_secs(3600)).await;
    let users = world.users(2).await;
    let pool = world
        .capped_pool(&[(users[0], 1), (users[1], 1)], Some(1))
        .await;
    world.publish(to(Target::Pool(pool))).await;
    let first = world.lead(fields(&[])).await;
    let second = world.lead(fields(&[])).await;
    assert_eq!(world.decided(first, 1).await, ["LeadRouted"]);
    assert_eq!(world.decided(second, 1).await, ["LeadRouted"]);
    let (a, b) = (world.owner(first).await, world.owner(second).await);
    assert_ne!(a, b);
    // Both members are full: the next two wait, in arrival order.
    let third = world.lead(fields(&[])).await;
    assert_eq!(world.decided(third, 1).await, ["LeadNotRouted"]);
    let fourth = world.lead(fields(&[])).await;
    assert_eq!(world.decided(fourth, 1).await, ["LeadNotRouted"]);
    let waiting = || async {
        world
            .app
            .commands
            .store()
            .waiting(world.org.0, Some(pool.0), None, 10)
            .await
            .unwrap()
    };
    let ids: Vec<_> = waiting().await.into_iter().map(|(_, l)| l).collect();
    assert_eq!(ids, [third.0, fourth.0]);

    // The first lead closes upstream: its place goes to the lead that waited longest.
    world.close(first).await;
    assert_eq!(
        world.decided(third, 2).await,
        ["LeadNotRouted", "LeadRouted"]
    );
    assert_eq!(world.owner(third).await, a);
    assert_eq!(last_trigger(&world, third).await, "freed");
    world.drained().await;
    assert_eq!(
        world.routing_events(fourth).await,
        ["LeadNotRouted"],
        "one place, one lead"
    );

    // The second closes too: the other member frees its place for the next in line.
    world.close(second).await;
    assert_eq!(
        world.decided(fourth, 2).await,
        ["LeadNotRouted", "LeadRouted"]
    );
    assert_eq!(world.owner(fourth).await, b);
    assert!(waiting().await.is_empty());
    world.stop().await;
}

#[tokio::test]
async fn a_waiting_lead_goes_to_a_member_who_resumes_or_whose_pause_runs_out() {
    // A sweep every second catches the pause that ends with no event.
    let world = World::start_sweeping(1, Duration::from_secs(1)).await;
    let users = world.users(1).await;
    let pool = world.pool(&[(users[0], 1)]).await;
    world.publish(to(Target::Pool(pool))).await;
    let meta = world.app.meta();
    let commands = &world.app.commands;
    commands
        .pause_auto_assignment(&meta, world.org, users[0], None)
        .await
        .unwrap();
    let lead = world.lead(fields(&[])).await;
    assert_eq!(world.decided(lead, 1).await, ["LeadNotRouted"]);
    commands
        .resume_auto_assignment(&meta, world.org, users[0])
        .await
        .unwrap();
    assert_eq!(
        world.decided(lead, 2).await,
        ["LeadNotRouted", "LeadRouted"]
    );
    assert_eq!(world.owner(lead).await, Some(Owner::PartnerUser(users[0])));

    // Paused for two seconds: the waiting lead is routed once the pause is over.
    let until = chrono::Utc::now() + chrono::Duration::seconds(2);
    commands
        .pause_auto_assignment(&meta, world.org, users[0], Some(until))
        .await
        .unwrap();
    let later = world.lead(fields(&[])).await;
    assert_eq!(world.decided(later, 1).await, ["LeadNotRouted"]);
    assert_eq!(
        world.decided(later, 2).await,
        ["LeadNotRouted", "LeadRouted"]
    );
    assert!(
        chrono::Utc::now() >= until,
        "routed only after the pause ended"
    );
    world.stop().await;
}

/// Replay the org's lead events (each lead's in its own order) and answer the open leads
/// each owner holds in the end (counted as the store counts: owned, not closed), and how
/// many times each lead was routed. The log's order across transactions is the order they
/// took their ids, not the order they committed, so a replay across leads cannot tell what
/// a member held at the moment of each commit; the end state it can.
async fn replay(world: &World) -> (HashMap<uuid::Uuid, i64>, HashMap<String, usize>) {
    use leadroute_domain::lead::LeadEvent;
    use leadroute_domain::Decider;
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(&format!(
        "SELECT aggregate_id, payload FROM {EVENTS_TABLE} WHERE aggregate_type = 'Lead'
          ORDER BY aggregate_id, sequence"
    ))
    .fetch_all(&world.app.db.pool)
    .await
    .unwrap();
    let mut leads: HashMap<String, Lead> = HashMap::new();
    let mut routed: HashMap<String, usize> = HashMap::new();
    for (id, payload) in rows {
        let event: LeadEvent = serde_json::from_value(payload).unwrap();
        if matches!(event, LeadEvent::LeadRouted { .. }) {
            *routed.entry(id.clone()).or_default() += 1;
        }
        leads.entry(id).or_default().evolve(&event);
    }
    let mut open: HashMap<uuid::Uuid, i64> = HashMap::new();
    for holder in leads.values().filter_map(Lead::holder) {
        *open.entry(holder).or_default() += 1;
    }
    (open, routed)
}

/// Open leads per owner of `org` as the store counts them now.
async fn open_counts(world: &World) -> HashMap<uuid::Uuid, i64> {
    let rows: Vec<(uuid::Uuid, i32)> =
        sqlx::query_as("SELECT owner_id, open FROM owner_open_leads WHERE org_id = $1")
            .bind(world.org.0)
            .fetch_all(&world.app.db.pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(owner, open)| (owner, i64::from(open)))
        .filter(|(_, open)| *open != 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_intakes_and_two_routers_on_capped_pools_never_pass_a_cap_and_route_every_waiting_lead()
{
    use leadroute_app::Commands;
    let world = World::start(0).await;
    let users = world.users(5).await;
    let caps = [1u32, 1, 2, 2, 3];
    let meta = world.app.meta();
    let commands = &world.app.commands;
    // Two pools of the same five members with the same caps, so picks for one member are
    // decided on two pools at once: only the cap guard of the commit keeps it under its cap.
    let mut pools = Vec::new();
    for _ in 0..2 {
        let pool = PoolId::new_random();
        commands
            .create_pool(&meta, world.org, pool, "capped", None)
            .await
            .unwrap();
        for (user, cap) in users.iter().zip(caps) {
            let member = Member::PartnerUser(*user);
            commands
                .add_pool_member(&meta, world.org, pool, member, None, Some(cap))
                .await
                .unwrap();
        }
        pools.push(pool);
    }
    // "Company 1", "Company 1x", "Company 1xx" go to the first pool, the rest to the second.
    let mut spec = to(Target::Pool(pools[1]));
    spec.entries.insert(
        0,
        Entry {
            acceptance_deadline: None,
            fallback: None,
            criteria: vec![Criterion::Prefix {
                field: "company".into(),
                prefix: "Company 1".into(),
            }],
            target: Target::Pool(pools[0]),
            keep_owner: false,
            notify: false,
        },
    );
    world.publish(spec).await;
    // Two processes, each with its own event store cache, running two intake workers and
    // a router (with its waker; no sweep, so every waiting lead moves by an event).
    let mut processes = Vec::new();
    for _ in 0..2 {
        let commands = Commands::new(world.app.db.pool.clone());
        let url = &world.nats.url;
        processes.push(
            Tasks::intake(&commands, url, world.names.clone(), 2)
                .await
                .unwrap(),
        );
        let sweep = Duration::from_secs(3600);
        processes.push(
            Tasks::router_sweeping(&commands, url, world.names.clone(), 1, sweep)
                .await
                .unwrap(),
        );
    }
    // LEADROUTE_LOAD_LEADS runs it bigger (the load run is 5,000).
    let leads = std::env::var("LEADROUTE_LOAD_LEADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let started = std::time::Instant::now();
    world.publish_created(leads).await;
    // Meanwhile, close about two in three of the owned leads, again and again, until every
    // lead has been routed.
    let updated = world.names.crm_subject(world.org.0, "updated");
    let mut closed = std::collections::HashSet::new();
    let all_routed = eventually(Duration::from_secs(240), || async {
        let routed: i64 = sqlx::query_scalar(&format!(
            "SELECT count(DISTINCT aggregate_id) FROM {EVENTS_TABLE} WHERE event_type = 'LeadRouted'"
        ))
        .fetch_one(&world.app.db.pool)
        .await
        .ok()?;
        (routed == leads as i64).then_some(())
    });
    let closer = async {
        loop {
            let owned: Vec<String> = sqlx::query_scalar(
                "SELECT upstream_lead_id FROM rm_leads WHERE org_id = $1 AND owner_id IS NOT NULL",
            )
            .bind(world.org.0)
            .fetch_all(&world.app.db.pool)
            .await
            .unwrap();
            for upstream in owned {
                if uuid::Uuid::new_v4().as_u128() % 3 == 0 || !closed.insert(upstream.clone()) {
                    continue;
                }
                let body = json!({
                    "schema_version": 1, "upstream_event_id": format!("close-{upstream}"),
                    "upstream_system": "crm", "upstream_lead_id": upstream,
                    "occurred_at": "2026-11-28T09:00:00Z", "fields": {"status": "won"}
                });
                world
                    .nats
                    .js
                    .publish(updated.clone(), body.to_string().into())
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // And watch what the members hold, as often as it can.
    let most = std::cell::RefCell::new(HashMap::<uuid::Uuid, i64>::new());
    let watch = async {
        loop {
            for (owner, open) in open_counts(&world).await {
                let mut most = most.borrow_mut();
                let held = most.entry(owner).or_default();
                *held = (*held).max(open);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let routed = tokio::select! {
        routed = all_routed => routed.is_some(),
        _ = closer => unreachable!("the closer never ends"),
        _ = watch => unreachable!("the watch never ends"),
    };
    assert!(routed, "every lead is routed once places free");
    // Closes still on their way are received before anything is counted.
    let (crm, intake) = (world.names.crm_stream(), world.names.intake_consumer());
    leadroute_tests::drained(&world.app.db.pool, &world.nats, &crm, &intake).await;
    eprintln!("{leads} leads routed in {:?}", started.elapsed());
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&world.app.db.pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "lost races and guarded caps are not failures");
    let (open, routed) = replay(&world).await;
    assert_eq!(routed.len(), leads);
    assert!(routed.values().all(|n| *n == 1), "each lead is routed once");
    // The counts the caps are checked against are exactly what the events say ...
    assert_eq!(open_counts(&world).await, open);
    // ... and no member ever held more than its cap.
    let most = most.into_inner();
    eprintln!("most open leads held: {most:?}");
    for (user, cap) in users.iter().zip(caps) {
        let held = most.get(&user.0).copied().unwrap_or(0);
        assert!(
            held <= i64::from(cap),
            "a member with cap {cap} held {held} open leads"
        );
        assert!(held > 0, "every member took leads");
    }
    let waited: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {EVENTS_TABLE} WHERE event_type = 'LeadNotRouted'"
    ))
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert!(
        waited > 0,
        "leads had to wait (else the caps were never in play)"
    );
    let shares: Vec<(Option<String>, i64)> = sqlx::query_as(&format!(
        "SELECT payload->'LeadRouted'->'change'->'to'->>'id', count(*) FROM {EVENTS_TABLE}
          WHERE event_type = 'LeadRouted' GROUP BY 1 ORDER BY 2 DESC"
    ))
    .fetch_all(&world.app.db.pool)
    .await
    .unwrap();
    eprintln!("{waited} decisions left leads waiting; leads per member: {shares:?}");
    let waiting = world
        .app
        .commands
        .store()
        .waiting_targets(world.org.0)
        .await;
    assert!(waiting.unwrap().is_empty(), "no lead waits");
    for process in processes {
        process.stop().await;
    }
    world.stop().await;
}

#[tokio::test]
async fn a_pool_of_queues_takes_turns_and_a_lead_upstream_keeps_from_routing_moves_nothing() {
    let world = World::start(1).await;
    let queues = [
        world.app.staffed_queue(world.org).await,
        world.app.staffed_queue(world.org).await,
    ];
    let pool = PoolId::new_random();
    let meta = world.app.meta();
    let commands = &world.app.commands;
    commands
        .create_pool(&meta, world.org, pool, "queues", None)
        .await
        .unwrap();
    for queue in queues {
        commands
            .add_pool_member(&meta, world.org, pool, Member::Queue(queue), None, None)
            .await
            .unwrap();
    }
    world.publish(to(Target::Pool(pool))).await;
    // Upstream says do not route: the lead is received and nothing else happens.
    let new = NewLead {
        upstream: UpstreamRef {
            system: "crm".into(),
            lead_id: "kept-upstream".into(),
        },
        upstream_event_id: "e1".into(),
        fields: fields(&[]),
        route: false,
        occurred_at: None,
        owner: None,
    };
    let (kept, _) = commands.receive_lead(&meta, world.org, &new).await.unwrap();
    world.drained().await;
    assert!(world.routing_events(kept).await.is_empty());
    assert_eq!(world.owner(kept).await, None);
    // The pool's turn did not move: its first queue gets the next lead, then the second.
    let owners = route_in_turn(&world, 3).await;
    let expected: Vec<Owner> = [queues[0], queues[1], queues[0]]
        .into_iter()
        .map(Owner::Queue)
        .collect();
    assert_eq!(owners, expected);
    world.stop().await;
}
