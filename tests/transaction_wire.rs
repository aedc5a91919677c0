//! The transaction APIs over the wire, request by request, against the
//! real binary: Kafka's error codes for each refusal (timeouts past
//! `transaction.max.timeout.ms`, unknown partitions, wrong producer ids
//! and epochs at old and new versions, a transactional batch for a
//! partition not in the transaction, an EndTxn that does not match the
//! state), KIP-360 epoch bumps and their retries, FindCoordinator for
//! transactions, DescribeTransactions / ListTransactions, and the last
//! stable offset through ListOffsets.

mod common;

use common::broker::Broker;
use common::test_dir;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest,
    EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProduceRequest, ProduceResponse, ProducerId as WireProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom::bench::client::KafkaClient;
use strom::log::batch::build;
use strom::log::{ProducerEpoch, ProducerId};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn create_topic(c: &mut KafkaClient, name: &str) {
    let mut t = CreatableTopic::default();
    t.name = TopicName(s(name));
    t.num_partitions = 2;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 5000;
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &r).await.expect("create");
    assert_eq!(r.topics[0].error_code, 0);
}

/// (error, producer id, epoch).
async fn init(
    c: &mut KafkaClient,
    version: i16,
    id: &str,
    timeout_ms: i32,
    expected: (i64, i16),
) -> (i16, i64, i16) {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(TransactionalId(s(id)));
    r.transaction_timeout_ms = timeout_ms;
    r.producer_id = WireProducerId(expected.0);
    r.producer_epoch = expected.1;
    let r: InitProducerIdResponse = c
        .call(ApiKey::InitProducerId, version, &r)
        .await
        .expect("init producer id");
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// Per-partition errors, in request order.
async fn add_partitions(
    c: &mut KafkaClient,
    version: i16,
    id: &str,
    producer: (i64, i16),
    partitions: &[(&str, i32)],
) -> Vec<i16> {
    let mut r = AddPartitionsToTxnRequest::default();
    r.v3_and_below_transactional_id = TransactionalId(s(id));
    r.v3_and_below_producer_id = WireProducerId(producer.0);
    r.v3_and_below_producer_epoch = producer.1;
    for (topic, p) in partitions {
        let name = TopicName(s(topic));
        match r.v3_and_below_topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partitions.push(*p),
            None => {
                let mut t = AddPartitionsToTxnTopic::default();
                t.name = name;
                t.partitions = vec![*p];
                r.v3_and_below_topics.push(t);
            }
        }
    }
    let r: AddPartitionsToTxnResponse = c
        .call(ApiKey::AddPartitionsToTxn, version, &r)
        .await
        .expect("add partitions");
    partitions
        .iter()
        .map(|(topic, p)| {
            r.results_by_topic_v3_and_below
                .iter()
                .find(|t| t.name.0.as_str() == *topic)
                .and_then(|t| {
                    t.results_by_partition
                        .iter()
                        .find(|x| x.partition_index == *p)
                })
                .map(|x| x.partition_error_code)
                .expect("every partition answered")
        })
        .collect()
}

async fn end(
    c: &mut KafkaClient,
    version: i16,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> i16 {
    let mut r = EndTxnRequest::default();
    r.transactional_id = TransactionalId(s(id));
    r.producer_id = WireProducerId(producer.0);
    r.producer_epoch = producer.1;
    r.committed = commit;
    let r: EndTxnResponse = c.call(ApiKey::EndTxn, version, &r).await.expect("end txn");
    r.error_code
}

/// A transactional batch of 3 records to `topic`-`partition`: (error,
/// base offset).
async fn produce(
    c: &mut KafkaClient,
    topic: &str,
    partition: i32,
    producer: (i64, i16),
    seq: i32,
) -> (i16, i64) {
    let raw = build::simple(1_700_000_000_000, 3, 10, b't');
    let batch = build::transactional(&raw, ProducerId(producer.0), ProducerEpoch(producer.1), seq);
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(batch);
    let mut t = TopicProduceData::default();
    t.name = TopicName(s(topic));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.transactional_id = Some(TransactionalId(s("w")));
    r.acks = -1;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &r).await.expect("produce");
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// ListOffsets latest of `topic`-0: (read_uncommitted, read_committed).
async fn latest(c: &mut KafkaClient, topic: &str) -> (i64, i64) {
    let mut out = [0i64; 2];
    for (i, isolation) in [0i8, 1].into_iter().enumerate() {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = 0;
        p.timestamp = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = vec![p];
        let mut r = ListOffsetsRequest::default();
        r.replica_id = BrokerId(-1);
        r.isolation_level = isolation;
        r.topics = vec![t];
        let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &r).await.expect("list");
        out[i] = r.topics[0].partitions[0].offset;
    }
    (out[0], out[1])
}

/// (error, state, partitions) of one transactional id.
async fn describe(c: &mut KafkaClient, id: &str) -> (i16, String, Vec<(String, i32)>) {
    let mut r = DescribeTransactionsRequest::default();
    r.transactional_ids = vec![TransactionalId(s(id))];
    let r: DescribeTransactionsResponse = c
        .call(ApiKey::DescribeTransactions, 0, &r)
        .await
        .expect("describe");
    let t = &r.transaction_states[0];
    let partitions = t
        .topics
        .iter()
        .flat_map(|d| d.partitions.iter().map(|p| (d.topic.0.to_string(), *p)))
        .collect();
    (t.error_code, t.transaction_state.to_string(), partitions)
}

/// The broker's `/metrics` text.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("metrics listener");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn transaction_requests_get_kafkas_answers() {
    let dir = test_dir();
    let broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    let addr = broker.addr.clone();
    let metrics_addr = broker.metrics_addr.clone();
    common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        create_topic(&mut c, "wire").await;

        let mut fc = FindCoordinatorRequest::default();
        fc.key = s("w");
        fc.key_type = 1;
        let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 2, &fc).await.unwrap();
        assert_eq!(r.error_code, 0);
        assert!(r.port > 0);
        fc.key_type = 7;
        let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 2, &fc).await.unwrap();
        assert_eq!(r.error_code, INVALID_REQUEST);

        let none = (-1, -1);
        let too_long = init(&mut c, 4, "w", 900_001, none).await;
        assert_eq!(too_long.0, INVALID_TRANSACTION_TIMEOUT);
        assert_eq!(init(&mut c, 4, "", 60_000, none).await.0, INVALID_REQUEST);
        let (code, pid, epoch) = init(&mut c, 4, "w", 60_000, none).await;
        assert_eq!((code, epoch), (0, 0));
        let me = (pid, epoch);

        // KIP-360: naming the current epoch bumps it; naming it again (a
        // lost answer's retry) gets the same; a stale one is fenced.
        let bumped = init(&mut c, 4, "w", 60_000, me).await;
        assert_eq!(bumped, (0, pid, 1));
        assert_eq!(init(&mut c, 4, "w", 60_000, me).await, (0, pid, 1));
        assert_eq!(
            init(&mut c, 4, "w", 60_000, (pid, 9)).await.0,
            PRODUCER_FENCED
        );
        assert_eq!(
            init(&mut c, 3, "w", 60_000, (pid, 9)).await.0,
            INVALID_PRODUCER_EPOCH
        );
        let me = (pid, 1);

        // A transactional batch for a partition not in the transaction.
        assert_eq!(produce(&mut c, "wire", 0, me, 0).await.0, INVALID_TXN_STATE);
        assert_eq!(
            describe(&mut c, "nobody").await.0,
            TRANSACTIONAL_ID_NOT_FOUND
        );

        // One unknown partition: nothing is added.
        let mixed =
            add_partitions(&mut c, 3, "w", me, &[("wire", 0), ("nope", 0), ("wire", 9)]).await;
        assert_eq!(
            mixed,
            [
                OPERATION_NOT_ATTEMPTED,
                UNKNOWN_TOPIC_OR_PARTITION,
                UNKNOWN_TOPIC_OR_PARTITION
            ]
        );
        assert_eq!(describe(&mut c, "w").await.1, "Empty");
        let wrong_id = add_partitions(&mut c, 3, "w", (pid + 1, 1), &[("wire", 0)]).await;
        assert_eq!(wrong_id, [INVALID_PRODUCER_ID_MAPPING]);
        assert_eq!(
            add_partitions(&mut c, 1, "w", (pid, 0), &[("wire", 0)]).await,
            [INVALID_PRODUCER_EPOCH]
        );
        assert_eq!(
            add_partitions(&mut c, 2, "w", (pid, 0), &[("wire", 0)]).await,
            [PRODUCER_FENCED]
        );
        assert_eq!(end(&mut c, 3, "w", me, true).await, INVALID_TXN_STATE); // nothing open

        assert_eq!(
            add_partitions(&mut c, 3, "w", me, &[("wire", 0)]).await,
            [0]
        );
        let (code, base) = produce(&mut c, "wire", 0, me, 0).await;
        assert_eq!((code, base), (0, 0));
        let (described_code, state, partitions) = describe(&mut c, "w").await;
        assert_eq!((described_code, state.as_str()), (0, "Ongoing"));
        assert_eq!(partitions, [("wire".to_string(), 0)]);
        // The open transaction holds the last stable offset at its start.
        assert_eq!(latest(&mut c, "wire").await, (3, 0));
        let metrics = scrape(&metrics_addr);
        let gauge = |name: &str| {
            let line = format!("{name}{{topic=\"wire\",partition=\"0\"");
            metrics
                .lines()
                .find(|l| l.starts_with(&line))
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or_else(|| panic!("no {name} in {metrics}"))
                .to_string()
        };
        assert_eq!(gauge("strom_partition_open_transactions"), "1");
        assert_eq!(gauge("strom_partition_last_stable_offset"), "0");
        assert_eq!(gauge("strom_partition_producers"), "1");

        let mut list = ListTransactionsRequest::default();
        list.state_filters = vec![s("Ongoing"), s("Bogus")];
        let r: ListTransactionsResponse = c.call(ApiKey::ListTransactions, 0, &list).await.unwrap();
        assert_eq!(r.unknown_state_filters, vec![s("Bogus")]);
        let listed: Vec<&str> = r
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.0.as_str())
            .collect();
        assert_eq!(listed, ["w"]);

        assert_eq!(end(&mut c, 3, "w", (pid, 0), true).await, PRODUCER_FENCED);
        assert_eq!(end(&mut c, 3, "w", me, true).await, 0);
        // A retry of the commit is answered NONE; an abort of it is not.
        assert_eq!(end(&mut c, 3, "w", me, true).await, 0);
        assert_eq!(end(&mut c, 3, "w", me, false).await, INVALID_TXN_STATE);
        assert_eq!(describe(&mut c, "w").await.1, "CompleteCommit");
        // The commit marker sits at offset 3; everything is stable.
        assert_eq!(latest(&mut c, "wire").await, (4, 4));
        // The producer's next transaction starts its sequences where the
        // last batch ended.
        assert_eq!(
            add_partitions(&mut c, 3, "w", me, &[("wire", 0)]).await,
            [0]
        );
        assert_eq!(produce(&mut c, "wire", 0, me, 3).await, (0, 4));
        assert_eq!(end(&mut c, 3, "w", me, false).await, 0);
        assert_eq!(describe(&mut c, "w").await.1, "CompleteAbort");
        assert_eq!(latest(&mut c, "wire").await, (8, 8));
    });
}
