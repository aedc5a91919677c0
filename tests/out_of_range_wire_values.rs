//! Wire values strom's types cannot hold get Kafka's error for that item,
//! never a cast, and the rest of the request is served: a negative
//! partition index (Produce, Fetch, ListOffsets, OffsetCommit) is
//! UNKNOWN_TOPIC_OR_PARTITION, a negative fetch offset OFFSET_OUT_OF_RANGE,
//! and acks other than -1/0/1 refuse the whole produce request
//! (INVALID_REQUIRED_ACKS) with nothing appended. Driven with raw
//! requests (no client library sends such values) against the binary.

mod common;

use common::broker::Broker;
use common::test_dir;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, GroupId,
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom::bench::client::KafkaClient;
use strom::log::batch::build;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const INVALID_REQUIRED_ACKS: i16 = 21;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("wire"))
}

fn produce(acks: i16, partitions: &[i32]) -> ProduceRequest {
    let mut t = TopicProduceData::default();
    t.name = topic();
    t.partition_data = partitions
        .iter()
        .map(|&index| {
            let mut p = PartitionProduceData::default();
            p.index = index;
            p.records = Some(build::simple(1_700_000_000_000, 2, 10, b'w'));
            p
        })
        .collect();
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    r
}

fn codes(r: &ProduceResponse) -> Vec<i16> {
    r.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect()
}

async fn latest(c: &mut KafkaClient, partitions: &[i32]) -> Vec<(i16, i64)> {
    let mut t = ListOffsetsTopic::default();
    t.name = topic();
    t.partitions = partitions
        .iter()
        .map(|&index| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = index;
            p.timestamp = -1;
            p
        })
        .collect();
    let mut r = ListOffsetsRequest::default();
    r.replica_id = kafka_protocol::messages::BrokerId(-1);
    r.topics = vec![t];
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &r).await.expect("list");
    r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect()
}

async fn fetch(c: &mut KafkaClient, items: &[(i32, i64)]) -> Vec<(i16, usize)> {
    let mut t = FetchTopic::default();
    t.topic = topic();
    t.partitions = items
        .iter()
        .map(|&(index, offset)| {
            let mut p = FetchPartition::default();
            p.partition = index;
            p.fetch_offset = offset;
            p.partition_max_bytes = 1 << 20;
            p
        })
        .collect();
    let mut r = FetchRequest::default();
    r.replica_id = kafka_protocol::messages::BrokerId(-1);
    r.max_wait_ms = 0;
    r.max_bytes = 1 << 20;
    r.topics = vec![t];
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &r).await.expect("fetch");
    r.responses[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.records.as_ref().map_or(0, |b| b.len())))
        .collect()
}

async fn commit(c: &mut KafkaClient, partitions: &[i32]) -> Vec<i16> {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = topic();
    t.partitions = partitions
        .iter()
        .map(|&index| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = index;
            p.committed_offset = 1;
            p
        })
        .collect();
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("wire-group"));
    r.generation_id_or_member_epoch = -1;
    r.topics = vec![t];
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 7, &r).await.expect("commit");
    r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

#[test]
fn wire_values_out_of_range_get_kafka_errors_per_item() {
    let dir = test_dir();
    let broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    let addr = broker.addr.clone();
    common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        let mut create = CreateTopicsRequest::default();
        let mut t = CreatableTopic::default();
        t.name = topic();
        t.num_partitions = 2;
        t.replication_factor = 1;
        create.topics = vec![t];
        create.timeout_ms = 5000;
        let created: CreateTopicsResponse = c
            .call(ApiKey::CreateTopics, 5, &create)
            .await
            .expect("create");
        assert_eq!(created.topics[0].error_code, 0);

        // A negative index and a partition past the topic's: only they fail.
        let r: ProduceResponse = c
            .call(ApiKey::Produce, 7, &produce(1, &[0, -1, 2, 1]))
            .await
            .expect("produce");
        let unknown = UNKNOWN_TOPIC_OR_PARTITION;
        assert_eq!(codes(&r), vec![0, unknown, unknown, 0]);
        assert_eq!(
            latest(&mut c, &[0, 1, -1]).await,
            vec![(0, 2), (0, 2), (unknown, -1)]
        );

        // acks=2 refuses every partition and appends nothing.
        let r: ProduceResponse = c
            .call(ApiKey::Produce, 7, &produce(2, &[0, 1]))
            .await
            .expect("produce");
        assert_eq!(codes(&r), vec![INVALID_REQUIRED_ACKS; 2]);
        assert_eq!(latest(&mut c, &[0, 1]).await, vec![(0, 2), (0, 2)]);

        // Fetch: the good partition's records come back beside the errors.
        let fetched = fetch(&mut c, &[(-1, 0), (0, -5), (0, 0)]).await;
        assert_eq!(fetched[0], (unknown, 0));
        assert_eq!(fetched[1], (OFFSET_OUT_OF_RANGE, 0));
        assert_eq!(fetched[2].0, 0);
        assert!(fetched[2].1 > 0, "partition 0's batch is served");

        assert_eq!(commit(&mut c, &[-1, 0]).await, vec![unknown, 0]);
    });
}
