//! DeleteRecords through librdkafka's admin client against the binary:
//! the log start moves to the offset asked (or the high watermark), whole
//! segments below it leave the disk, offsets below it are out of range and
//! the earliest offset is the new start — also after kill -9 — and an
//! offset past the high watermark is refused.

mod common;

use common::broker::Broker;
use common::test_dir;
use futures_lite::future::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin")
}

fn watermarks(addr: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "dr-watermarks")
        .create()
        .expect("consumer");
    consumer
        .fetch_watermarks("dr", partition, TIMEOUT)
        .expect("watermarks")
}

/// The first message a consumer assigned at `offset` gets: its offset, or
/// the error (auto.offset.reset=error makes an out-of-range offset one).
fn first_at(addr: &str, offset: i64) -> Result<i64, KafkaError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "dr-reader")
        .set("auto.offset.reset", "error")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("dr", 0, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    match consumer.poll(TIMEOUT) {
        Some(Ok(m)) => Ok(m.offset()),
        Some(Err(e)) => Err(e),
        None => panic!("nothing from offset {offset} in {TIMEOUT:?}"),
    }
}

fn segments(data: &Path) -> usize {
    std::fs::read_dir(data.join("dr-0"))
        .expect("partition dir")
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count()
}

#[test]
fn delete_records_moves_the_log_start_durably() {
    let dir = test_dir();
    let data = dir.path().join("data");
    let mut broker = Broker::start_with(&data, &["--shards", "2"]);
    let a = admin(&broker.addr);
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let topic = NewTopic::new("dr", 2, TopicReplication::Fixed(1)).set("segment.bytes", "16384");
    for r in block_on(a.create_topics(&[topic], &opts)).expect("create") {
        r.expect("created");
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        // One batch per message: the small segments fill and roll.
        .set("batch.num.messages", "1")
        .create()
        .expect("producer");
    for (partition, count) in [(0, 100), (1, 10)] {
        for i in 0..count {
            let value = format!("{i:0>500}");
            let record = BaseRecord::<(), str>::to("dr")
                .partition(partition)
                .payload(&value);
            producer.send(record).expect("queued");
        }
    }
    producer.flush(TIMEOUT).expect("delivered");
    let before = segments(&data);
    assert!(before > 2, "small segments: {before}");

    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("dr", 0, Offset::Offset(40))
        .unwrap();
    tpl.add_partition_offset("dr", 1, Offset::End).unwrap();
    let deleted = block_on(a.delete_records(&tpl, &opts)).expect("delete records");
    let low = |p| deleted.find_partition("dr", p).expect("result").offset();
    assert_eq!((low(0), low(1)), (Offset::Offset(40), Offset::Offset(10)));
    assert!(
        segments(&data) < before,
        "segments below offset 40 are gone"
    );

    assert_eq!(watermarks(&broker.addr, 0), (40, 100));
    assert_eq!(first_at(&broker.addr, 40).expect("offset 40 reads"), 40);
    let below = first_at(&broker.addr, 10).expect_err("offset 10 is deleted");
    assert!(
        matches!(
            below,
            KafkaError::MessageConsumption(
                RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange
            )
        ),
        "{below:?}"
    );

    // Past the high watermark: refused, nothing moves.
    let mut past = TopicPartitionList::new();
    past.add_partition_offset("dr", 0, Offset::Offset(500))
        .unwrap();
    let refused = block_on(a.delete_records(&past, &opts)).expect("delete records");
    let err = refused.find_partition("dr", 0).expect("result").error();
    assert!(err.is_err(), "{err:?}");

    broker.restart_after_kill();
    assert_eq!(watermarks(&broker.addr, 0), (40, 100));
    assert_eq!(watermarks(&broker.addr, 1), (10, 10));
    assert_eq!(first_at(&broker.addr, 40).expect("offset 40 reads"), 40);
}
