//! DescribeGroups (15), v0–v5: state, protocol and members (with their
//! metadata and assignment) of each group; an unknown group is "Dead".

use super::error_code::{group_code, ErrorCode};
use super::str_bytes;
use crate::group::calls::DescribeGroup;
use crate::group::coordinator::GroupCoordinator;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use std::rc::Rc;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut out = DescribeGroupsResponse::default();
    for id in &req.groups {
        let group = id.0.to_string();
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        if version >= 3 {
            d.authorized_operations = i32::MIN;
        }
        let call = DescribeGroup {
            group: group.clone(),
        };
        match groups.call(&group, call).await {
            Ok(g) => {
                d.error_code = group_code(g.error);
                d.group_state = str_bytes(g.state);
                d.protocol_type = str_bytes(&g.protocol_type);
                d.protocol_data = str_bytes(&g.protocol);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = str_bytes(&m.member_id);
                        if version >= 4 {
                            dm.group_instance_id = m.instance_id.as_deref().map(str_bytes);
                        }
                        dm.client_id = str_bytes(&m.client_id);
                        dm.client_host = str_bytes(&m.client_host);
                        dm.member_metadata = m.metadata;
                        dm.member_assignment = m.assignment;
                        dm
                    })
                    .collect();
            }
            Err(_) => d.error_code = ErrorCode::CoordinatorNotAvailable.code(),
        }
        out.groups.push(d);
    }
    out
}
