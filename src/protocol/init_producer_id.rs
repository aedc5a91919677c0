//! InitProducerId (22), v0–v5: a producer id for an idempotent or
//! transactional producer.
//!
//! Without a transactional id every call gets a fresh id at epoch 0, also
//! at v3+ with the producer's current id and epoch, as Kafka answers
//! (an idempotent producer bumps its epoch itself); any broker answers.
//! With one, the id's transaction coordinator answers: the id's producer
//! id with its epoch bumped (fencing older instances), after aborting a
//! transaction it left open (CONCURRENT_TRANSACTIONS meanwhile; the client
//! retries). An empty transactional id, or (v3+) an id without an epoch,
//! is INVALID_REQUEST; PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before
//! v4.

use super::error_code::{txn_code, ErrorCode};
use crate::log::{ProducerEpoch, ProducerId};
use crate::txn::calls::InitTxnProducer;
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::producer_ids::ProducerIds;
use crate::txn::state::TxnError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use std::rc::Rc;

/// The version since which clients know PRODUCER_FENCED here.
const FENCED_SINCE: i16 = 4;

pub async fn handle(
    ids: &Rc<ProducerIds>,
    txns: &Rc<TxnCoordinator>,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = kafka_protocol::messages::ProducerId(-1);
    r.producer_epoch = ProducerEpoch::NONE.0;
    // v3+: an id without an epoch (or the reverse) is malformed.
    let half_known = (req.producer_id.0 == -1) != (req.producer_epoch == -1);
    let answer = match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        _ if half_known => Err(TxnError::InvalidRequest),
        Some("") => Err(TxnError::InvalidRequest),
        None => match ids.next().await {
            Ok(id) => Ok((id, ProducerEpoch(0))),
            Err(e) => {
                // Retriable, as Kafka answers while it waits for a block.
                tracing::warn!("handing out a producer id: {e}");
                Err(TxnError::CoordinatorLoadInProgress)
            }
        },
        Some(transactional_id) => {
            let expected = (req.producer_id.0 >= 0).then_some((
                ProducerId(req.producer_id.0),
                ProducerEpoch(req.producer_epoch),
            ));
            let call = InitTxnProducer {
                transactional_id: transactional_id.to_string(),
                timeout_ms: req.transaction_timeout_ms,
                expected,
            };
            txns.call(transactional_id, call)
                .await
                .unwrap_or(Err(TxnError::CoordinatorNotAvailable))
        }
    };
    match answer {
        Ok((id, epoch)) => {
            r.producer_id = kafka_protocol::messages::ProducerId(id.0);
            r.producer_epoch = epoch.0;
        }
        Err(e) => r.error_code = txn_code(Some(e), version, FENCED_SINCE),
    }
    debug_assert!(r.error_code != ErrorCode::None.code() || r.producer_id.0 >= 0);
    r
}
