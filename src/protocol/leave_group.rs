//! LeaveGroup (13), v0–v5: one member (v0–v2) or a batch of members by
//! member id or group.instance.id (v3+), each with its own error.

use super::error_code::group_result_code;
use super::str_bytes;
use crate::group::calls::{LeaveGroup, MemberRef};
use crate::group::coordinator::GroupCoordinator;
use crate::group::GroupError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use std::rc::Rc;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    let members: Vec<MemberRef> = if version >= 3 {
        req.members
            .iter()
            .map(|m| MemberRef {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![MemberRef {
            member_id: req.member_id.to_string(),
            instance_id: None,
        }]
    };
    let call = LeaveGroup {
        group: group.clone(),
        members: members.clone(),
    };
    let results = groups
        .call(&group, call)
        .await
        .unwrap_or_else(|_| vec![Err(GroupError::CoordinatorNotAvailable); members.len()]);
    let mut out = LeaveGroupResponse::default();
    if version >= 3 {
        out.members = members
            .iter()
            .zip(&results)
            .map(|(member, r)| {
                let mut m = MemberResponse::default();
                m.member_id = str_bytes(&member.member_id);
                m.group_instance_id = member.instance_id.as_deref().map(str_bytes);
                m.error_code = group_result_code(r);
                m
            })
            .collect();
    } else {
        out.error_code = results.first().map_or(0, group_result_code);
    }
    out
}
