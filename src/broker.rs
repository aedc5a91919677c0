//! `Broker`: what one shard runs of the broker — its share of the data
//! (`Shard`) and the services built on it (`GroupCoordinator`,
//! `ProducerIds`, `TxnCoordinator`). Connections and the protocol edge
//! work through it.
//!
//! One per executor thread. Each service inside is sharded on its own: it
//! reaches its instances on other shards through a `Router` over a channel
//! mesh of its own (`Meshes`), so no service knows the others' calls.

use crate::config::BrokerConfig;
use crate::group::coordinator::GroupCoordinator;
use crate::log::LogError;
use crate::metrics::ShardMetrics;
use crate::shard::router::{Envelope, Router, Sharded};
use crate::shard::{Shard, ShardError};
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::producer_ids::{ProducerIdError, ProducerIds};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers};
use std::rc::Rc;

pub struct Broker {
    pub shard: Rc<Shard>,
    pub groups: Rc<GroupCoordinator>,
    pub producer_ids: Rc<ProducerIds>,
    pub txns: Rc<TxnCoordinator>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("joining the shard mesh: {0}")]
    Mesh(String),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("opening the consumer groups' log: {0}")]
    Groups(#[source] LogError),
    #[error(transparent)]
    ProducerIds(#[from] ProducerIdError),
    #[error("opening the transaction log: {0}")]
    Transactions(#[source] LogError),
}

/// Messages buffered per pair of shards and service before a sender
/// waits.
const MESH_CHANNEL_CAPACITY: usize = 1024;

/// The channel meshes of the sharded services, one each. Every shard
/// thread gets a clone and joins them all, in the same order.
#[derive(Clone)]
pub struct Meshes {
    shards: usize,
    data: MeshBuilder<Envelope<Shard>, Full>,
    groups: MeshBuilder<Envelope<GroupCoordinator>, Full>,
    producer_ids: MeshBuilder<Envelope<ProducerIds>, Full>,
    txns: MeshBuilder<Envelope<TxnCoordinator>, Full>,
}

impl Meshes {
    pub fn new(shards: usize) -> Meshes {
        Meshes {
            shards,
            data: MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY),
            groups: MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY),
            producer_ids: MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY),
            txns: MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY),
        }
    }
}

/// A service's router, and what its peers send it (none with one shard).
async fn join<T: Sharded>(
    mesh: MeshBuilder<Envelope<T>, Full>,
    shards: usize,
    metrics: &Rc<ShardMetrics>,
) -> Result<(Router<T>, Option<Receivers<Envelope<T>>>), BrokerError> {
    if shards == 1 {
        return Ok((Router::single(metrics.clone()), None));
    }
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|e| BrokerError::Mesh(e.to_string()))?;
    Ok((Router::new(senders, metrics.clone()), Some(receivers)))
}

impl Broker {
    /// Joins the meshes, then recovers this shard's partitions and the
    /// groups it coordinates.
    pub async fn open(config: Rc<BrokerConfig>, meshes: Meshes) -> Result<Rc<Broker>, BrokerError> {
        let metrics = Rc::new(ShardMetrics::default());
        let (data_router, data_calls) = join(meshes.data, meshes.shards, &metrics).await?;
        let (group_router, group_calls) = join(meshes.groups, meshes.shards, &metrics).await?;
        let (pid_router, pid_calls) = join(meshes.producer_ids, meshes.shards, &metrics).await?;
        let (txn_router, txn_calls) = join(meshes.txns, meshes.shards, &metrics).await?;
        let shard = Shard::open(config, data_router).await?;
        if let Some(calls) = data_calls {
            Router::serve(&shard, calls);
        }
        let groups = GroupCoordinator::open(&shard, group_router)
            .await
            .map_err(BrokerError::Groups)?;
        if let Some(calls) = group_calls {
            Router::serve(&groups, calls);
        }
        let producer_ids = ProducerIds::open(&shard.config.data_dir, pid_router).await?;
        if let Some(calls) = pid_calls {
            Router::serve(&producer_ids, calls);
        }
        // Nothing here may wait for another shard: the shards' executors
        // serve their meshes only once every shard has opened (main.rs
        // holds them at a barrier), so the coordinator resumes open
        // transactions in the background.
        let txns = TxnCoordinator::open(&shard, &groups, &producer_ids, txn_router)
            .await
            .map_err(BrokerError::Transactions)?;
        if let Some(calls) = txn_calls {
            Router::serve(&txns, calls);
        }
        Ok(Rc::new(Broker {
            shard,
            groups,
            producer_ids,
            txns,
        }))
    }

    /// Flushes every partition and internal log; used at shutdown.
    pub async fn flush_all(&self) -> Result<(), LogError> {
        self.txns.flush_all().await?;
        self.groups.flush_all().await?;
        self.shard.flush_all().await
    }
}
