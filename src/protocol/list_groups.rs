//! ListGroups (16), v0–v4: every group on this broker (all shards), with
//! its state from v4 (and the v4 states filter).

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::group::calls::ListGroups;
use crate::group::coordinator::GroupCoordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::rc::Rc;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut out = ListGroupsResponse::default();
    let mut listed = Vec::new();
    for shard in groups.call_every_shard(|| ListGroups).await {
        match shard {
            Ok(groups) => listed.extend(groups),
            Err(_) => {
                out.error_code = ErrorCode::CoordinatorNotAvailable.code();
                return out;
            }
        }
    }
    listed.sort();
    let filter: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    for listed in listed {
        if version >= 4
            && !filter.is_empty()
            && !filter.iter().any(|f| f.eq_ignore_ascii_case(listed.state))
        {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(str_bytes(&listed.group_id));
        g.protocol_type = str_bytes(&listed.protocol_type);
        if version >= 4 {
            g.group_state = str_bytes(listed.state);
        }
        out.groups.push(g);
    }
    out
}
