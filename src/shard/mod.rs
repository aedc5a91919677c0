//! `Shard`: one glommio executor's share of the broker — its copy of the
//! topic table, the partitions it owns, its router to the other shards, and
//! the signal that wakes long-polling fetches.
//!
//! Lives on one executor thread; nothing here is `Send`. Each partition is
//! owned by exactly one shard (`ownership::owner`); only that shard opens
//! its files. Shard 0 owns the durable topic table; the others hold copies
//! it keeps current (`admin`). Work for a partition goes to its owner
//! through the `Router` (`service`), one message per owner per request.

pub mod admin;
pub mod message;
pub mod ownership;
pub mod router;
pub mod service;
pub mod signal;
pub mod topics;

use crate::config::BrokerConfig;
use crate::group::coordinator::GroupCoordinator;
use crate::group::{offsets_partition, OFFSETS_TOPIC};
use crate::log::io_probe::{ensure_dma_reads, DmaReady};
use crate::log::log_dir::TopicPartition;
use crate::log::{housekeeping, LogConfig, LogError, Partition};
use crate::metrics::{PartitionStats, ShardMetrics, Snapshot};
use ahash::AHashMap;
use router::{Router, ShardGone};
use signal::{AppendSignal, Shutdown};
use std::cell::RefCell;
use std::rc::Rc;
use topics::{Topic, TopicError, TopicTable};

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("unknown topic or partition {0}-{1}")]
    UnknownPartition(String, i32),
    #[error("invalid required acks {0}")]
    InvalidAcks(i16),
    #[error(transparent)]
    Gone(#[from] ShardGone),
}

pub struct Shard {
    pub config: Rc<BrokerConfig>,
    pub router: Router,
    topics: RefCell<TopicTable>,
    partitions: RefCell<AHashMap<TopicPartition, Rc<Partition>>>,
    dma: DmaReady,
    pub appended: AppendSignal,
    pub shutdown: Shutdown,
    pub metrics: ShardMetrics,
    /// The consumer groups this shard coordinates.
    pub groups: Rc<GroupCoordinator>,
}

impl Shard {
    /// Runs the io-poll probe, loads the topic table and opens (recovering)
    /// every partition this shard owns.
    pub async fn open(config: Rc<BrokerConfig>, router: Router) -> Result<Rc<Shard>, ShardError> {
        let dma = ensure_dma_reads(&config.data_dir).await?;
        let table = TopicTable::load(&config.data_dir)?;
        let offsets_partitions = config.group.offsets_partitions;
        let owned = (0..offsets_partitions)
            .filter(|&p| ownership::owner(OFFSETS_TOPIC, p, router.count()) == router.id())
            .collect();
        let groups =
            GroupCoordinator::open(&config.data_dir, config.group.clone(), owned, &dma).await?;
        let shard = Rc::new(Shard {
            config,
            router,
            topics: RefCell::new(table),
            partitions: RefCell::new(AHashMap::new()),
            dma,
            appended: AppendSignal::default(),
            shutdown: Shutdown::default(),
            metrics: ShardMetrics::default(),
            groups,
        });
        let topics: Vec<Topic> = shard.topics.borrow().iter().cloned().collect();
        for topic in topics {
            shard.open_owned(&topic).await?;
        }
        Ok(shard)
    }

    pub fn id(&self) -> usize {
        self.router.id()
    }

    /// Which shard coordinates a consumer group: the owner of its
    /// `__consumer_offsets` partition.
    pub fn group_owner(&self, group: &str) -> usize {
        let p = offsets_partition(group, self.config.group.offsets_partitions);
        ownership::owner(OFFSETS_TOPIC, p, self.router.count())
    }

    /// Which shard owns a partition, if the topic and partition exist.
    pub fn owner_of(&self, topic: &str, index: i32) -> Option<usize> {
        let t = self.topics.borrow();
        let partitions = t.get(topic)?.partitions;
        let index = u32::try_from(index).ok().filter(|&i| i < partitions)?;
        Some(ownership::owner(topic, index, self.router.count()))
    }

    /// Opens this shard's partitions of `topic` that are not open yet, and
    /// gives the open ones the topic's current config.
    async fn open_owned(&self, topic: &Topic) -> Result<(), ShardError> {
        let log_config = topic
            .log_config(&self.config.log)
            .map_err(TopicError::from)?;
        for index in 0..topic.partitions {
            if ownership::owner(&topic.name, index, self.router.count()) != self.id() {
                continue;
            }
            match self.partition(&topic.name, index as i32) {
                Some(p) => p.set_config(log_config.clone()),
                None => self.open_partition(&topic.name, index, &log_config).await?,
            }
        }
        Ok(())
    }

    async fn open_partition(
        &self,
        topic: &str,
        index: u32,
        log_config: &LogConfig,
    ) -> Result<(), ShardError> {
        let tp = TopicPartition::new(topic, index);
        let dir = tp.dir(&self.config.data_dir);
        let partition = Rc::new(Partition::open(&dir, log_config.clone(), &self.dma).await?);
        // The timer ends by itself once the partition is dropped.
        housekeeping::spawn(&partition).detach();
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
            // Unlinking gigabytes of segments can take a while: off the shard.
            let dir = tp.dir(&self.config.data_dir);
            let removed = glommio::executor()
                .spawn_blocking({
                    let dir = dir.clone();
                    move || std::fs::remove_dir_all(dir)
                })
                .await;
            if let Err(e) = removed {
                tracing::warn!(dir = %dir.display(), "deleting partition files: {e}");
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
    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        let index = u32::try_from(index).ok()?;
        self.partitions
            .borrow()
            .get(&TopicPartition::new(topic, index))
            .cloned()
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
                partition: tp.partition,
                shard: self.id(),
                log_start_offset: p.log_start(),
                log_end_offset: p.next_offset(),
                size_bytes: p.size_bytes(),
            });
        }
        snapshot
    }

    /// Flushes every partition and offsets log; used at shutdown.
    pub async fn flush_all(&self) -> Result<(), LogError> {
        self.groups.flush_all().await?;
        let all: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        for p in all {
            p.flush().await?;
        }
        Ok(())
    }
}
