//! IncrementalAlterConfigs (44), v0–v1: SET and DELETE single topic configs,
//! leaving the others as they are. strom has no list-valued topic configs,
//! so APPEND and SUBTRACT are INVALID_CONFIG, as Kafka answers for
//! non-list configs.

use super::describe_configs::RESOURCE_TOPIC;
use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use std::rc::Rc;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub async fn handle(
    shard: &Rc<Shard>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut r = IncrementalAlterConfigsResponse::default();
    for resource in req.resources {
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        if let Err((code, message)) = alter(shard, &resource, req.validate_only).await {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(&message));
        }
        r.responses.push(result);
    }
    r
}

async fn alter(
    shard: &Rc<Shard>,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    if resource.resource_type != RESOURCE_TOPIC {
        return Err((
            ErrorCode::InvalidConfig,
            "only topic configs can be altered".into(),
        ));
    }
    let name = resource.resource_name.as_str();
    let topic = shard.topic(name).ok_or((
        ErrorCode::UnknownTopicOrPartition,
        format!("topic {name} does not exist"),
    ))?;
    let mut configs = topic.configs;
    for c in &resource.configs {
        let key = c.name.as_str().to_string();
        match (c.config_operation, &c.value) {
            (OP_SET, Some(v)) => {
                configs.insert(key, v.as_str().to_string());
            }
            (OP_DELETE, _) => {
                configs.remove(&key);
            }
            (op, _) => {
                return Err((
                    ErrorCode::InvalidConfig,
                    format!("operation {op} on {key} is not supported"),
                ));
            }
        }
    }
    shard
        .set_topic_configs(name, configs, validate_only)
        .await
        .map_err(|e| (ErrorCode::from(&e), e.to_string()))
}
