//! EndTxn (26), v0–v3: commit or abort a producer's transaction. Answered
//! once the outcome is durable and its markers are written (or after a
//! bound, the outcome being decided by then). PRODUCER_FENCED is
//! INVALID_PRODUCER_EPOCH before v2. (v5, transactions v2, is not
//! offered.)

use super::error_code::txn_code;
use crate::log::{ProducerEpoch, ProducerId};
use crate::txn::calls::EndTxn;
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::state::TxnError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use std::rc::Rc;

const FENCED_SINCE: i16 = 2;

pub async fn handle(txns: &Rc<TxnCoordinator>, req: EndTxnRequest, version: i16) -> EndTxnResponse {
    let transactional_id = req.transactional_id.0.to_string();
    let outcome = if transactional_id.is_empty() {
        Err(TxnError::InvalidRequest)
    } else {
        let call = EndTxn {
            transactional_id: transactional_id.clone(),
            producer: ProducerId(req.producer_id.0),
            epoch: ProducerEpoch(req.producer_epoch),
            commit: req.committed,
        };
        txns.call(&transactional_id, call)
            .await
            .unwrap_or(Err(TxnError::CoordinatorNotAvailable))
    };
    let mut out = EndTxnResponse::default();
    out.error_code = txn_code(outcome.err(), version, FENCED_SINCE);
    out.producer_id = kafka_protocol::messages::ProducerId(-1);
    out.producer_epoch = -1;
    out
}
