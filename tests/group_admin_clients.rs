//! Clients beyond librdkafka's C API: confluent-kafka (Python) drives the
//! consumer-group admin APIs, kafka-python (its own protocol code) produces
//! and consumes in a group, and strom's own protocol client (the
//! kafka-protocol codecs) drives OffsetDelete, which neither rdkafka nor
//! confluent-kafka exposes.

mod common;

use common::broker::Broker;
use common::test_dir;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::process::Command;
use std::time::{Duration, Instant};
use strom::bench::client::KafkaClient;

fn start(dir: &std::path::Path) -> Broker {
    let config = dir.join("strom.toml");
    std::fs::write(&config, "\"group.initial.rebalance.delay.ms\" = 0\n").expect("config");
    Broker::start_with(
        &dir.join("data"),
        &["--shards", "2", "--config", config.to_str().expect("utf-8")],
    )
}

#[test]
fn confluent_kafka_python_lists_describes_alters_and_deletes_groups() {
    let dir = test_dir();
    let broker = start(dir.path());
    run_python("group_admin.py", &broker.addr);
}

#[test]
fn kafka_python_produces_consumes_in_a_group_reads_its_offsets_and_transacts() {
    let dir = test_dir();
    let broker = start(dir.path());
    run_python("kafka_python_client.py", &broker.addr);
}

/// Runs `tests/python/SCRIPT ADDR` (clients that .ci/run pip-installs) and
/// asserts it printed "ok" and exited cleanly within 90 s.
fn run_python(script: &str, addr: &str) {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .args([&path, addr])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (with confluent-kafka and kafka-python: .ci/run installs them)");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{script}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn group(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

#[test]
fn offset_delete_drops_one_partitions_offset_of_an_empty_group() {
    let dir = test_dir();
    let broker = start(dir.path());
    // One message (kcat waits for its delivery, so the topic exists).
    let message = dir.path().join("message");
    std::fs::write(&message, "x").expect("message file");
    let out = Command::new("kcat")
        .args(["-b", &broker.addr, "-t", "od", "-P", "-p", "0"])
        .arg(&message)
        .output()
        .expect("kcat creates the topic");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = broker.addr.clone();
    let (deleted, unknown, after): (i16, i16, Vec<(i32, i64)>) = common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        // Standalone commits for partition 0 (and a missing group later).
        let mut commit = OffsetCommitRequest::default();
        commit.group_id = group("od-group");
        commit.generation_id_or_member_epoch = -1;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = topic("od");
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = 5;
        t.partitions = vec![p];
        commit.topics = vec![t];
        let r: OffsetCommitResponse = c
            .call(ApiKey::OffsetCommit, 7, &commit)
            .await
            .expect("commit");
        assert_eq!(r.topics[0].partitions[0].error_code, 0);

        let delete = |g: &str| {
            let mut d = OffsetDeleteRequest::default();
            d.group_id = group(g);
            let mut t = OffsetDeleteRequestTopic::default();
            t.name = topic("od");
            let mut p = OffsetDeleteRequestPartition::default();
            p.partition_index = 0;
            t.partitions = vec![p];
            d.topics = vec![t];
            d
        };
        let r: OffsetDeleteResponse = c
            .call(ApiKey::OffsetDelete, 0, &delete("od-group"))
            .await
            .expect("offset delete");
        let deleted = r.error_code.max(r.topics[0].partitions[0].error_code);
        let r: OffsetDeleteResponse = c
            .call(ApiKey::OffsetDelete, 0, &delete("no-such-group"))
            .await
            .expect("offset delete");
        let unknown = r.error_code;

        let mut fetch = OffsetFetchRequest::default();
        fetch.group_id = group("od-group");
        let mut t = OffsetFetchRequestTopic::default();
        t.name = topic("od");
        t.partition_indexes = vec![0];
        fetch.topics = Some(vec![t]);
        let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 6, &fetch).await.expect("fetch");
        let after = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        (deleted, unknown, after)
    });
    assert_eq!(deleted, 0, "NONE");
    assert_eq!(unknown, 69, "GROUP_ID_NOT_FOUND");
    assert_eq!(after, vec![(0, -1)], "the offset is gone");
}
