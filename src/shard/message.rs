//! What crosses shards: one `Request` per (request, owner shard) — never
//! one per record — and its `Reply`. Everything here is `Send`; record data
//! travels as `bytes::Bytes` (reference-counted, never copied) and cold
//! reads as a file range.

use super::topics::Topic;
use super::ShardError;
use crate::group::coordinator::PartitionResults;
use crate::group::{
    Committed, GroupDescription, GroupError, JoinRequest, JoinResponse, SyncResponse,
};
use crate::log::ReadChunk;
use crate::metrics::Snapshot;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Instant;

/// (topic, partition) of a request item.
pub type Key = (String, i32);

pub enum Request {
    /// Append each item's record set; with acks=-1 reply only once durable.
    Produce { acks: i16, items: Vec<(Key, Bytes)> },
    /// Read from each item's offset, at most the given bytes, and at most
    /// `budget` bytes over all items in order (beyond the first batch of
    /// each item read): a fetch's `max_bytes`, as Kafka applies it.
    Read {
        items: Vec<(Key, (u64, usize))>,
        budget: usize,
    },
    /// ListOffsets: earliest (-2), latest (-1) or by timestamp.
    ListOffsets { items: Vec<(Key, i64)> },
    /// Reply once this shard appended anything after `seen` (its append
    /// generation) or at `deadline`: wakes long-polling fetches elsewhere.
    Watch { seen: u64, deadline: Instant },
    /// A topic change, to shard 0, which owns the durable topic table.
    Admin(AdminOp),
    /// Shard 0 tells every shard about a changed topic.
    TopicUpdate(TopicUpdate),
    /// A copy of the shard's measurements (for `/metrics`).
    Metrics,
    /// A consumer-group request, to the group's coordinator shard.
    Group(GroupCall),
}

/// What a group coordinator is asked (see `group::coordinator`).
pub enum GroupCall {
    Join {
        group: String,
        request: JoinRequest,
    },
    Sync {
        group: String,
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    },
    Heartbeat {
        group: String,
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
    },
    Leave {
        group: String,
        members: Vec<(String, Option<String>)>,
    },
    Commit {
        group: String,
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
        offsets: Vec<(String, i32, Committed)>,
    },
    Fetch {
        group: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    Describe {
        group: String,
    },
    List,
    Delete {
        group: String,
    },
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
}

pub enum GroupAnswer {
    Join(JoinResponse),
    Sync(SyncResponse),
    Done(Result<(), GroupError>),
    Leave(Vec<Result<(), GroupError>>),
    Offsets(Result<PartitionResults, GroupError>),
    Committed(Vec<(String, i32, Option<Committed>)>),
    Describe(GroupDescription),
    List(Vec<(String, String, &'static str)>),
}

pub enum AdminOp {
    CreateTopic {
        name: String,
        partitions: u32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        partitions: u32,
        validate_only: bool,
    },
    SetConfigs {
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
}

#[derive(Clone)]
pub enum TopicUpdate {
    Upsert(Topic),
    Delete(String),
}

pub struct ReadOk {
    pub high_watermark: u64,
    pub log_start: u64,
    pub chunk: ReadChunk,
}

pub enum Reply {
    Produce(Vec<Result<(u64, u64), ShardError>>),
    Read {
        generation: u64,
        items: Vec<Result<ReadOk, ShardError>>,
    },
    ListOffsets(Vec<Result<Option<(u64, i64)>, ShardError>>),
    Watched,
    Admin(Result<Option<Topic>, ShardError>),
    Updated(Result<(), ShardError>),
    Metrics(Box<Snapshot>),
    Group(GroupAnswer),
}
