//! Topic changes. Shard 0 owns the durable topic table: every change is
//! sent there, made durable, then pushed to every shard (shard 0 included),
//! which updates its copy and opens or deletes the partitions it owns.
//! The caller gets its answer only after every shard applied the change, so
//! a client that created a topic can use it on any connection at once.

use super::message::{AdminOp, Reply, Request, TopicUpdate};
use super::topics::{new_topic_id, Topic};
use super::{Shard, ShardError};
use std::collections::BTreeMap;
use std::rc::Rc;

impl Shard {
    pub async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: u32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Topic, ShardError> {
        let op = AdminOp::CreateTopic {
            name: name.to_string(),
            partitions,
            configs,
            validate_only,
        };
        let topic = self.admin(op).await?;
        Ok(topic.expect("a created topic is returned"))
    }

    /// Deletes a topic; `None` if it did not exist.
    pub async fn delete_topic(self: &Rc<Self>, name: &str) -> Result<Option<Topic>, ShardError> {
        self.admin(AdminOp::DeleteTopic {
            name: name.to_string(),
        })
        .await
    }

    pub async fn create_partitions(
        self: &Rc<Self>,
        name: &str,
        partitions: u32,
        validate_only: bool,
    ) -> Result<(), ShardError> {
        let op = AdminOp::CreatePartitions {
            name: name.to_string(),
            partitions,
            validate_only,
        };
        self.admin(op).await.map(|_| ())
    }

    /// Replaces a topic's config overrides.
    pub async fn set_topic_configs(
        self: &Rc<Self>,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ShardError> {
        let op = AdminOp::SetConfigs {
            name: name.to_string(),
            configs,
            validate_only,
        };
        self.admin(op).await.map(|_| ())
    }

    async fn admin(self: &Rc<Self>, op: AdminOp) -> Result<Option<Topic>, ShardError> {
        match self.router.call(self, 0, Request::Admin(op)).await? {
            Reply::Admin(result) => result,
            _ => unreachable!("admin requests get admin replies"),
        }
    }

    /// On shard 0: applies `op` to the durable table, then to every shard.
    pub(super) async fn admin_local(
        self: &Rc<Self>,
        op: AdminOp,
    ) -> Result<Option<Topic>, ShardError> {
        assert_eq!(self.id(), 0, "shard 0 owns the topic table");
        let defaults = &self.config.log;
        let (topic, update) = match op {
            AdminOp::CreateTopic {
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
                if validate_only {
                    self.topics.borrow().check_new(&topic, defaults)?;
                    return Ok(Some(topic));
                }
                self.topics.borrow_mut().create(topic.clone(), defaults)?;
                tracing::info!(topic = topic.name, partitions, "created topic");
                (Some(topic.clone()), TopicUpdate::Upsert(topic))
            }
            AdminOp::DeleteTopic { name } => {
                let Some(topic) = self.topics.borrow_mut().remove(&name)? else {
                    return Ok(None);
                };
                tracing::info!(topic = name, "deleted topic");
                (Some(topic), TopicUpdate::Delete(name))
            }
            AdminOp::CreatePartitions {
                name,
                partitions,
                validate_only,
            } => {
                let topic =
                    self.topics
                        .borrow_mut()
                        .add_partitions(&name, partitions, validate_only)?;
                if validate_only {
                    return Ok(Some(topic));
                }
                tracing::info!(topic = name, partitions, "added partitions");
                (Some(topic.clone()), TopicUpdate::Upsert(topic))
            }
            AdminOp::SetConfigs {
                name,
                configs,
                validate_only,
            } => {
                let topic = self.topics.borrow_mut().set_configs(
                    &name,
                    configs,
                    defaults,
                    validate_only,
                )?;
                if validate_only {
                    return Ok(Some(topic));
                }
                tracing::info!(topic = name, "altered topic configs");
                (Some(topic.clone()), TopicUpdate::Upsert(topic))
            }
        };
        for shard in 0..self.router.count() {
            let request = Request::TopicUpdate(update.clone());
            match self.router.call(self, shard, request).await? {
                Reply::Updated(result) => result?,
                _ => unreachable!("topic updates get update replies"),
            }
        }
        Ok(topic)
    }

    /// On every shard: brings the table copy and the owned partitions up to
    /// date with a change shard 0 made durable.
    pub(super) async fn apply_topic_update(&self, update: TopicUpdate) -> Result<(), ShardError> {
        match update {
            TopicUpdate::Upsert(topic) => {
                self.topics.borrow_mut().apply(topic.clone());
                self.open_owned(&topic).await
            }
            TopicUpdate::Delete(name) => {
                self.topics.borrow_mut().forget(&name);
                self.drop_owned(&name).await;
                self.groups.forget_topic(&name).await;
                Ok(())
            }
        }
    }
}
