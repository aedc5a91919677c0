//! ListGroups (16), v0–v4: every group on this broker (all shards), with
//! its state from v4 (and the v4 states filter).

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let mut out = ListGroupsResponse::default();
    let groups = match shard.list_groups().await {
        Ok(g) => g,
        Err(_) => {
            out.error_code = ErrorCode::CoordinatorNotAvailable.code();
            return out;
        }
    };
    let filter: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    for (id, protocol_type, state) in groups {
        if version >= 4
            && !filter.is_empty()
            && !filter.iter().any(|f| f.eq_ignore_ascii_case(state))
        {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(str_bytes(&id));
        g.protocol_type = str_bytes(&protocol_type);
        if version >= 4 {
            g.group_state = str_bytes(state);
        }
        out.groups.push(g);
    }
    out
}
