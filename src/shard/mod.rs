//! `Shard`: one glommio executor's share of the broker — its copy of the
//! topic table, the partitions it owns, and the signal that wakes its
//! long-polling fetches.
//!
//! Lives on one executor thread; nothing here is `Send`. Today a broker runs
//! one shard that owns every partition; the cross-shard mesh and ownership
//! function (DESIGN.md §1) are the next step.

pub mod signal;
pub mod stats;
pub mod topics;

use crate::config::BrokerConfig;
use crate::log::io_probe::{ensure_dma_reads, DmaReady};
use crate::log::log_dir::TopicPartition;
use crate::log::{flush_timer, LogError, Partition};
use ahash::AHashMap;
use signal::AppendSignal;
use stats::ShardStats;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use topics::{new_topic_id, Topic, TopicError, TopicTable};

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Log(#[from] LogError),
}

pub struct Shard {
    pub config: Rc<BrokerConfig>,
    topics: RefCell<TopicTable>,
    partitions: RefCell<AHashMap<TopicPartition, Rc<Partition>>>,
    dma: DmaReady,
    pub appended: AppendSignal,
    pub stats: ShardStats,
    flush_timers: RefCell<Vec<glommio::Task<()>>>,
}

impl Shard {
    /// Runs the io-poll probe, loads the topic table and opens (recovering)
    /// every partition of every topic.
    pub async fn open(config: Rc<BrokerConfig>) -> Result<Rc<Shard>, ShardError> {
        let dma = ensure_dma_reads(&config.data_dir).await?;
        let table = TopicTable::load(&config.data_dir)?;
        let shard = Rc::new(Shard {
            config,
            topics: RefCell::new(table),
            partitions: RefCell::new(AHashMap::new()),
            dma,
            appended: AppendSignal::default(),
            stats: ShardStats::default(),
            flush_timers: RefCell::new(Vec::new()),
        });
        let topics: Vec<Topic> = shard.topics.borrow().iter().cloned().collect();
        for topic in topics {
            shard.open_partitions(&topic).await?;
        }
        Ok(shard)
    }

    async fn open_partitions(&self, topic: &Topic) -> Result<(), ShardError> {
        let log_config = topic
            .log_config(&self.config.log)
            .map_err(TopicError::from)?;
        for index in 0..topic.partitions {
            self.open_partition(&topic.name, index, &log_config).await?;
        }
        Ok(())
    }

    async fn open_partition(
        &self,
        topic: &str,
        index: u32,
        log_config: &crate::log::LogConfig,
    ) -> Result<(), ShardError> {
        let tp = TopicPartition::new(topic, index);
        let dir = tp.dir(&self.config.data_dir);
        let partition = Rc::new(Partition::open(&dir, log_config.clone(), &self.dma).await?);
        self.flush_timers
            .borrow_mut()
            .push(flush_timer::spawn(&partition));
        self.partitions.borrow_mut().insert(tp, partition);
        Ok(())
    }

    pub fn topic(&self, name: &str) -> Option<Topic> {
        self.topics.borrow().get(name).cloned()
    }

    pub fn topics(&self) -> Vec<Topic> {
        self.topics.borrow().iter().cloned().collect()
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        let index = u32::try_from(index).ok()?;
        self.partitions
            .borrow()
            .get(&TopicPartition::new(topic, index))
            .cloned()
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.borrow().len()
    }

    /// Creates a topic (durably) and opens its partitions. With
    /// `validate_only` nothing changes.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Topic, ShardError> {
        let topic = Topic {
            name: name.to_string(),
            partitions,
            id: new_topic_id(name),
            configs,
        };
        if validate_only {
            self.topics.borrow().check_new(&topic, &self.config.log)?;
            return Ok(topic);
        }
        self.topics
            .borrow_mut()
            .create(topic.clone(), &self.config.log)?;
        self.open_partitions(&topic).await?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Grows a topic to `partitions` and opens the new ones.
    pub async fn create_partitions(
        &self,
        name: &str,
        partitions: u32,
        validate_only: bool,
    ) -> Result<(), ShardError> {
        let before = self.topic(name).map_or(0, |t| t.partitions);
        let topic = self
            .topics
            .borrow_mut()
            .add_partitions(name, partitions, validate_only)?;
        if validate_only {
            return Ok(());
        }
        let log_config = topic
            .log_config(&self.config.log)
            .map_err(TopicError::from)?;
        for index in before..partitions {
            self.open_partition(&topic.name, index, &log_config).await?;
        }
        tracing::info!(topic = name, partitions, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its open
    /// partitions.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ShardError> {
        let topic =
            self.topics
                .borrow_mut()
                .set_configs(name, configs, &self.config.log, validate_only)?;
        if validate_only {
            return Ok(());
        }
        let log_config = topic
            .log_config(&self.config.log)
            .map_err(TopicError::from)?;
        for index in 0..topic.partitions {
            if let Some(p) = self.partition(name, index as i32) {
                p.set_config(log_config.clone());
            }
        }
        tracing::info!(topic = name, "altered topic configs");
        Ok(())
    }

    /// Deletes a topic: the table entry first (durably), then the files.
    pub async fn delete_topic(&self, name: &str) -> Result<Option<Topic>, ShardError> {
        let Some(topic) = self.topics.borrow_mut().remove(name)? else {
            return Ok(None);
        };
        for index in 0..topic.partitions {
            let tp = TopicPartition::new(name, index);
            let removed = self.partitions.borrow_mut().remove(&tp);
            if let Some(p) = removed {
                let _ = p.close().await;
            }
            let dir = tp.dir(&self.config.data_dir);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), "deleting partition files: {e}");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(Some(topic))
    }

    /// Flushes every partition; used at shutdown.
    pub async fn flush_all(&self) -> Result<(), LogError> {
        let all: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        for p in all {
            p.flush().await?;
        }
        Ok(())
    }
}
