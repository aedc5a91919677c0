//! DescribeTransactions (65), v0: each transactional id's state, asked of
//! its coordinator shard; an id no coordinator knows is
//! TRANSACTIONAL_ID_NOT_FOUND.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::txn::calls::DescribeTxn;
use crate::txn::coordinator::TxnCoordinator;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use std::rc::Rc;

pub async fn handle(
    txns: &Rc<TxnCoordinator>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut out = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let call = DescribeTxn {
            transactional_id: id.0.to_string(),
        };
        let found = txns.call(id.0.as_str(), call).await;
        let mut state = TransactionState::default();
        state.transactional_id = id;
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        match found {
            Err(_) => state.error_code = ErrorCode::CoordinatorNotAvailable.code(),
            Ok(None) => state.error_code = ErrorCode::TransactionalIdNotFound.code(),
            Ok(Some(t)) => {
                state.transaction_state = str_bytes(t.status.name());
                state.transaction_timeout_ms = t.timeout_ms;
                state.transaction_start_time_ms = t.start_ms;
                state.producer_id = ProducerId(t.producer_id.0);
                state.producer_epoch = t.epoch.0;
                for tp in &t.partitions {
                    let name = TopicName(str_bytes(&tp.topic));
                    let index = i32::from(tp.partition);
                    match state.topics.iter_mut().find(|d| d.topic == name) {
                        Some(d) => d.partitions.push(index),
                        None => {
                            let mut d = TopicData::default();
                            d.topic = name;
                            d.partitions.push(index);
                            state.topics.push(d);
                        }
                    }
                }
            }
        }
        out.transaction_states.push(state);
    }
    out
}
