//! Example-based tests of the rebalance state machine.

use super::*;
use glommio::channels::local_channel::{self, LocalReceiver};

fn cfg() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupConfig::default()
    }
}

fn join_req(member: &str, instance: Option<&str>, v4: bool) -> JoinRequest {
    JoinRequest {
        member_id: member.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: String::new(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: v4,
    }
}

fn waiter<T>() -> (Waiter<T>, LocalReceiver<T>) {
    local_channel::new_bounded(1)
}

fn run<F: std::future::Future<Output = ()> + 'static>(f: F) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("executor")
        .run(f);
}

/// Joins a dynamic v4 member (MEMBER_ID_REQUIRED round first); the
/// join is left pending. Returns its id and where its answer comes.
fn join_new(g: &mut Group, now: Instant) -> (String, LocalReceiver<JoinResponse>) {
    let (tx, _rx) = waiter();
    let first = g
        .join(join_req("", None, true), &cfg(), now, tx)
        .expect("answered");
    assert_eq!(first.error, Some(GroupError::MemberIdRequired));
    let (tx, rx) = waiter();
    assert!(g
        .join(join_req(&first.member_id, None, true), &cfg(), now, tx)
        .is_none());
    (first.member_id, rx)
}

#[test]
fn two_members_join_sync_and_rebalance_when_one_leaves() {
    run(async {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (a, a_join) = join_new(&mut g, now);
        // Alone: the join completes at once, a leads generation 1.
        let ja = a_join.recv().await.expect("joined");
        assert_eq!(
            (ja.error, ja.generation, ja.leader.as_str()),
            (None, 1, a.as_str())
        );
        assert_eq!(ja.members.len(), 1);
        let (tx, _s) = waiter();
        let sa = g.sync(
            &a,
            None,
            1,
            vec![(a.clone(), Bytes::from_static(b"all"))],
            now,
            tx,
        );
        assert!(
            sa.is_none(),
            "the leader's sync is answered through its waiter"
        );
        assert_eq!(g.state, State::Stable);

        // b joins: a is told to rejoin; the join waits for a.
        let (b, b_join) = join_new(&mut g, now);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.heartbeat(&a, None, 1, now),
            Err(GroupError::RebalanceInProgress)
        );
        let (tx, a_join) = waiter();
        assert!(g.join(join_req(&a, None, true), &cfg(), now, tx).is_none());
        let (ja, jb) = (a_join.recv().await.unwrap(), b_join.recv().await.unwrap());
        assert_eq!((ja.generation, jb.generation), (2, 2));
        assert_eq!(ja.leader, a, "the leader stays the leader");
        assert_eq!((ja.members.len(), jb.members.len()), (2, 0));

        // b's sync waits for the leader's assignment.
        let (tx, b_sync) = waiter();
        assert!(g.sync(&b, None, 2, vec![], now, tx).is_none());
        assert_eq!(
            g.sync(&b, None, 1, vec![], now, waiter().0).unwrap().error,
            Some(GroupError::IllegalGeneration)
        );
        let (tx, _a_sync) = waiter();
        let plan = vec![
            (a.clone(), Bytes::from_static(b"p0")),
            (b.clone(), Bytes::from_static(b"p1")),
        ];
        assert!(g.sync(&a, None, 2, plan, now, tx).is_none());
        assert_eq!(
            b_sync.recv().await.unwrap().assignment,
            Bytes::from_static(b"p1")
        );
        assert_eq!(g.heartbeat(&b, None, 2, now), Ok(()));

        // a leaves: b must rejoin and then leads generation 3 alone.
        assert_eq!(g.leave(&a, None, now), Ok(()));
        assert_eq!(
            g.heartbeat(&b, None, 2, now),
            Err(GroupError::RebalanceInProgress)
        );
        let (tx, b_join) = waiter();
        assert!(g.join(join_req(&b, None, true), &cfg(), now, tx).is_none());
        let jb = b_join.recv().await.unwrap();
        assert_eq!((jb.generation, jb.leader.as_str()), (3, b.as_str()));
        assert_eq!(
            g.leave("nobody", None, now),
            Err(GroupError::UnknownMemberId)
        );
        assert_eq!(g.delete(), Err(GroupError::NonEmptyGroup));
    });
}

#[test]
fn an_expired_session_removes_the_member_and_empties_the_group() {
    run(async {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (a, a_join) = join_new(&mut g, now);
        a_join.recv().await.unwrap();
        g.sync(&a, None, 1, vec![], now, waiter().0);
        assert!(!g.tick(now + Duration::from_secs(5)));
        assert!(g.tick(now + Duration::from_secs(11)));
        assert_eq!(g.state, State::Empty);
        assert_eq!(
            g.heartbeat(&a, None, 1, now),
            Err(GroupError::UnknownMemberId)
        );
        // An unused member id handed out expires too.
        let first = g
            .join(join_req("", None, true), &cfg(), now, waiter().0)
            .unwrap();
        assert!(g.tick(now + Duration::from_secs(11)));
        let late = g.join(
            join_req(&first.member_id, None, true),
            &cfg(),
            now,
            waiter().0,
        );
        assert_eq!(late.unwrap().error, Some(GroupError::UnknownMemberId));
        assert_eq!(g.delete(), Ok(()));
    });
}

#[test]
fn a_static_member_rejoins_without_a_rebalance_and_fences_its_old_self() {
    run(async {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (tx, a_join) = waiter();
        assert!(g
            .join(join_req("", Some("i-1"), true), &cfg(), now, tx)
            .is_none());
        let a = a_join.recv().await.unwrap().member_id;
        let (b, b_join) = join_new(&mut g, now);
        let (tx, a_join) = waiter();
        assert!(g
            .join(join_req(&a, Some("i-1"), true), &cfg(), now, tx)
            .is_none());
        let gen = a_join.recv().await.unwrap().generation;
        b_join.recv().await.unwrap();
        let plan = vec![
            (a.clone(), Bytes::from_static(b"pa")),
            (b.clone(), Bytes::from_static(b"pb")),
        ];
        g.sync(&a, Some("i-1"), gen, plan, now, waiter().0);
        assert_eq!(g.state, State::Stable);

        // The instance restarts (new process, no member id): same
        // generation, no rebalance, its assignment back on sync.
        let again = g
            .join(join_req("", Some("i-1"), true), &cfg(), now, waiter().0)
            .expect("answered at once");
        assert_eq!((again.error, again.generation), (None, gen));
        assert_ne!(again.member_id, a);
        // It led the group, so it still does, and sees the members.
        assert_eq!(
            (again.leader.as_str(), again.members.len()),
            (again.member_id.as_str(), 2)
        );
        assert_eq!(g.state, State::Stable);
        assert_eq!(g.heartbeat(&b, None, gen, now), Ok(()));
        let s = g
            .sync(&again.member_id, Some("i-1"), gen, vec![], now, waiter().0)
            .unwrap();
        assert_eq!(s.assignment, Bytes::from_static(b"pa"));
        // The old incarnation is fenced.
        assert_eq!(
            g.heartbeat(&a, Some("i-1"), gen, now),
            Err(GroupError::FencedInstanceId)
        );
    });
}

#[test]
fn bad_joins_get_kafka_errors() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let mut short = join_req("", None, false);
    short.session_timeout = Duration::from_millis(100);
    assert_eq!(
        g.join(short, &cfg(), now, waiter().0).unwrap().error,
        Some(GroupError::InvalidSessionTimeout)
    );
    let mut none = join_req("", None, false);
    none.protocols.clear();
    assert_eq!(
        g.join(none, &cfg(), now, waiter().0).unwrap().error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    assert_eq!(
        g.join(join_req("ghost", None, true), &cfg(), now, waiter().0)
            .unwrap()
            .error,
        Some(GroupError::UnknownMemberId)
    );
    assert_eq!(
        g.check_commit("", None, -1),
        Ok(()),
        "standalone commits to an empty group"
    );
    assert_eq!(
        g.check_commit("ghost", None, 3),
        Err(GroupError::UnknownMemberId)
    );
}
