//! LeaveGroup (13), v0–v5: one member (v0–v2) or a batch of members by
//! member id or group.instance.id (v3+), each with its own error.

use super::error_code::group_result_code;
use super::str_bytes;
use crate::group::GroupError;
use crate::shard::message::{GroupAnswer, GroupCall};
use crate::shard::Shard;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let call = GroupCall::Leave {
        group: group.clone(),
        members: members.clone(),
    };
    let results = match shard.group_call(&group, call).await {
        Ok(GroupAnswer::Leave(r)) => r,
        _ => vec![Err(GroupError::CoordinatorNotAvailable); members.len()],
    };
    let mut out = LeaveGroupResponse::default();
    if version >= 3 {
        out.members = members
            .iter()
            .zip(&results)
            .map(|((id, instance), r)| {
                let mut m = MemberResponse::default();
                m.member_id = str_bytes(id);
                m.group_instance_id = instance.as_deref().map(str_bytes);
                m.error_code = group_result_code(r);
                m
            })
            .collect();
    } else {
        out.error_code = results.first().map_or(0, group_result_code);
    }
    out
}
