//! AddOffsetsToTxn (25), v0–v3: the group's `__consumer_offsets`
//! partition joins the producer's transaction, so TxnOffsetCommit may
//! write to it. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::error_code::txn_code;
use crate::group::coordinator::GroupCoordinator;
use crate::group::{offsets_partition, OFFSETS_TOPIC};
use crate::log::{ProducerEpoch, ProducerId, TopicPartition};
use crate::txn::calls::AddPartitions;
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::state::TxnError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use std::rc::Rc;

const FENCED_SINCE: i16 = 2;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    txns: &Rc<TxnCoordinator>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let transactional_id = req.transactional_id.0.to_string();
    let group = req.group_id.0.as_str();
    let outcome = if transactional_id.is_empty() || group.is_empty() {
        Err(TxnError::InvalidRequest)
    } else {
        let p = offsets_partition(group, groups.config.offsets_partitions);
        let call = AddPartitions {
            transactional_id: transactional_id.clone(),
            producer: ProducerId(req.producer_id.0),
            epoch: ProducerEpoch(req.producer_epoch),
            partitions: vec![TopicPartition::new(OFFSETS_TOPIC, p)],
        };
        txns.call(&transactional_id, call)
            .await
            .unwrap_or(Err(TxnError::CoordinatorNotAvailable))
    };
    let mut out = AddOffsetsToTxnResponse::default();
    out.error_code = txn_code(outcome.err(), version, FENCED_SINCE);
    out
}
