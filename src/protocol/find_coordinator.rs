//! FindCoordinator (10), v0–v4: this broker coordinates every group (key
//! type 0) and every transactional id (key type 1); the shard inside that
//! owns it is the broker's business. Any other key type is
//! INVALID_REQUEST.
//!
//! librdkafka also reads this API's presence as "the broker supports LZ4",
//! so advertising it is what lets lz4 producers compress.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(shard: &Shard, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let mut r = FindCoordinatorResponse::default();
    if version >= 4 {
        r.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (code, node, host, port) = answer(shard, req.key_type);
                let mut c = Coordinator::default();
                c.key = key;
                c.error_code = code.code();
                c.node_id = node;
                c.host = host;
                c.port = port;
                c
            })
            .collect();
    } else {
        let (code, node, host, port) = answer(shard, req.key_type);
        r.error_code = code.code();
        r.node_id = node;
        r.host = host;
        r.port = port;
    }
    r
}

fn answer(shard: &Shard, key_type: i8) -> (ErrorCode, BrokerId, StrBytes, i32) {
    if key_type == KEY_TYPE_GROUP || key_type == KEY_TYPE_TRANSACTION {
        (
            ErrorCode::None,
            BrokerId(shard.config.node_id),
            str_bytes(&shard.config.advertised_host),
            i32::from(shard.config.advertised_port),
        )
    } else {
        (ErrorCode::InvalidRequest, BrokerId(-1), str_bytes(""), -1)
    }
}
