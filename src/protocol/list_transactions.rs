//! ListTransactions (66), v0–v1: the transactional ids every coordinator
//! shard knows, filtered by state names, producer ids and (v1) how long
//! the transaction has been open. A state name Kafka does not know is
//! listed back in `unknown_state_filters`.

use super::str_bytes;
use crate::txn::calls::ListTxns;
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::state::Status;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use std::rc::Rc;

const STATES: [Status; 8] = [
    Status::Empty,
    Status::Ongoing,
    Status::PrepareCommit,
    Status::PrepareAbort,
    Status::CompleteCommit,
    Status::CompleteAbort,
    Status::Dead,
    Status::PrepareEpochFence,
];

pub async fn handle(
    txns: &Rc<TxnCoordinator>,
    req: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut out = ListTransactionsResponse::default();
    let (known, unknown): (Vec<_>, Vec<_>) = req
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .partition(|s| STATES.iter().any(|st| st.name() == s));
    out.unknown_state_filters = unknown.iter().map(|s| str_bytes(s)).collect();
    if !unknown.is_empty() && known.is_empty() {
        return out; // only unknown states: nothing matches
    }
    let producers: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration_ms = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let replies = txns
        .call_every_shard(|| ListTxns {
            states: known.clone(),
            producers: producers.clone(),
            min_duration_ms,
        })
        .await;
    for listed in replies.into_iter().flatten().flatten() {
        let mut state = TransactionState::default();
        state.transactional_id = TransactionalId(str_bytes(&listed.transactional_id));
        state.producer_id = ProducerId(listed.producer_id.0);
        state.transaction_state = str_bytes(listed.status.name());
        out.transaction_states.push(state);
    }
    out
}
