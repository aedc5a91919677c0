//! CreatePartitions (37), v0–v3: grow a topic's partition count.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut r = CreatePartitionsResponse::default();
    for topic in req.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Err((
                ErrorCode::InvalidReplicaAssignment,
                "manual replica assignment is not supported".to_string(),
            ))
        } else if topic.count < 1 {
            Err((
                ErrorCode::InvalidPartitions,
                format!("{} partitions", topic.count),
            ))
        } else {
            shard
                .create_partitions(
                    topic.name.0.as_str(),
                    topic.count.unsigned_abs(),
                    req.validate_only,
                )
                .await
                .map_err(|e| (ErrorCode::from(&e), e.to_string()))
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(&message));
        }
        r.results.push(result);
    }
    r
}
