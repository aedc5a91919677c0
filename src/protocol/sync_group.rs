//! SyncGroup (14), v0–v5: the leader hands in the assignment; every
//! member gets its own once the leader's has arrived.

use super::error_code::group_code;
use super::str_bytes;
use crate::group::calls::{MemberRef, SyncGroup};
use crate::group::coordinator::GroupCoordinator;
use crate::group::{GroupError, SyncResponse};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use std::rc::Rc;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group = req.group_id.0.to_string();
    let call = SyncGroup {
        group: group.clone(),
        member: MemberRef {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        },
        generation: req.generation_id,
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let answer = groups
        .call(&group, call)
        .await
        .unwrap_or_else(|_| SyncResponse::error(GroupError::CoordinatorNotAvailable));
    let mut out = SyncGroupResponse::default();
    out.error_code = group_code(answer.error);
    out.assignment = answer.assignment;
    if version >= 5 {
        out.protocol_type = answer.protocol_type.as_deref().map(str_bytes);
        out.protocol_name = answer.protocol_name.as_deref().map(str_bytes);
    }
    out
}
