//! DescribeConfigs (32), v1–v4: a topic's configs by Kafka's names, each
//! marked as the topic's own override or the default; a broker's static
//! settings.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

pub fn handle(shard: &Shard, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut r = DescribeConfigsResponse::default();
    for resource in req.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.as_str();
        let entries: Result<Vec<(String, String, i8)>, ErrorCode> = match resource.resource_type {
            RESOURCE_TOPIC => topic_configs(shard, name),
            RESOURCE_BROKER => Ok(broker_configs(shard)),
            _ => Err(ErrorCode::InvalidRequest),
        };
        match entries {
            Ok(entries) => {
                let wanted = resource.configuration_keys.as_ref();
                result.configs = entries
                    .into_iter()
                    .filter(|(k, _, _)| wanted.is_none_or(|w| w.iter().any(|x| x.as_str() == k)))
                    .map(|(k, v, source)| {
                        let mut c = DescribeConfigsResourceResult::default();
                        c.name = str_bytes(&k);
                        c.value = Some(str_bytes(&v));
                        c.config_source = source;
                        c
                    })
                    .collect();
            }
            Err(code) => {
                result.error_code = code.code();
                result.error_message = Some(str_bytes(&format!("cannot describe {name}")));
            }
        }
        r.results.push(result);
    }
    r
}

fn topic_configs(shard: &Shard, name: &str) -> Result<Vec<(String, String, i8)>, ErrorCode> {
    let topic = shard
        .topic(name)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    let config = topic
        .log_config(&shard.config.log)
        .map_err(|_| ErrorCode::InvalidConfig)?;
    Ok(config
        .describe()
        .into_iter()
        .map(|(k, v)| {
            let source = if topic.configs.contains_key(k) {
                SOURCE_DYNAMIC_TOPIC
            } else {
                SOURCE_DEFAULT
            };
            (k.to_string(), v, source)
        })
        .collect())
}

fn broker_configs(shard: &Shard) -> Vec<(String, String, i8)> {
    let c = &shard.config;
    let mut out = vec![
        ("broker.id".to_string(), c.node_id.to_string()),
        ("num.partitions".to_string(), c.num_partitions.to_string()),
        (
            "auto.create.topics.enable".to_string(),
            c.auto_create_topics.to_string(),
        ),
        (
            "socket.request.max.bytes".to_string(),
            c.socket_request_max_bytes.to_string(),
        ),
        ("log.dirs".to_string(), c.data_dir.display().to_string()),
        (
            "max.broker.partitions".to_string(),
            c.max_broker_partitions.to_string(),
        ),
    ];
    for (k, v) in c.log.describe() {
        out.push((format!("log.{k}"), v));
    }
    out.into_iter()
        .map(|(k, v)| (k, v, SOURCE_STATIC_BROKER))
        .collect()
}
