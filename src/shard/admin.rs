//! Topic changes. Shard 0 owns the durable topic table: every change is
//! sent there (`ChangeTopic`), made durable, then pushed to every shard
//! (`ApplyTopicUpdate`, shard 0 included), which updates its copy and
//! opens or deletes the partitions it owns. The caller gets its answer only
//! after every shard applied the change, so a client that created a topic
//! can use it on any connection at once.

use super::ownership::ShardId;
use super::partition_budget::{self, Descriptors};
use super::router::{Call, ShardGone};
use super::topics::{new_topic_id, write_table, Topic, TopicError, TopicUpdate};
use super::{Shard, ShardError};
use std::collections::BTreeMap;
use std::rc::Rc;

/// What an admin request asks of the topic table.
pub enum TopicChange {
    Create {
        name: String,
        partitions: u32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    Delete {
        name: String,
    },
    AddPartitions {
        name: String,
        partitions: u32,
        validate_only: bool,
    },
    SetConfigs {
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
}

/// A topic change, run on shard 0. Replies with the topic as changed
/// (`None`: a deleted topic did not exist).
pub struct ChangeTopic(pub TopicChange);

impl Call<Shard> for ChangeTopic {
    type Reply = Result<Option<Topic>, ShardError>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        // In a task of its own, so a change runs to its end even if the
        // request that asked for it goes away (its connection closed):
        // once the table is written, every shard applies the change.
        let shard = shard.clone();
        let change = glommio::spawn_local(async move { shard.change_topic(self.0).await });
        let done = change.detach().await;
        done.ok_or(ShardError::Gone(ShardGone(ShardId::FIRST)))?
    }
}

/// Shard 0 tells a shard about a changed topic.
pub struct ApplyTopicUpdate(pub TopicUpdate);

impl Call<Shard> for ApplyTopicUpdate {
    type Reply = Result<(), ShardError>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.apply_topic_update(self.0).await
    }
}

/// What shard 0 decided about a change.
enum Plan {
    /// Nothing to store (validate_only): the answer.
    Answer(Option<Topic>),
    /// Store and apply `update`, then answer with the topic.
    Apply(Topic, TopicUpdate),
}

impl Shard {
    pub async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: u32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Topic, ShardError> {
        let change = TopicChange::Create {
            name: name.to_string(),
            partitions,
            configs,
            validate_only,
        };
        let topic = self.change(change).await?;
        Ok(topic.expect("a created topic is returned"))
    }

    /// Deletes a topic; `None` if it did not exist.
    pub async fn delete_topic(self: &Rc<Self>, name: &str) -> Result<Option<Topic>, ShardError> {
        let name = name.to_string();
        self.change(TopicChange::Delete { name }).await
    }

    pub async fn create_partitions(
        self: &Rc<Self>,
        name: &str,
        partitions: u32,
        validate_only: bool,
    ) -> Result<(), ShardError> {
        let change = TopicChange::AddPartitions {
            name: name.to_string(),
            partitions,
            validate_only,
        };
        self.change(change).await.map(|_| ())
    }

    /// Replaces a topic's config overrides.
    pub async fn set_topic_configs(
        self: &Rc<Self>,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ShardError> {
        let change = TopicChange::SetConfigs {
            name: name.to_string(),
            configs,
            validate_only,
        };
        self.change(change).await.map(|_| ())
    }

    async fn change(self: &Rc<Self>, change: TopicChange) -> Result<Option<Topic>, ShardError> {
        self.router
            .call(self, ShardId::FIRST, ChangeTopic(change))
            .await?
    }

    /// On shard 0: makes `change` durable, then applies it on every shard.
    async fn change_topic(
        self: &Rc<Self>,
        change: TopicChange,
    ) -> Result<Option<Topic>, ShardError> {
        assert_eq!(self.id(), ShardId::FIRST, "shard 0 owns the topic table");
        // Held across the durable write, so the file always holds every
        // change before this one.
        let _one_at_a_time = self.admin_lock.acquire_permit(1).await;
        let plan = self.plan(change)?;
        if let Plan::Answer(Some(topic)) | Plan::Apply(topic, TopicUpdate::Upsert(_)) = &plan {
            self.check_room_for(topic).await?;
        }
        let (topic, update) = match plan {
            Plan::Answer(topic) => return Ok(topic),
            Plan::Apply(topic, update) => (topic, update),
        };
        let (path, text) = {
            let table = self.topics.borrow();
            (table.path().to_path_buf(), table.text_after(&update))
        };
        write_table(&path, text).await?;
        for shard in self.router.shards() {
            let apply = ApplyTopicUpdate(update.clone());
            self.router.call(self, shard, apply).await??;
        }
        Ok(Some(topic))
    }

    /// Refuses a created or grown topic whose new partitions the broker
    /// cannot hold (`partition_budget`), validate_only requests too.
    async fn check_room_for(&self, topic: &Topic) -> Result<(), ShardError> {
        let (held, before) = {
            let table = self.topics.borrow();
            let held: u64 = table.iter().map(|t| u64::from(t.partitions)).sum();
            (held, table.get(&topic.name).map_or(0, |t| t.partitions))
        };
        let added = u64::from(topic.partitions.saturating_sub(before));
        if added == 0 {
            return Ok(());
        }
        let fds = glommio::executor().spawn_blocking(Descriptors::now).await;
        let max = self.config.max_broker_partitions;
        match partition_budget::refusal(added, held, max, fds) {
            None => Ok(()),
            Some(why) => {
                tracing::warn!(topic = topic.name, added, "refusing partitions: {why}");
                Err(TopicError::PartitionLimit(why).into())
            }
        }
    }

    /// Checks a change against the table as it is and says what to store.
    fn plan(&self, change: TopicChange) -> Result<Plan, ShardError> {
        let defaults = &self.config.log;
        let table = self.topics.borrow();
        let (topic, validate_only) = match change {
            TopicChange::Create {
                name,
                partitions,
                configs,
                validate_only,
            } => {
                let topic = Topic {
                    id: new_topic_id(&name),
                    name,
                    partitions,
                    configs,
                };
                table.check_new(&topic, defaults)?;
                tracing::info!(
                    topic = topic.name,
                    partitions,
                    validate_only,
                    "creating topic"
                );
                (topic, validate_only)
            }
            TopicChange::Delete { name } => {
                let Some(topic) = table.get(&name).cloned() else {
                    return Ok(Plan::Answer(None));
                };
                tracing::info!(topic = name, "deleting topic");
                return Ok(Plan::Apply(topic, TopicUpdate::Delete(name)));
            }
            TopicChange::AddPartitions {
                name,
                partitions,
                validate_only,
            } => {
                let topic = table.add_partitions(&name, partitions)?;
                tracing::info!(topic = name, partitions, validate_only, "adding partitions");
                (topic, validate_only)
            }
            TopicChange::SetConfigs {
                name,
                configs,
                validate_only,
            } => {
                let topic = table.set_configs(&name, configs, defaults)?;
                tracing::info!(topic = name, validate_only, "altering topic configs");
                (topic, validate_only)
            }
        };
        Ok(if validate_only {
            Plan::Answer(Some(topic))
        } else {
            Plan::Apply(topic.clone(), TopicUpdate::Upsert(topic))
        })
    }

    /// On every shard: brings the table copy and the owned partitions up to
    /// date with a change shard 0 made durable.
    async fn apply_topic_update(&self, update: TopicUpdate) -> Result<(), ShardError> {
        self.topics.borrow_mut().apply(&update);
        match update {
            TopicUpdate::Upsert(topic) => self.open_owned(&topic).await,
            TopicUpdate::Delete(name) => {
                self.drop_owned(&name).await;
                Ok(())
            }
        }
    }
}
