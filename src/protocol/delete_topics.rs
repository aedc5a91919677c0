//! DeleteTopics (20): by name; the partitions' files go with them, and
//! every group's committed offsets of the topic (as Kafka drops them),
//! before the answer.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::group::calls::ForgetTopic;
use crate::group::coordinator::GroupCoordinator;
use crate::shard::Shard;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    groups: &Rc<GroupCoordinator>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut r = DeleteTopicsResponse::default();
    for name in req.topic_names {
        r.responses
            .push(delete_one(shard, groups, name, version).await);
    }
    r
}

async fn delete_one(
    shard: &Rc<Shard>,
    groups: &Rc<GroupCoordinator>,
    name: TopicName,
    version: i16,
) -> DeletableTopicResult {
    let mut result = DeletableTopicResult::default();
    let code = match shard.delete_topic(name.0.as_str()).await {
        Ok(Some(_)) => {
            let topic = name.0.as_str();
            for forgot in groups
                .call_every_shard(|| ForgetTopic {
                    topic: topic.to_string(),
                })
                .await
            {
                if let Err(e) = forgot {
                    tracing::warn!(topic, "dropping the deleted topic's offsets: {e}");
                }
            }
            ErrorCode::None
        }
        Ok(None) => ErrorCode::UnknownTopicOrPartition,
        Err(e) => {
            if version >= 5 {
                result.error_message = Some(str_bytes(&e.to_string()));
            }
            ErrorCode::from(&e)
        }
    };
    result.name = Some(name);
    result.error_code = code.code();
    result
}
