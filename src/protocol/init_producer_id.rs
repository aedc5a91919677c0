//! InitProducerId (22), v0–v5: a producer id for an idempotent producer.
//! Without a transactional id every call gets a fresh id at epoch 0, also
//! at v3+ with the producer's current id and epoch, as Kafka answers
//! (KIP-360's epoch bump is for transactional ids; an idempotent producer
//! bumps its epoch itself). Any broker answers, without a coordinator.
//! An empty transactional id, or (v3+) an id without an epoch, is
//! INVALID_REQUEST; a transactional one waits for the transaction
//! coordinator (COORDINATOR_NOT_AVAILABLE, as FindCoordinator answers for
//! transactions).

use super::error_code::ErrorCode;
use crate::log::ProducerEpoch;
use crate::txn::producer_ids::ProducerIds;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::rc::Rc;

pub async fn handle(ids: &Rc<ProducerIds>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = ProducerEpoch::NONE.0;
    // v3+: an id without an epoch (or the reverse) is malformed.
    let half_known = (req.producer_id.0 == -1) != (req.producer_epoch == -1);
    let refused = match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        _ if half_known => Some(ErrorCode::InvalidRequest),
        None => None,
        Some("") => Some(ErrorCode::InvalidRequest),
        Some(_) => Some(ErrorCode::CoordinatorNotAvailable),
    };
    if let Some(code) = refused {
        r.error_code = code.code();
        return r;
    }
    match ids.next().await {
        Ok(id) => {
            r.producer_id = ProducerId(id.0);
            r.producer_epoch = 0;
        }
        Err(e) => {
            // Retriable, as Kafka answers while it waits for a block.
            tracing::warn!("handing out a producer id: {e}");
            r.error_code = ErrorCode::CoordinatorLoadInProgress.code();
        }
    }
    r
}
