//! librdkafka clients for the tests that run the real binary.

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
use std::sync::Mutex;

/// Collects every delivery report: Ok((partition, offset)) or the error.
#[derive(Default)]
pub struct Deliveries(pub Mutex<Vec<Result<(i32, i64), String>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let r = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap().push(r);
    }
}

/// An acks=all producer (`linger.ms` 5, 20 s message timeout), with
/// `extra` settings on top.
pub fn producer(addr: &str, extra: &[(&str, &str)]) -> BaseProducer<Deliveries> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "20000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(Deliveries::default())
        .expect("producer")
}
