//! JoinGroup (11), v0–v9: a member joins (or rejoins) a group; the answer
//! waits until the rebalance completes. v4+ clients without a member id
//! first get MEMBER_ID_REQUIRED with one to use; v5+ carry a
//! group.instance.id (static membership).

use super::error_code::group_code;
use super::str_bytes;
use super::wire;
use crate::group::calls::JoinGroup;
use crate::group::coordinator::GroupCoordinator;
use crate::group::{GroupError, JoinRequest, JoinResponse};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use std::rc::Rc;
use std::time::Duration;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let group = req.group_id.0.to_string();
    let millis = |ms: i32| Duration::from_millis(wire::size(ms) as u64);
    let session = millis(req.session_timeout_ms);
    let request = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout: session,
        rebalance_timeout: if version >= 1 {
            millis(req.rebalance_timeout_ms)
        } else {
            session
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let member = request.member_id.clone();
    let join = JoinGroup {
        group: group.clone(),
        request,
    };
    let answer = groups
        .call(&group, join)
        .await
        .unwrap_or_else(|_| JoinResponse::error(GroupError::CoordinatorNotAvailable, &member));
    let mut out = JoinGroupResponse::default();
    out.error_code = group_code(answer.error);
    out.generation_id = answer.generation;
    if version >= 7 {
        out.protocol_type = answer.protocol_type.as_deref().map(str_bytes);
    }
    out.protocol_name = match (answer.protocol_name.as_deref(), version >= 7) {
        (Some(name), _) => Some(str_bytes(name)),
        (None, true) => None,
        (None, false) => Some(str_bytes("")),
    };
    out.leader = str_bytes(&answer.leader);
    out.member_id = str_bytes(&answer.member_id);
    out.members = answer
        .members
        .into_iter()
        .map(|m| {
            let mut jm = JoinGroupResponseMember::default();
            jm.member_id = str_bytes(&m.id);
            if version >= 5 {
                jm.group_instance_id = m.instance_id.as_deref().map(str_bytes);
            }
            jm.metadata = m.metadata;
            jm
        })
        .collect();
    out
}
