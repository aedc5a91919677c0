//! The consumer-group state machine against a simple model of its
//! clients: random joins (with changed metadata too), syncs, heartbeats,
//! leaves, restarts of static and dynamic members, and time passing past
//! session timeouts, across four clients. After every step the group's
//! own invariants hold (`Group::check_invariants`) and what the clients
//! were told agrees with Kafka's protocol: the generation never goes
//! back, one leader per generation, every member that joined a generation
//! is in its leader's member list, a successful sync hands each member
//! exactly what the leader assigned it in that generation, and a
//! heartbeat succeeds only for a current member of the current generation.

use bytes::Bytes;
use futures_lite::future::{block_on, poll_once};
use glommio::channels::local_channel::{self, LocalReceiver};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use strom::group::membership::{Group, State};
use strom::group::{GroupConfig, GroupError, JoinRequest, JoinResponse, SyncResponse};

const CLIENTS: usize = 4;
/// Clients 0 and 1 are static members (group.instance.id), 2 and 3 not.
const STATIC: usize = 2;
const SESSION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    Join {
        client: usize,
        new_metadata: bool,
    },
    Sync {
        client: usize,
    },
    Heartbeat {
        client: usize,
    },
    Leave {
        client: usize,
    },
    /// The client process restarts: it forgets its member id.
    Restart {
        client: usize,
    },
    Wait {
        millis: u64,
    },
    /// Every client does what its last answer asks, as a Kafka client
    /// does: rejoins after MEMBER_ID_REQUIRED or REBALANCE_IN_PROGRESS,
    /// syncs after a join.
    React,
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    prop_oneof![
        4 => (client.clone(), any::<bool>()).prop_map(|(client, m)| Op::Join {
            client,
            new_metadata: m && client % 2 == 0,
        }),
        3 => client.clone().prop_map(|client| Op::Sync { client }),
        2 => client.clone().prop_map(|client| Op::Heartbeat { client }),
        1 => client.clone().prop_map(|client| Op::Leave { client }),
        1 => client.prop_map(|client| Op::Restart { client }),
        2 => prop_oneof![Just(100u64), Just(3_000), Just(12_000)]
            .prop_map(|millis| Op::Wait { millis }),
        6 => Just(Op::React),
    ]
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Next {
    #[default]
    Nothing,
    Join,
    Sync,
}

#[derive(Default)]
struct Client {
    member_id: Option<String>,
    generation: i32,
    leads: bool,
    /// The members its join response listed (id, instance id), when it
    /// leads.
    view: Vec<(String, Option<String>)>,
    metadata: u8,
    /// What its last answer asks it to do next.
    next: Next,
    join: Option<LocalReceiver<JoinResponse>>,
    sync: Option<LocalReceiver<SyncResponse>>,
}

/// What the clients were told, to check each answer against.
#[derive(Default)]
struct Model {
    clients: Vec<Client>,
    /// Which client holds each member id it was given.
    owners: BTreeMap<String, usize>,
    highest_generation: i32,
    /// Per generation, which client leads it. A client is one identity:
    /// a static member's new incarnation takes over its old member id
    /// (and its leadership) within the same generation.
    leaders: BTreeMap<i32, usize>,
    /// Per generation, the clients of the members its leader was given
    /// (static members by instance id; a dynamic member whose client
    /// restarted before learning its id is nobody's).
    listed: BTreeMap<i32, BTreeSet<usize>>,
    /// Per generation, the clients told they joined it.
    joined: BTreeMap<i32, BTreeSet<usize>>,
    /// Per generation, what the leader assigned each client.
    plans: BTreeMap<i32, BTreeMap<usize, Bytes>>,
}

fn instance(client: usize) -> Option<String> {
    (client < STATIC).then(|| format!("instance-{client}"))
}

/// Which client a member is: a static member by its instance id (its new
/// incarnations take over its old member ids); a dynamic one by the id it
/// was given (none, if its client restarted before learning it).
fn client_of(model: &Model, member_id: &str, instance_id: &Option<String>) -> Option<usize> {
    match instance_id {
        Some(i) => (0..STATIC).find(|&k| instance(k).as_ref() == Some(i)),
        None => model.owners.get(member_id).copied(),
    }
}

fn join_request(model: &Model, client: usize) -> JoinRequest {
    let c = &model.clients[client];
    JoinRequest {
        member_id: c.member_id.clone().unwrap_or_default(),
        instance_id: instance(client),
        client_id: format!("client-{client}"),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from(vec![c.metadata]))],
        require_known_member_id: true,
    }
}

fn on_join(model: &mut Model, client: usize, r: JoinResponse) {
    match r.error {
        None => {
            assert!(
                r.generation >= model.highest_generation,
                "generation went back: {} after {}",
                r.generation,
                model.highest_generation
            );
            model.highest_generation = r.generation;
            model.owners.insert(r.member_id.clone(), client);
            if let Some(&leader) = model.owners.get(&r.leader) {
                let known = *model.leaders.entry(r.generation).or_insert(leader);
                assert_eq!(known, leader, "two leaders in generation {}", r.generation);
            }
            model.joined.entry(r.generation).or_default().insert(client);
            let c = &mut model.clients[client];
            c.leads = r.leader == r.member_id;
            c.member_id = Some(r.member_id.clone());
            c.generation = r.generation;
            c.next = Next::Sync;
            if c.leads {
                let view: Vec<_> = r
                    .members
                    .iter()
                    .map(|m| (m.id.clone(), m.instance_id.clone()))
                    .collect();
                assert!(
                    view.iter().any(|(id, _)| *id == r.member_id),
                    "the leader is not listed"
                );
                let listed = view
                    .iter()
                    .filter_map(|(id, i)| client_of(model, id, i))
                    .collect();
                model.listed.insert(r.generation, listed);
                model.clients[client].view = view;
            }
        }
        Some(GroupError::MemberIdRequired) => {
            model.owners.insert(r.member_id.clone(), client);
            model.clients[client].member_id = Some(r.member_id);
            model.clients[client].next = Next::Join;
        }
        Some(GroupError::UnknownMemberId | GroupError::FencedInstanceId) => {
            model.clients[client].member_id = None;
        }
        Some(_) => {}
    }
}

fn on_sync(model: &mut Model, client: usize, r: SyncResponse) {
    match r.error {
        None => {}
        Some(GroupError::RebalanceInProgress) => {
            model.clients[client].next = Next::Join;
            return;
        }
        Some(_) => return,
    }
    let generation = model.clients[client].generation;
    let planned = model.plans.get(&generation).unwrap_or_else(|| {
        panic!("client {client} synced generation {generation} before any plan")
    });
    let want = planned.get(&client).cloned().unwrap_or_default();
    assert_eq!(
        r.assignment, want,
        "client {client}, generation {generation}"
    );
}

/// Takes every answer that arrived, joins first (syncs check against
/// plans that joins do not change).
fn deliver(model: &mut Model) {
    for client in 0..CLIENTS {
        let arrived = model.clients[client]
            .join
            .as_ref()
            .and_then(|rx| block_on(poll_once(rx.recv())));
        if let Some(answer) = arrived {
            model.clients[client].join = None;
            if let Some(r) = answer {
                on_join(model, client, r);
            }
        }
    }
    for client in 0..CLIENTS {
        let arrived = model.clients[client]
            .sync
            .as_ref()
            .and_then(|rx| block_on(poll_once(rx.recv())));
        if let Some(answer) = arrived {
            model.clients[client].sync = None;
            if let Some(r) = answer {
                on_sync(model, client, r);
            }
        }
    }
}

fn join(group: &mut Group, model: &mut Model, cfg: &GroupConfig, client: usize, now: Instant) {
    let req = join_request(model, client);
    let (tx, rx) = local_channel::new_bounded(1);
    match group.join(req, cfg, now, tx) {
        Some(r) => on_join(model, client, r),
        None => model.clients[client].join = Some(rx),
    }
}

fn sync(group: &mut Group, model: &mut Model, client: usize, now: Instant) {
    let c = &model.clients[client];
    let Some(member_id) = c.member_id.clone() else {
        return;
    };
    let generation = c.generation;
    let mut assignments = Vec::new();
    if c.leads {
        let mut plan = BTreeMap::new();
        for (id, instance_id) in &c.view {
            let payload = Bytes::from(format!("generation {generation} to {id}"));
            if let Some(owner) = client_of(model, id, instance_id) {
                plan.insert(owner, payload.clone());
            }
            assignments.push((id.clone(), payload));
        }
        // A leader that syncs a generation again sends the same plan.
        model.plans.entry(generation).or_insert(plan);
    }
    let (tx, rx) = local_channel::new_bounded(1);
    let answer = group.sync(
        &member_id,
        instance(client).as_deref(),
        generation,
        assignments,
        now,
        tx,
    );
    match answer {
        Some(r) => on_sync(model, client, r),
        None => model.clients[client].sync = Some(rx),
    }
}

fn heartbeat(group: &mut Group, model: &mut Model, client: usize, now: Instant) {
    let c = &model.clients[client];
    let Some(member_id) = &c.member_id else {
        return;
    };
    let beat = group.heartbeat(member_id, instance(client).as_deref(), c.generation, now);
    match beat {
        Ok(()) => {
            assert!(
                group.member(member_id).is_some(),
                "a heartbeat from a non-member"
            );
            assert_eq!(
                group.generation, c.generation,
                "a heartbeat from an old generation"
            );
        }
        Err(GroupError::RebalanceInProgress) => model.clients[client].next = Next::Join,
        Err(_) => {}
    }
}

/// Each client that is not waiting for an answer does what its last one
/// asked.
fn react(group: &mut Group, model: &mut Model, cfg: &GroupConfig, now: Instant) {
    for client in 0..CLIENTS {
        let c = &model.clients[client];
        if c.join.is_some() || c.sync.is_some() {
            continue;
        }
        let next = std::mem::take(&mut model.clients[client].next);
        match next {
            Next::Join => join(group, model, cfg, client, now),
            Next::Sync => sync(group, model, client, now),
            Next::Nothing => {}
        }
    }
}

fn check(ops: Vec<Op>, initial_delay: bool) {
    let cfg = GroupConfig {
        initial_rebalance_delay: Duration::from_millis(if initial_delay { 1_000 } else { 0 }),
        ..GroupConfig::default()
    };
    let mut group = Group::new("model");
    let mut model = Model {
        clients: (0..CLIENTS).map(|_| Client::default()).collect(),
        ..Model::default()
    };
    let mut now = Instant::now();
    let mut generation = group.generation;
    for op in ops {
        match op {
            Op::Join {
                client,
                new_metadata,
            } => {
                if new_metadata {
                    model.clients[client].metadata ^= 1;
                }
                join(&mut group, &mut model, &cfg, client, now);
            }
            Op::Sync { client } => sync(&mut group, &mut model, client, now),
            Op::Heartbeat { client } => heartbeat(&mut group, &mut model, client, now),
            Op::React => react(&mut group, &mut model, &cfg, now),
            Op::Leave { client } => {
                if let Some(id) = model.clients[client].member_id.take() {
                    let _ = group.leave(&id, instance(client).as_deref(), now);
                }
            }
            Op::Restart { client } => {
                model.clients[client] = Client {
                    metadata: model.clients[client].metadata,
                    ..Client::default()
                };
            }
            Op::Wait { millis } => {
                now += Duration::from_millis(millis);
                group.tick(now);
            }
        }
        deliver(&mut model);
        group.check_invariants();
        assert!(
            group.generation >= generation,
            "the group's generation went back"
        );
        generation = group.generation;
        for (g, joined) in &model.joined {
            if let Some(listed) = model.listed.get(g) {
                assert!(
                    joined.is_subset(listed),
                    "generation {g}: clients {joined:?} joined, the leader listed {listed:?}"
                );
            }
        }
        if group.state == State::Empty {
            assert!(group.members.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_group_state_machine_keeps_its_invariants_and_its_promises(
        ops in prop::collection::vec(op(), 1..80),
        initial_delay in any::<bool>(),
    ) {
        check(ops, initial_delay);
    }
}
