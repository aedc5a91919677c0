//! A broker restarts at once with clients connected: a librdkafka producer
//! and consumer stay connected across 20 restarts after SIGTERM and 20
//! after SIGKILL (their old connections linger in TIME-WAIT on the
//! broker's port), every start serves within 2 s, and every message
//! produced before a restart is consumed after it.

mod common;

use common::broker::Broker;
use common::test_dir;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const RESTARTS: usize = 20;
const START_BOUND: Duration = Duration::from_secs(2);
const TOPIC: &str = "restarts";

fn client(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        // Reconnect quickly after each restart instead of backing off to
        // librdkafka's 10 s maximum.
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "200");
    c
}

/// Produces `value` with acks=all and waits for its acknowledgement.
fn produce(producer: &BaseProducer, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match producer.send(BaseRecord::<(), str>::to(TOPIC).partition(0).payload(value)) {
            Ok(()) => break,
            Err((e, _)) => {
                assert!(Instant::now() < deadline, "send {value}: {e}");
                producer.poll(Duration::from_millis(50));
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{value} not acknowledged: {e}"));
}

/// Polls until the consumer has read `value`.
fn consume_until(consumer: &BaseConsumer, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{value} was not consumed");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if m.payload() == Some(value.as_bytes()) {
                return;
            }
        }
    }
}

fn restart_repeatedly(stop: impl Fn(&mut Broker)) {
    let dir = test_dir();
    let mut broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    let producer: BaseProducer = client(&broker.addr)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let consumer: BaseConsumer = client(&broker.addr)
        .set("group.id", "restart-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    produce(&producer, "before-0");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    consume_until(&consumer, "before-0");
    for cycle in 1..=RESTARTS {
        stop(&mut broker);
        let started = Instant::now();
        broker.start_again();
        let took = started.elapsed();
        assert!(
            took < START_BOUND,
            "restart {cycle} took {took:?}: {}",
            broker.log_text()
        );
        // Both clients reconnect, so the next restart again has live
        // connections (and their TIME-WAIT remains) on the port.
        let value = format!("before-{cycle}");
        produce(&producer, &value);
        consume_until(&consumer, &value);
    }
}

#[test]
fn restarts_after_sigterm_with_clients_connected_serve_at_once() {
    restart_repeatedly(Broker::stop);
}

#[test]
fn restarts_after_sigkill_with_clients_connected_serve_at_once() {
    restart_repeatedly(Broker::kill);
}
