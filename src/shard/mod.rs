//! `Shard`: one executor's share of the broker's data — its copy of the
//! topic table, the partitions it owns, and its router to the other
//! shards.
//!
//! Lives on one executor thread; nothing here is `Send`. Each partition is
//! owned by exactly one shard (`ownership::owner`); only that shard opens
//! its files. Shard 0 owns the durable topic table; the others hold copies
//! it keeps current (`admin`). Work for a partition goes to its owner
//! through the `Router` — `fan_out` on the side that accepted the request,
//! `owner_calls` on the owner — one call per owner per request.
//!
//! The shard knows nothing of the services built on it (`group`, later
//! `txn`): they open their internal logs through its `LogDir` and reach
//! other shards with routers of their own.

pub mod admin;
pub mod fan_out;
pub mod owner_calls;
pub mod ownership;
pub mod partition_budget;
pub mod router;
pub mod signal;
pub mod topics;

use crate::config::BrokerConfig;
use crate::log::state_log::StateLog;
use crate::log::{LogConfig, LogDir, LogError, Partition, PartitionId, TopicPartition};
use crate::metrics::{PartitionStats, ShardMetrics, Snapshot};
use ahash::AHashMap;
use glommio::sync::Semaphore;
use ownership::ShardId;
use router::{Router, ShardGone, Sharded};
use signal::Shutdown;
use std::cell::RefCell;
use std::rc::Rc;
use topics::{Topic, TopicError, TopicTable};

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("unknown topic or partition {0}")]
    UnknownPartition(TopicPartition),
    #[error(transparent)]
    Gone(#[from] ShardGone),
}

pub struct Shard {
    pub config: Rc<BrokerConfig>,
    pub router: Router<Shard>,
    topics: RefCell<TopicTable>,
    partitions: RefCell<AHashMap<TopicPartition, Rc<Partition>>>,
    log_dir: LogDir,
    /// On shard 0: topic changes are made one at a time, so each durable
    /// table write holds every change before it.
    admin_lock: Semaphore,
    pub shutdown: Shutdown,
    pub metrics: Rc<ShardMetrics>,
}

impl Sharded for Shard {
    fn router(&self) -> &Router<Shard> {
        &self.router
    }
}

impl Shard {
    /// Runs the io-poll probe, loads the topic table and opens (recovering)
    /// every partition this shard owns.
    pub async fn open(
        config: Rc<BrokerConfig>,
        router: Router<Shard>,
    ) -> Result<Rc<Shard>, ShardError> {
        let log_dir = LogDir::open(&config.data_dir).await?;
        let table = TopicTable::load(&config.data_dir).await?;
        let metrics = router.metrics().clone();
        let shard = Rc::new(Shard {
            config,
            router,
            topics: RefCell::new(table),
            partitions: RefCell::new(AHashMap::new()),
            log_dir,
            admin_lock: Semaphore::new(1),
            shutdown: Shutdown::default(),
            metrics,
        });
        let topics: Vec<Topic> = shard.topics.borrow().iter().cloned().collect();
        for topic in topics {
            shard.open_owned(&topic).await?;
        }
        Ok(shard)
    }

    pub fn id(&self) -> ShardId {
        self.router.id()
    }

    /// Where this shard's partitions live; the one way to open one.
    /// Opens the partitions of an internal state log (of `partitions`)
    /// that this shard owns.
    pub async fn open_state_log(
        &self,
        topic: &'static str,
        partitions: u32,
        segment_bytes: u64,
    ) -> Result<StateLog, LogError> {
        let count = self.router.count();
        let owned = PartitionId::first(partitions)
            .filter(|&p| ownership::owner(topic, p, count) == self.id());
        StateLog::open(&self.log_dir, topic, owned, segment_bytes).await
    }

    pub fn log_dir(&self) -> &LogDir {
        &self.log_dir
    }

    /// Which shard owns a partition, if the topic and partition exist.
    pub fn owner_of(&self, tp: &TopicPartition) -> Option<ShardId> {
        let topics = self.topics.borrow();
        let partitions = topics.get(&tp.topic)?.partitions;
        (tp.partition.index() < partitions)
            .then(|| ownership::owner(&tp.topic, tp.partition, self.router.count()))
    }

    /// Opens this shard's partitions of `topic` that are not open yet, and
    /// gives the open ones the topic's current config.
    async fn open_owned(&self, topic: &Topic) -> Result<(), ShardError> {
        let log_config = topic
            .log_config(&self.config.log)
            .map_err(TopicError::from)?;
        for index in PartitionId::first(topic.partitions) {
            if ownership::owner(&topic.name, index, self.router.count()) != self.id() {
                continue;
            }
            let tp = TopicPartition::new(topic.name.clone(), index);
            match self.partition(&tp) {
                Some(p) => p.set_config(log_config.clone()),
                None => self.open_partition(tp, &log_config).await?,
            }
        }
        Ok(())
    }

    async fn open_partition(
        &self,
        tp: TopicPartition,
        config: &LogConfig,
    ) -> Result<(), ShardError> {
        let partition = self.log_dir.open_partition(&tp, config.clone()).await?;
        self.partitions.borrow_mut().insert(tp, partition);
        Ok(())
    }

    /// Closes and deletes this shard's partitions of a deleted topic.
    async fn drop_owned(&self, topic: &str) {
        let doomed: Vec<(TopicPartition, Rc<Partition>)> = {
            let mut map = self.partitions.borrow_mut();
            let keys: Vec<TopicPartition> =
                map.keys().filter(|tp| tp.topic == topic).cloned().collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|p| (k, p)))
                .collect()
        };
        for (tp, p) in doomed {
            let _ = p.close().await;
            drop(p);
            if let Err(e) = self.log_dir.remove_partition(&tp).await {
                tracing::warn!(partition = %tp, "deleting partition files: {e}");
            }
        }
    }

    pub fn topic(&self, name: &str) -> Option<Topic> {
        self.topics.borrow().get(name).cloned()
    }

    pub fn topics(&self) -> Vec<Topic> {
        self.topics.borrow().iter().cloned().collect()
    }

    /// A partition this shard owns and has open.
    pub fn partition(&self, tp: &TopicPartition) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(tp).cloned()
    }

    /// Partitions this shard has open.
    pub fn partition_count(&self) -> usize {
        self.partitions.borrow().len()
    }

    /// This shard's measurements, with its partitions' offsets and sizes.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let mut snapshot = self.metrics.snapshot();
        for (tp, p) in self.partitions.borrow().iter() {
            snapshot.partitions.push(PartitionStats {
                topic: tp.topic.clone(),
                partition: tp.partition.index(),
                shard: self.id().index(),
                log_start_offset: p.log_start().get(),
                log_end_offset: p.next_offset().get(),
                last_stable_offset: p.last_stable_offset().get(),
                size_bytes: p.size_bytes(),
                producers: p.producer_count() as u64,
                open_transactions: p.open_transactions() as u64,
            });
        }
        snapshot
    }

    /// Flushes every partition and snapshots its producer state; used at
    /// shutdown.
    pub async fn flush_all(&self) -> Result<(), LogError> {
        let all: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        for p in all {
            p.flush().await?;
            p.snapshot_producers().await?;
        }
        Ok(())
    }
}
