//! AddPartitionsToTxn (24), v0–v3: a transactional producer's partitions
//! join its open transaction before it produces to them. Answered per
//! partition: a partition of an unknown topic is UNKNOWN_TOPIC_OR_PARTITION
//! and then nothing is added (the others get OPERATION_NOT_ATTEMPTED), as
//! Kafka answers; otherwise every partition gets the coordinator's answer.
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. (v4+, the
//! broker-to-broker verification form, is not offered.)

use super::error_code::txn_code;
use super::wire;
use crate::log::{ProducerEpoch, ProducerId, TopicPartition};
use crate::shard::Shard;
use crate::txn::calls::AddPartitions;
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::state::TxnError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use std::rc::Rc;

const FENCED_SINCE: i16 = 2;

pub async fn handle(
    shard: &Rc<Shard>,
    txns: &Rc<TxnCoordinator>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let transactional_id = req.v3_and_below_transactional_id.0.to_string();
    // Each partition asked, and whether it exists.
    let mut asked: Vec<(String, i32, Option<TopicPartition>)> = Vec::new();
    for t in &req.v3_and_below_topics {
        for &p in &t.partitions {
            let tp = wire::topic_partition(t.name.0.as_str(), p)
                .filter(|tp| shard.owner_of(tp).is_some());
            asked.push((t.name.0.to_string(), p, tp));
        }
    }
    let any_unknown = asked.iter().any(|(_, _, tp)| tp.is_none());
    let outcome = if transactional_id.is_empty() {
        Err(TxnError::InvalidRequest)
    } else if any_unknown {
        Err(TxnError::OperationNotAttempted)
    } else {
        let call = AddPartitions {
            transactional_id: transactional_id.clone(),
            producer: ProducerId(req.v3_and_below_producer_id.0),
            epoch: ProducerEpoch(req.v3_and_below_producer_epoch),
            partitions: asked.iter().filter_map(|(_, _, tp)| tp.clone()).collect(),
        };
        txns.call(&transactional_id, call)
            .await
            .unwrap_or(Err(TxnError::CoordinatorNotAvailable))
    };
    let mut out = AddPartitionsToTxnResponse::default();
    for (topic, p, tp) in asked {
        let error = match (&outcome, tp) {
            (Err(TxnError::OperationNotAttempted), None) => {
                TxnError::UnknownTopicOrPartition.into()
            }
            (r, _) => r.err(),
        };
        let mut result = AddPartitionsToTxnPartitionResult::default();
        result.partition_index = p;
        result.partition_error_code = txn_code(error, version, FENCED_SINCE);
        let name = kafka_protocol::messages::TopicName(super::str_bytes(&topic));
        match out
            .results_by_topic_v3_and_below
            .iter_mut()
            .find(|t| t.name == name)
        {
            Some(t) => t.results_by_partition.push(result),
            None => {
                let mut t = AddPartitionsToTxnTopicResult::default();
                t.name = name;
                t.results_by_partition.push(result);
                out.results_by_topic_v3_and_below.push(t);
            }
        }
    }
    out
}
