//! Topic administration through librdkafka's admin API against the real
//! binary: CreatePartitions, DescribeConfigs, AlterConfigs, DeleteTopics,
//! and Kafka's error codes for what is refused, including partitions past
//! what the broker can hold. Changes survive a restart.

mod common;

use common::broker::Broker;
use common::test_dir;
use futures_lite::future::block_on;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)))
}

/// (value, where it comes from: "topic" override or "default").
fn topic_config(
    a: &AdminClient<DefaultClientContext>,
    topic: &str,
    key: &str,
) -> (String, &'static str) {
    let res = block_on(a.describe_configs([&ResourceSpecifier::Topic(topic)], &opts())).unwrap();
    let resource = res.into_iter().next().unwrap().expect("described");
    let entry = resource
        .get(key)
        .unwrap_or_else(|| panic!("{key} not described"));
    let source = match entry.source {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::Default => "default",
        _ => "other",
    };
    (entry.value.clone().unwrap_or_default(), source)
}

fn partitions_of(a: &AdminClient<DefaultClientContext>, topic: &str) -> usize {
    let md = a
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()[0].partitions().len()
}

#[test]
fn topics_grow_change_configs_and_refuse_bad_requests() {
    let dir = test_dir();
    let mut broker = Broker::start(&dir.path().join("data"));
    let a = admin(&broker.addr);
    let created = block_on(a.create_topics(
        [&NewTopic::new("admin", 2, TopicReplication::Fixed(1)).set("retention.ms", "3600000")],
        &opts(),
    ))
    .unwrap();
    assert!(created[0].is_ok());

    // Refusals carry Kafka's codes.
    let again = block_on(a.create_topics(
        [&NewTopic::new("admin", 1, TopicReplication::Fixed(1))],
        &opts(),
    ))
    .unwrap();
    assert_eq!(
        again[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::TopicAlreadyExists
    );
    let rf3 = block_on(a.create_topics(
        [&NewTopic::new("rf3", 1, TopicReplication::Fixed(3))],
        &opts(),
    ))
    .unwrap();
    assert_eq!(
        rf3[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidReplicationFactor
    );
    let bad_name = block_on(a.create_topics(
        [&NewTopic::new("bad name!", 1, TopicReplication::Fixed(1))],
        &opts(),
    ))
    .unwrap();
    assert_eq!(
        bad_name[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidTopic
    );
    let bad_config = block_on(a.create_topics(
        [&NewTopic::new("cfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon")],
        &opts(),
    ))
    .unwrap();
    assert_eq!(
        bad_config[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidConfig
    );

    // DescribeConfigs: the override and a default.
    assert_eq!(
        topic_config(&a, "admin", "retention.ms"),
        ("3600000".into(), "topic")
    );
    assert_eq!(
        topic_config(&a, "admin", "segment.bytes"),
        ("1073741824".into(), "default")
    );

    // AlterConfigs replaces the overrides.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("admin")).set("segment.bytes", "1048576");
    let altered = block_on(a.alter_configs([&alter], &opts())).unwrap();
    assert!(altered[0].is_ok());
    assert_eq!(
        topic_config(&a, "admin", "segment.bytes"),
        ("1048576".into(), "topic")
    );
    assert_eq!(topic_config(&a, "admin", "retention.ms").1, "default");
    let bad = AlterConfig::new(ResourceSpecifier::Topic("admin")).set("cleanup.policy", "compact");
    // rust-rdkafka drops per-resource AlterConfigs errors, so check the
    // effect: a refused request changes nothing (an accepted one would also
    // have dropped the segment.bytes override).
    block_on(a.alter_configs([&bad], &opts())).unwrap();
    assert_eq!(topic_config(&a, "admin", "cleanup.policy").0, "delete");
    assert_eq!(
        topic_config(&a, "admin", "segment.bytes"),
        ("1048576".into(), "topic")
    );

    // CreatePartitions grows, never shrinks.
    let grown = block_on(a.create_partitions([&NewPartitions::new("admin", 5)], &opts())).unwrap();
    assert!(grown[0].is_ok());
    assert_eq!(partitions_of(&a, "admin"), 5);
    let shrink = block_on(a.create_partitions([&NewPartitions::new("admin", 3)], &opts())).unwrap();
    assert_eq!(
        shrink[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );

    // All of it survives a restart.
    drop(a);
    broker.stop();
    let broker = Broker::start(&broker.data_dir.clone());
    let a = admin(&broker.addr);
    assert_eq!(partitions_of(&a, "admin"), 5);
    assert_eq!(topic_config(&a, "admin", "segment.bytes").0, "1048576");

    // DeleteTopics removes the topic and its files.
    let deleted = block_on(a.delete_topics(&["admin"], &opts())).unwrap();
    assert!(deleted[0].is_ok());
    assert!(!broker.data_dir.join("admin-0").exists());
    let missing = block_on(a.delete_topics(&["admin"], &opts())).unwrap();
    assert_eq!(
        missing[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::UnknownTopicOrPartition
    );
}

fn create(
    a: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
) -> Result<(), RDKafkaErrorCode> {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = block_on(a.create_topics([&topic], &opts())).unwrap();
    results[0].clone().map(|_| ()).map_err(|(_, code)| code)
}

fn grow(
    a: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: usize,
) -> Result<(), RDKafkaErrorCode> {
    let results =
        block_on(a.create_partitions([&NewPartitions::new(name, partitions)], &opts())).unwrap();
    results[0].clone().map(|_| ()).map_err(|(_, code)| code)
}

fn topic_names(a: &AdminClient<DefaultClientContext>) -> Vec<String> {
    let md = a
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

#[test]
fn partitions_past_what_the_broker_can_hold_are_refused_and_never_half_created() {
    // Proves: CreateTopics and CreatePartitions past max.broker.partitions,
    // or past the file descriptors the process has left, get
    // POLICY_VIOLATION and a log line naming the limit; what fits is still
    // created; nothing refused exists after a restart.
    let dir = test_dir();
    let data = dir.path().join("data");
    let mut broker = Broker::start_with(&data, &["--max-broker-partitions", "40"]);
    let a = admin(&broker.addr);
    assert_eq!(create(&a, "fits", 30), Ok(()));
    assert_eq!(
        create(&a, "over", 20),
        Err(RDKafkaErrorCode::PolicyViolation)
    );
    assert_eq!(grow(&a, "fits", 50), Err(RDKafkaErrorCode::PolicyViolation));
    assert_eq!(grow(&a, "fits", 40), Ok(()));
    assert!(
        broker.log_text().contains("over max.broker.partitions 40"),
        "{}",
        broker.log_text()
    );
    drop(a);
    broker.stop();

    // The descriptor budget: the same broker without the maximum, its
    // RLIMIT_NOFILE lowered while it runs to leave room for ~100 more.
    let mut broker = Broker::start(&data);
    let a = admin(&broker.addr);
    assert_eq!(partitions_of(&a, "fits"), 40);
    assert!(!topic_names(&a).contains(&"over".to_string()));
    let limit = broker.open_files() + 1024 + 100;
    broker.set_open_files_limit(limit);
    assert_eq!(
        create(&a, "many", 500),
        Err(RDKafkaErrorCode::PolicyViolation)
    );
    assert!(
        broker
            .log_text()
            .contains(&format!("RLIMIT_NOFILE {limit}")),
        "{}",
        broker.log_text()
    );
    assert_eq!(create(&a, "some", 20), Ok(()));
    assert_eq!(partitions_of(&a, "some"), 20);
    drop(a);
    broker.stop();
    let broker = Broker::start(&data);
    let a = admin(&broker.addr);
    let names = topic_names(&a);
    assert!(names.contains(&"some".to_string()) && names.contains(&"fits".to_string()));
    assert!(!names.contains(&"many".to_string()) && !names.contains(&"over".to_string()));
    assert!(!data.join("many-0").exists() && !data.join("over-0").exists());
}
