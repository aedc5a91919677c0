//! Idempotent producers, as Kafka serves them, against the real binary:
//! producer ids from InitProducerId are never handed out twice (20 at once,
//! and 20 more after kill -9); a resent batch is stored once and answered
//! with its first offset, also after kill -9 (the producer state is rebuilt
//! from the log); a gap is OUT_OF_ORDER_SEQUENCE_NUMBER; a stale epoch
//! INVALID_PRODUCER_EPOCH. And librdkafka's idempotent producer, the
//! broker SIGKILLed and restarted five times under it and every connection
//! cut every 100 ms by a proxy (so requests the broker stored lose their
//! answers and are retried), leaves every acknowledged message exactly
//! once, in send order per partition.

mod common;

use common::broker::Broker;
use common::proxy::Proxy;
use common::test_dir;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom::bench::client::KafkaClient;
use strom::log::batch::build;
use strom::log::{ProducerEpoch, ProducerId};

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_RECORD: i16 = 87;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("idem"))
}

async fn create_topic(c: &mut KafkaClient) {
    let mut t = CreatableTopic::default();
    t.name = topic();
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 5000;
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &r).await.expect("create");
    assert_eq!(r.topics[0].error_code, 0);
}

async fn init_producer_id(addr: String) -> i64 {
    let mut c = KafkaClient::connect(&addr).await.expect("connect");
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None; // an idempotent producer, as librdkafka asks
    req.transaction_timeout_ms = -1;
    let r: InitProducerIdResponse = c
        .call(ApiKey::InitProducerId, 4, &req)
        .await
        .expect("init producer id");
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    r.producer_id.0
}

/// 20 InitProducerId calls at once, each on its own connection (so over
/// both shards); their ids.
fn twenty_ids(addr: &str) -> BTreeSet<i64> {
    let addr = addr.to_string();
    common::run(move || async move {
        let calls: Vec<_> = (0..20)
            .map(|_| glommio::spawn_local(init_producer_id(addr.clone())))
            .collect();
        let mut ids = BTreeSet::new();
        for call in calls {
            ids.insert(call.await);
        }
        ids
    })
}

/// Produces one batch of `records` from producer `pid`; (error, base offset).
async fn produce(
    c: &mut KafkaClient,
    pid: i64,
    epoch: i16,
    seq: i32,
    records: usize,
) -> (i16, i64) {
    produce_raw(c, idempotent_batch(pid, epoch, seq, records)).await
}

/// One batch of `records` from producer `pid`.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> bytes::Bytes {
    let raw = build::simple(1_700_000_000_000, records, 20, b'i');
    build::with_producer(&raw, ProducerId(pid), ProducerEpoch(epoch), seq)
}

/// Produces a record set to partition 0; (error, base offset).
async fn produce_raw(c: &mut KafkaClient, records: bytes::Bytes) -> (i16, i64) {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = topic();
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &r).await.expect("produce");
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// (producer id, epoch, last sequence, last timestamp) of partition 0's
/// producers.
async fn describe_producers(c: &mut KafkaClient) -> Vec<(i64, i32, i32, i64)> {
    let mut t = kafka_protocol::messages::describe_producers_request::TopicRequest::default();
    t.name = topic();
    t.partition_indexes = vec![0];
    let mut r = kafka_protocol::messages::DescribeProducersRequest::default();
    r.topics = vec![t];
    let r: kafka_protocol::messages::DescribeProducersResponse = c
        .call(ApiKey::DescribeProducers, 0, &r)
        .await
        .expect("describe producers");
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.active_producers
        .iter()
        .map(|a| {
            (
                a.producer_id.0,
                a.producer_epoch,
                a.last_sequence,
                a.last_timestamp,
            )
        })
        .collect()
}

async fn log_end(c: &mut KafkaClient) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = topic();
    t.partitions = vec![p];
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &r).await.expect("list");
    r.topics[0].partitions[0].offset
}

#[test]
fn retries_are_stored_once_gaps_and_stale_epochs_are_refused_and_ids_never_repeat() {
    let dir = test_dir();
    let mut broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    let first = twenty_ids(&broker.addr);
    assert_eq!(
        first.len(),
        20,
        "20 concurrent InitProducerId calls, 20 ids"
    );

    let addr = broker.addr.clone();
    let pid = *first.iter().next().expect("an id");
    common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        create_topic(&mut c).await;
        assert_eq!(produce(&mut c, pid, 0, 0, 3).await, (0, 0));
        assert_eq!(produce(&mut c, pid, 0, 3, 2).await, (0, 3));
        // Both resent: answered with their first offsets, stored never.
        assert_eq!(produce(&mut c, pid, 0, 0, 3).await, (0, 0));
        assert_eq!(produce(&mut c, pid, 0, 3, 2).await, (0, 3));
        assert_eq!(log_end(&mut c).await, 5);
        // A gap.
        assert_eq!(
            produce(&mut c, pid, 0, 9, 1).await.0,
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        // A new epoch starts at 0; the old one is then stale.
        assert_eq!(produce(&mut c, pid, 1, 0, 1).await, (0, 5));
        assert_eq!(
            produce(&mut c, pid, 0, 5, 1).await.0,
            INVALID_PRODUCER_EPOCH
        );
        // Two batches of a producer in one record set, and a batch with a
        // producer id but no sequence: INVALID_RECORD, as Kafka answers.
        let mut two = idempotent_batch(pid, 1, 1, 1).to_vec();
        two.extend_from_slice(&idempotent_batch(pid, 1, 2, 1));
        assert_eq!(produce_raw(&mut c, two.into()).await.0, INVALID_RECORD);
        assert_eq!(produce(&mut c, pid, 1, -3, 1).await.0, INVALID_RECORD);
        assert_eq!(log_end(&mut c).await, 6);
        // DescribeProducers: epoch 1, its one batch's sequence and time.
        assert_eq!(
            describe_producers(&mut c).await,
            vec![(pid, 1, 0, 1_700_000_000_000)]
        );
    });

    broker.restart_after_kill();
    let second = twenty_ids(&broker.addr);
    assert_eq!(second.len(), 20);
    assert!(
        first.is_disjoint(&second),
        "ids handed out again after kill -9"
    );
    let addr = broker.addr.clone();
    common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        // The state came back from the log: the last batch is a retry.
        assert_eq!(produce(&mut c, pid, 1, 0, 1).await, (0, 5));
        assert_eq!(produce(&mut c, pid, 1, 1, 1).await, (0, 6));
        assert_eq!(log_end(&mut c).await, 7);
    });
}

/// (partition, offset, value) of a delivered message, or the error.
type Delivery = Result<(i32, i64, String), String>;

/// Every delivery report.
#[derive(Default, Clone)]
struct Deliveries(Arc<Mutex<Vec<Delivery>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let r = match result {
            Ok(m) => Ok((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap().push(r);
    }
}

const PARTITIONS: i32 = 3;

#[test]
fn librdkafka_idempotent_producer_across_five_sigkills_leaves_each_message_once_in_order() {
    let dir = test_dir();
    let proxy = Proxy::start();
    let partitions = PARTITIONS.to_string();
    let mut broker = Broker::start_with(
        &dir.path().join("data"),
        &[
            "--shards",
            "2",
            "--num-partitions",
            &partitions,
            "--advertised-listener",
            &proxy.addr,
        ],
    );
    proxy.point_at(&broker.addr);
    let deliveries = Deliveries::default();
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", &proxy.addr)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "120000")
        .set("reconnect.backoff.max.ms", "200")
        .create_with_context(deliveries.clone())
        .expect("producer");
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut next = 0u64;
    for _restart in 0..5 {
        let until = Instant::now() + Duration::from_millis(700);
        let mut next_cut = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            if Instant::now() >= next_cut {
                proxy.cut_all();
                next_cut += Duration::from_millis(100);
            }
            for _ in 0..50 {
                let partition = (next % PARTITIONS as u64) as i32;
                let value = format!("m-{next}");
                let record = BaseRecord::<(), str>::to("idem-load")
                    .partition(partition)
                    .payload(&value);
                if producer.send(record).is_ok() {
                    sent.entry(partition).or_default().push(value);
                    next += 1;
                }
            }
            producer.poll(Duration::from_millis(5));
        }
        broker.restart_after_kill();
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every message delivered");
    let reports = deliveries.0.lock().unwrap().clone();
    let acked: Vec<(i32, i64, String)> = reports
        .iter()
        .map(|r| {
            r.clone()
                .unwrap_or_else(|e| panic!("a message failed: {e}"))
        })
        .collect();
    assert_eq!(acked.len() as u64, next, "every message acknowledged");

    // Read every partition back.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &proxy.addr)
        .set("group.id", "idem-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("idem-load", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut read: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.values().map(Vec::len).sum::<usize>() < acked.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} read back",
            read.values().map(Vec::len).sum::<usize>(),
            acked.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            read.entry(m.partition()).or_default().push(value);
        }
    }
    // Nothing more arrives: no duplicate beyond the count either.
    let extra = consumer.poll(Duration::from_secs(2));
    assert!(!matches!(extra, Some(Ok(_))), "a message beyond those sent");
    for (partition, values) in &sent {
        assert_eq!(
            read.get(partition),
            Some(values),
            "partition {partition}: every message once, in send order"
        );
    }
}

#[test]
fn a_corrupt_producer_snapshot_is_rebuilt_from_the_log() {
    let dir = test_dir();
    let data = dir.path().join("data");
    let mut broker = Broker::start_with(&data, &["--shards", "1"]);
    let addr = broker.addr.clone();
    let pid = 4242;
    common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        create_topic(&mut c).await;
        assert_eq!(produce(&mut c, pid, 0, 0, 3).await, (0, 0));
        assert_eq!(produce(&mut c, pid, 0, 3, 2).await, (0, 3));
    });
    // A clean stop snapshots the producer state at the log end.
    broker.stop();
    let snapshot = data.join("idem-0").join("00000000000000000005.snapshot");
    let mut raw = std::fs::read(&snapshot).expect("a snapshot at the log end");
    let last = raw.len() - 1;
    raw[last] ^= 0xff;
    std::fs::write(&snapshot, raw).expect("corrupt it");
    broker.start_again();
    let addr = broker.addr.clone();
    common::run(move || async move {
        let mut c = KafkaClient::connect(&addr).await.expect("connect");
        // The retry is still recognized (the state came from the log).
        assert_eq!(produce(&mut c, pid, 0, 3, 2).await, (0, 3));
        assert_eq!(log_end(&mut c).await, 5);
        assert_eq!(produce(&mut c, pid, 0, 5, 1).await, (0, 5));
    });
    assert!(broker
        .log_text()
        .contains("ignoring it, the log rebuilds it"));
}
