//! Heartbeat (12), v0–v4: keeps a member's session alive; answers
//! REBALANCE_IN_PROGRESS when it must rejoin.

use super::error_code::group_result_code;
use crate::group::calls::{Heartbeat, MemberRef};
use crate::group::coordinator::GroupCoordinator;
use crate::group::GroupError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use std::rc::Rc;

pub async fn handle(groups: &Rc<GroupCoordinator>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let call = Heartbeat {
        group: group.clone(),
        member: MemberRef {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        },
        generation: req.generation_id,
    };
    let result = groups
        .call(&group, call)
        .await
        .unwrap_or(Err(GroupError::CoordinatorNotAvailable));
    let mut out = HeartbeatResponse::default();
    out.error_code = group_result_code(&result);
    out
}
