//! CreateTopics (19): partitions (or `num.partitions`), replication factor 1
//! (-1 means the default, 1), Kafka topic configs, validate_only.

use super::error_code::ErrorCode;
use super::{config_map, str_bytes};
use crate::shard::Shard;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::rc::Rc;
use uuid::Uuid;

pub async fn handle(
    shard: &Rc<Shard>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut r = CreateTopicsResponse::default();
    for topic in req.topics {
        r.topics
            .push(create_one(shard, topic, req.validate_only, version).await);
    }
    r
}

async fn create_one(
    shard: &Rc<Shard>,
    topic: CreatableTopic,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    let mut result = CreatableTopicResult::default();
    result.name = topic.name.clone();
    result.num_partitions = -1;
    result.replication_factor = -1;
    let fail = |mut result: CreatableTopicResult, code: ErrorCode, message: String| {
        result.error_code = code.code();
        result.error_message = Some(str_bytes(&message));
        result
    };
    let name = topic.name.0.as_str();
    if !matches!(topic.replication_factor, -1 | 1) {
        let msg = format!(
            "replication factor {} is larger than the 1 available broker",
            topic.replication_factor
        );
        return fail(result, ErrorCode::InvalidReplicationFactor, msg);
    }
    if !topic.assignments.is_empty() {
        let msg = "manual replica assignment is not supported".to_string();
        return fail(result, ErrorCode::InvalidReplicaAssignment, msg);
    }
    let partitions = match topic.num_partitions {
        -1 => shard.config.num_partitions,
        n if n >= 1 => n.unsigned_abs(),
        n => {
            return fail(
                result,
                ErrorCode::InvalidPartitions,
                format!("{n} partitions"),
            )
        }
    };
    let configs = config_map(topic.configs.iter().map(|c| (&c.name, &c.value)));
    match shard
        .create_topic(name, partitions, configs, validate_only)
        .await
    {
        Ok(t) => {
            if version >= 7 {
                result.topic_id = Uuid::from_u128(t.id);
            }
            if version >= 5 {
                // The topic table holds at most i32::MAX partitions a topic.
                result.num_partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
                result.replication_factor = 1;
            }
            result
        }
        Err(e) => fail(result, ErrorCode::from(&e), e.to_string()),
    }
}
