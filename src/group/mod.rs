//! Consumer groups: Kafka's classic group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and committed offsets.
//!
//! A group lives on one shard: the owner of its partition of the internal
//! `__consumer_offsets` log (Kafka's `abs(hashCode(group)) % partitions`),
//! so every request for a group crosses to that shard once, and the
//! group's state and its durable log are touched by one thread only.
//! The broker stays assignor-agnostic: members' protocol metadata and the
//! leader's assignments pass through as bytes; the extra rounds that
//! cooperative clients need are ordinary rebalances.
//!
//! - `membership`: one group's rebalance state machine (no I/O).
//! - `member`: one member, and the answers it waits for.
//! - `store`: the `__consumer_offsets` record format (Kafka's schemas).
//! - `coordinator`: a shard's groups, their logs, timers and replay; how a
//!   request reaches its group's shard.
//! - `calls`: each group request, as a call on the coordinator shard.
//!
//! Built on `shard` (its `LogDir` opens the internal log, its `Router`
//! carries the calls); `shard` knows nothing of groups.

pub mod calls;
pub mod coordinator;
pub mod member;
pub mod membership;
pub mod store;

use crate::log::{LeaderEpoch, PartitionId};
use bytes::Bytes;
use std::time::Duration;

/// The group errors strom answers with, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("the coordinator is loading the group")]
    CoordinatorLoadInProgress,
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    #[error("a member id is required")]
    MemberIdRequired,
    #[error("fenced instance id")]
    FencedInstanceId,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group is not empty")]
    NonEmptyGroup,
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    #[error("a newer producer with the same transactional id fenced this one")]
    ProducerFenced,
    #[error("the offsets' partition is not in the producer's transaction")]
    InvalidTxnState,
    #[error("an offset of the partition is pending in a transaction")]
    UnstableOffsetCommit,
    #[error("storage error")]
    Storage,
}

pub use crate::config::GroupConfig;

/// The internal log's topic name, as Kafka's.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Which `__consumer_offsets` partition keeps a group (Kafka's hash).
pub fn offsets_partition(group: &str, partitions: u32) -> PartitionId {
    crate::log::state_log::key_partition(group, partitions)
}

pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Clone, Debug)]
pub struct JoinedMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone, Debug)]
pub struct JoinResponse {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member, for the leader; empty for the others.
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    pub fn error(e: GroupError, member_id: &str) -> JoinResponse {
        JoinResponse {
            error: Some(e),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SyncResponse {
    pub error: Option<GroupError>,
    pub assignment: Bytes,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
}

impl SyncResponse {
    pub fn error(e: GroupError) -> SyncResponse {
        SyncResponse {
            error: Some(e),
            assignment: Bytes::new(),
            protocol_type: None,
            protocol_name: None,
        }
    }

    fn ok(assignment: Bytes, group: &membership::Group) -> SyncResponse {
        SyncResponse {
            error: None,
            assignment,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol.clone(),
        }
    }
}

/// A committed offset.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: LeaderEpoch,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub group_id: String,
    pub error: Option<GroupError>,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<DescribedMember>,
}

#[derive(Clone, Debug)]
pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}
