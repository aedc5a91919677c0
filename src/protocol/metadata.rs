//! Metadata (3): this broker, and the topics asked for (all when the list is
//! null, or empty at v0). Unknown topics are created when both the request
//! and `auto.create.topics.enable` allow it.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::log::{LeaderEpoch, PartitionId};
use crate::shard::topics::{validate_name, Topic};
use crate::shard::Shard;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::rc::Rc;
use uuid::Uuid;

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_UNKNOWN: i32 = i32::MIN;

pub async fn handle(shard: &Rc<Shard>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node = BrokerId(shard.config.node_id);
    let mut r = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = node;
    broker.host = str_bytes(&shard.config.advertised_host);
    broker.port = i32::from(shard.config.advertised_port);
    r.brokers = vec![broker];
    r.cluster_id = Some(str_bytes(&shard.config.cluster_id));
    r.controller_id = node;
    r.cluster_authorized_operations = OPERATIONS_UNKNOWN;
    // Before v4 clients could not opt out of auto-creation.
    let allow_create =
        shard.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let wanted: Option<Vec<String>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .filter_map(|t| t.name.map(|n| n.0.as_str().to_string()))
                .collect(),
        ),
    };
    r.topics = match wanted {
        None => shard
            .topics()
            .iter()
            .map(|t| describe(t, node, version))
            .collect(),
        Some(names) => {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                out.push(lookup(shard, &name, allow_create, node, version).await);
            }
            out
        }
    };
    r
}

async fn lookup(
    shard: &Rc<Shard>,
    name: &str,
    allow_create: bool,
    node: BrokerId,
    version: i16,
) -> MetadataResponseTopic {
    if let Some(t) = shard.topic(name) {
        return describe(&t, node, version);
    }
    let error = if validate_name(name).is_err() {
        ErrorCode::InvalidTopicException
    } else if allow_create {
        let partitions = shard.config.num_partitions;
        match shard
            .create_topic(name, partitions, Default::default(), false)
            .await
        {
            Ok(t) => return describe(&t, node, version),
            Err(e) => {
                tracing::warn!(topic = name, "auto-creating topic: {e}");
                ErrorCode::from(&e)
            }
        }
    } else {
        ErrorCode::UnknownTopicOrPartition
    };
    let mut t = MetadataResponseTopic::default();
    t.error_code = error.code();
    t.name = Some(TopicName(str_bytes(name)));
    t.topic_authorized_operations = OPERATIONS_UNKNOWN;
    t
}

fn describe(topic: &Topic, node: BrokerId, version: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(str_bytes(&topic.name)));
    if version >= 10 {
        t.topic_id = Uuid::from_u128(topic.id);
    }
    t.topic_authorized_operations = OPERATIONS_UNKNOWN;
    t.partitions = PartitionId::first(topic.partitions)
        .map(|index| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = i32::from(index);
            p.leader_id = node;
            if version >= 7 {
                p.leader_epoch = LeaderEpoch::FIRST.0;
            }
            p.replica_nodes = vec![node];
            p.isr_nodes = vec![node];
            p
        })
        .collect();
    t
}
