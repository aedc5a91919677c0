//! DeleteTopics (20): by name; the partitions' files go with them.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut r = DeleteTopicsResponse::default();
    for name in req.topic_names {
        r.responses.push(delete_one(shard, name, version).await);
    }
    r
}

async fn delete_one(shard: &Rc<Shard>, name: TopicName, version: i16) -> DeletableTopicResult {
    let mut result = DeletableTopicResult::default();
    let code = match shard.delete_topic(name.0.as_str()).await {
        Ok(Some(_)) => ErrorCode::None,
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
