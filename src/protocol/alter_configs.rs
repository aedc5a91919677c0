//! AlterConfigs (33), v0–v2: replace a topic's config overrides with the
//! given set (Kafka's semantics for this older API). Broker configs are
//! static in strom.

use super::describe_configs::RESOURCE_TOPIC;
use super::error_code::ErrorCode;
use super::{config_map, str_bytes};
use crate::shard::Shard;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut r = AlterConfigsResponse::default();
    for resource in req.resources {
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let outcome = if resource.resource_type != RESOURCE_TOPIC {
            Err((
                ErrorCode::InvalidConfig,
                "only topic configs can be altered".to_string(),
            ))
        } else {
            let configs = config_map(resource.configs.iter().map(|c| (&c.name, &c.value)));
            shard
                .set_topic_configs(resource.resource_name.as_str(), configs, req.validate_only)
                .await
                .map_err(|e| (ErrorCode::from(&e), e.to_string()))
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(&message));
        }
        r.responses.push(result);
    }
    r
}
