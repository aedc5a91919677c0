//! A bench producer's transactions (`--transactional-id`): each producer
//! connection gets its own transactional id (`<id>-<n>`), its own
//! connection to the coordinator (as librdkafka keeps one), and commits
//! every `--txn-interval-ms`: it adds every partition of the topic when a
//! transaction begins (AddPartitionsToTxn), and at the interval waits for
//! its produce requests in flight, then commits (EndTxn). Messages due
//! meanwhile wait, and that wait counts in their latency.

use super::client::KafkaClient;
use crate::log::{ProducerEpoch, ProducerId};
use anyhow::bail;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};

/// CONCURRENT_TRANSACTIONS: the last commit is still being completed.
const CONCURRENT_TRANSACTIONS: i16 = 51;

pub struct BenchTxn {
    coordinator: KafkaClient,
    id: String,
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
    topic: String,
    partitions: i32,
    interval: Duration,
    /// When the open transaction began.
    began: Option<Instant>,
    pub commits: u64,
}

impl BenchTxn {
    /// InitProducerId for `id` on a connection of its own.
    pub async fn init(
        bootstrap: &str,
        id: String,
        topic: &str,
        partitions: i32,
        interval: Duration,
    ) -> anyhow::Result<BenchTxn> {
        let mut coordinator = KafkaClient::connect(bootstrap).await?;
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = Some(TransactionalId(StrBytes::from_string(id.clone())));
        request.transaction_timeout_ms = 60_000;
        let response: InitProducerIdResponse = loop {
            let r: InitProducerIdResponse = coordinator
                .call(ApiKey::InitProducerId, 4, &request)
                .await?;
            // A transaction a crashed bench left open is being aborted.
            if r.error_code != CONCURRENT_TRANSACTIONS {
                break r;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        };
        if response.error_code != 0 {
            bail!(
                "InitProducerId({id}) answered error code {}",
                response.error_code
            );
        }
        Ok(BenchTxn {
            coordinator,
            id,
            producer: ProducerId(response.producer_id.0),
            epoch: ProducerEpoch(response.producer_epoch),
            topic: topic.to_string(),
            partitions,
            interval,
            began: None,
            commits: 0,
        })
    }

    /// Whether the open transaction has run its interval.
    pub fn commit_due(&self, now: Instant) -> bool {
        self.began
            .is_some_and(|b| now.duration_since(b) >= self.interval)
    }

    pub fn is_open(&self) -> bool {
        self.began.is_some()
    }

    /// Begins a transaction over every partition of the topic.
    pub async fn begin(&mut self) -> anyhow::Result<()> {
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = TopicName(StrBytes::from_string(self.topic.clone()));
        t.partitions = (0..self.partitions).collect();
        let mut request = AddPartitionsToTxnRequest::default();
        request.v3_and_below_transactional_id =
            TransactionalId(StrBytes::from_string(self.id.clone()));
        request.v3_and_below_producer_id = kafka_protocol::messages::ProducerId(self.producer.0);
        request.v3_and_below_producer_epoch = self.epoch.0;
        request.v3_and_below_topics = vec![t];
        loop {
            let r: AddPartitionsToTxnResponse = self
                .coordinator
                .call(ApiKey::AddPartitionsToTxn, 3, &request)
                .await?;
            let code = r
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .map(|p| p.partition_error_code)
                .find(|&c| c != 0);
            match code {
                None => break,
                Some(CONCURRENT_TRANSACTIONS) => {
                    glommio::timer::sleep(Duration::from_millis(1)).await
                }
                Some(c) => bail!("AddPartitionsToTxn answered error code {c}"),
            }
        }
        self.began = Some(Instant::now());
        Ok(())
    }

    /// Commits the open transaction (its produce requests all answered).
    pub async fn commit(&mut self) -> anyhow::Result<()> {
        let mut request = EndTxnRequest::default();
        request.transactional_id = TransactionalId(StrBytes::from_string(self.id.clone()));
        request.producer_id = kafka_protocol::messages::ProducerId(self.producer.0);
        request.producer_epoch = self.epoch.0;
        request.committed = true;
        let r: EndTxnResponse = self.coordinator.call(ApiKey::EndTxn, 3, &request).await?;
        if r.error_code != 0 {
            bail!("EndTxn answered error code {}", r.error_code);
        }
        self.began = None;
        self.commits += 1;
        Ok(())
    }
}
