//! The transaction requests, each a `Call` on the coordinator shard of its
//! transactional id (`TxnCoordinator::call` routes it there): what
//! InitProducerId (with a transactional id), AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions do.
//! The transitions themselves are `state`; their I/O is `coordinator`.

use super::coordinator::TxnCoordinator;
use super::state::{Status, Transaction, TxnError};
use crate::log::{ProducerEpoch, ProducerId, TopicPartition};
use crate::shard::router::Call;
use std::rc::Rc;

/// InitProducerId with a transactional id.
pub struct InitTxnProducer {
    pub transactional_id: String,
    pub timeout_ms: i32,
    /// v3+: the producer's current id and epoch, if it has them.
    pub expected: Option<(ProducerId, ProducerEpoch)>,
}

impl Call<TxnCoordinator> for InitTxnProducer {
    type Reply = Result<(ProducerId, ProducerEpoch), TxnError>;

    async fn run(self, c: &Rc<TxnCoordinator>) -> Self::Reply {
        c.init_producer(&self.transactional_id, self.timeout_ms, self.expected)
            .await
    }
}

/// AddPartitionsToTxn, and AddOffsetsToTxn (the group's offsets
/// partition).
pub struct AddPartitions {
    pub transactional_id: String,
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
    pub partitions: Vec<TopicPartition>,
}

impl Call<TxnCoordinator> for AddPartitions {
    type Reply = Result<(), TxnError>;

    async fn run(self, c: &Rc<TxnCoordinator>) -> Self::Reply {
        let AddPartitions {
            transactional_id,
            producer,
            epoch,
            partitions,
        } = self;
        c.add_partitions(&transactional_id, producer, epoch, partitions)
            .await
    }
}

/// EndTxn: commit or abort.
pub struct EndTxn {
    pub transactional_id: String,
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
    pub commit: bool,
}

impl Call<TxnCoordinator> for EndTxn {
    type Reply = Result<(), TxnError>;

    async fn run(self, c: &Rc<TxnCoordinator>) -> Self::Reply {
        c.end(
            &self.transactional_id,
            self.producer,
            self.epoch,
            self.commit,
        )
        .await
    }
}

/// DescribeTransactions: one id's state (None: unknown here).
pub struct DescribeTxn {
    pub transactional_id: String,
}

impl Call<TxnCoordinator> for DescribeTxn {
    type Reply = Option<Transaction>;

    async fn run(self, c: &Rc<TxnCoordinator>) -> Self::Reply {
        c.get(&self.transactional_id)
    }
}

/// One transactional id as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    pub status: Status,
}

/// ListTransactions: the ids one shard coordinates (asked of every
/// shard), filtered by state names and producer ids (empty: all).
pub struct ListTxns {
    pub states: Vec<String>,
    pub producers: Vec<i64>,
    /// v1: only transactions open longer than this (-1: all).
    pub min_duration_ms: i64,
}

impl Call<TxnCoordinator> for ListTxns {
    type Reply = Vec<ListedTxn>;

    async fn run(self, c: &Rc<TxnCoordinator>) -> Self::Reply {
        c.listed(&self.states, &self.producers, self.min_duration_ms)
    }
}
