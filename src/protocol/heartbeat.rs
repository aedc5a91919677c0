//! Heartbeat (12), v0–v4: keeps a member's session alive; answers
//! REBALANCE_IN_PROGRESS when it must rejoin.

use super::error_code::group_result_code;
use crate::group::GroupError;
use crate::shard::message::{GroupAnswer, GroupCall};
use crate::shard::Shard;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let call = GroupCall::Heartbeat {
        group: group.clone(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: req.generation_id,
    };
    let result = match shard.group_call(&group, call).await {
        Ok(GroupAnswer::Done(r)) => r,
        _ => Err(GroupError::CoordinatorNotAvailable),
    };
    let mut out = HeartbeatResponse::default();
    out.error_code = group_result_code(&result);
    out
}
