//! DeleteGroups (42), v0–v2: removes empty groups and their offsets;
//! NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND if unknown.

use super::error_code::{group_result_code, ErrorCode};
use crate::group::calls::DeleteGroup;
use crate::group::coordinator::GroupCoordinator;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use std::rc::Rc;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut out = DeleteGroupsResponse::default();
    for id in &req.groups_names {
        let group = id.0.to_string();
        let call = DeleteGroup {
            group: group.clone(),
        };
        let mut r = DeletableGroupResult::default();
        r.group_id = id.clone();
        r.error_code = match groups.call(&group, call).await {
            Ok(result) => group_result_code(&result),
            Err(_) => ErrorCode::CoordinatorNotAvailable.code(),
        };
        out.results.push(r);
    }
    out
}
