//! OffsetFetch (9), v1–v8: a group's committed offsets (-1 where none),
//! for the partitions asked or, with null topics (v2+), all of them;
//! v8 asks for several groups at once.

use super::error_code::ErrorCode;
use super::{str_bytes, wire};
use crate::group::calls::FetchOffsets;
use crate::group::coordinator::GroupCoordinator;
use crate::group::Committed;
use crate::log::LeaderEpoch;
use ahash::AHashMap;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use std::rc::Rc;

/// A partition's committed offset, none, or its error.
type Found = Result<Option<Committed>, ErrorCode>;
type Offsets = Vec<(String, i32, Found)>;
/// (topic, [(partition, committed)]).
type TopicOffsets = (String, Vec<(i32, Found)>);

/// The committed offsets of the partitions asked for (in request order;
/// a negative index has none), or of all of the group's. With
/// `require_stable` (v7+), a partition whose offset is pending in a
/// transaction is UNSTABLE_OFFSET_COMMIT (the client retries).
async fn committed(
    groups: &Rc<GroupCoordinator>,
    group: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Offsets, i16> {
    let partitions = asked.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().filter_map(|&p| wire::topic_partition(t, p)))
            .collect()
    });
    let call = FetchOffsets {
        group: group.to_string(),
        partitions,
        require_stable,
    };
    let found = groups
        .call(group, call)
        .await
        .map_err(|_| ErrorCode::CoordinatorNotAvailable.code())?;
    let found = found
        .into_iter()
        .map(|(tp, c)| (tp, c.map_err(ErrorCode::from)));
    let Some(asked) = asked else {
        let wire_form =
            |(tp, c): (crate::log::TopicPartition, _)| (tp.topic, i32::from(tp.partition), c);
        return Ok(found.map(wire_form).collect());
    };
    let found: AHashMap<_, _> = found.collect();
    let mut out = Vec::new();
    for (t, ps) in asked {
        for p in ps {
            let c = wire::topic_partition(&t, p)
                .and_then(|tp| found.get(&tp).cloned())
                .unwrap_or(Ok(None));
            out.push((t.clone(), p, c));
        }
    }
    Ok(out)
}

/// Groups the flat offsets by topic, in first-seen order.
fn by_topic(offsets: Offsets) -> Vec<TopicOffsets> {
    let mut out: Vec<TopicOffsets> = Vec::new();
    for (t, p, c) in offsets {
        match out.iter_mut().find(|(name, _)| *name == t) {
            Some((_, ps)) => ps.push((p, c)),
            None => out.push((t, vec![(p, c)])),
        }
    }
    out
}

/// (offset, leader epoch, metadata, error code) as a partition answers.
fn values(c: &Found, version: i16) -> (i64, i32, String, i16) {
    let c = match c {
        Ok(c) => c,
        Err(code) => return (-1, -1, String::new(), code.code()),
    };
    let (offset, epoch, metadata) = match c {
        Some(c) => (
            c.offset,
            if version >= 5 {
                c.leader_epoch
            } else {
                LeaderEpoch::NONE
            }
            .0,
            c.metadata.clone(),
        ),
        None => (-1, -1, String::new()),
    };
    (offset, epoch, metadata, ErrorCode::None.code())
}

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut out = OffsetFetchResponse::default();
    if version >= 8 {
        for g in &req.groups {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let mut group = OffsetFetchResponseGroup::default();
            group.group_id = g.group_id.clone();
            let require_stable = req.require_stable;
            match committed(groups, g.group_id.0.as_str(), topics, require_stable).await {
                Ok(offsets) => {
                    for (name, ps) in by_topic(offsets) {
                        let mut topic = OffsetFetchResponseTopics::default();
                        topic.name = TopicName(str_bytes(&name));
                        for (p, c) in ps {
                            let (offset, epoch, metadata, code) = values(&c, version);
                            let mut rp = OffsetFetchResponsePartitions::default();
                            rp.partition_index = p;
                            rp.committed_offset = offset;
                            rp.committed_leader_epoch = epoch;
                            rp.metadata = Some(str_bytes(&metadata));
                            rp.error_code = code;
                            topic.partitions.push(rp);
                        }
                        group.topics.push(topic);
                    }
                }
                Err(code) => group.error_code = code,
            }
            out.groups.push(group);
        }
        return out;
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let require_stable = version >= 7 && req.require_stable;
    match committed(groups, req.group_id.0.as_str(), topics, require_stable).await {
        Ok(offsets) => {
            for (name, ps) in by_topic(offsets) {
                let mut topic = OffsetFetchResponseTopic::default();
                topic.name = TopicName(str_bytes(&name));
                for (p, c) in ps {
                    let (offset, epoch, metadata, code) = values(&c, version);
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
                    rp.committed_offset = offset;
                    rp.committed_leader_epoch = epoch;
                    rp.metadata = Some(str_bytes(&metadata));
                    rp.error_code = code;
                    topic.partitions.push(rp);
                }
                out.topics.push(topic);
            }
        }
        Err(code) if version >= 2 => out.error_code = code,
        Err(_) => {}
    }
    out
}
