//! The records of the internal `__consumer_offsets` log, in Kafka's
//! schemas: an offset commit is key v1 (group, topic, partition) → value
//! v3 (offset, leader epoch, metadata, commit time); a group's membership
//! is key v2 (group) → GroupMetadataValue v3. An empty value is a
//! tombstone (Kafka writes null; strom's batch builder has no null value,
//! and no live value is empty). The latest record per key wins on replay.

use super::Committed;
use crate::log::fields::{
    get_bytes, get_i16, get_i32, get_i64, get_opt_str, get_str, put_bytes, put_opt_str, put_str,
};
use crate::log::{LeaderEpoch, PartitionId, TopicPartition};
use bytes::{BufMut, Bytes};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Offset {
        group: String,
        partition: TopicPartition,
    },
    Group(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    pub session_timeout: Duration,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

pub use crate::log::fields::Malformed;

impl Key {
    /// The encoded key of a group's committed offset for a partition.
    pub fn offset(group: &str, partition: &TopicPartition) -> Vec<u8> {
        Key::Offset {
            group: group.to_string(),
            partition: partition.clone(),
        }
        .encode()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Key::Offset { group, partition } => {
                out.put_i16(1);
                put_str(&mut out, group);
                put_str(&mut out, &partition.topic);
                out.put_i32(i32::from(partition.partition));
            }
            Key::Group(group) => {
                out.put_i16(2);
                put_str(&mut out, group);
            }
        }
        out
    }

    pub fn decode(mut buf: &[u8]) -> Result<Key, Malformed> {
        let version = get_i16(&mut buf)?;
        match version {
            0 | 1 => {
                let group = get_str(&mut buf)?;
                let topic = get_str(&mut buf)?;
                let index = PartitionId::try_from(get_i32(&mut buf)?)
                    .map_err(|_| Malformed("negative partition"))?;
                let partition = TopicPartition::new(topic, index);
                Ok(Key::Offset { group, partition })
            }
            2 => Ok(Key::Group(get_str(&mut buf)?)),
            _ => Err(Malformed("unknown key version")),
        }
    }

    pub fn group(&self) -> &str {
        match self {
            Key::Offset { group, .. } | Key::Group(group) => group,
        }
    }
}

pub fn encode_offset(c: &Committed) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + c.metadata.len());
    out.put_i16(3);
    out.put_i64(c.offset);
    out.put_i32(c.leader_epoch.0);
    put_str(&mut out, &c.metadata);
    out.put_i64(c.commit_timestamp_ms);
    out
}

pub fn decode_offset(mut buf: &[u8]) -> Result<Committed, Malformed> {
    let version = get_i16(&mut buf)?;
    if version != 3 {
        return Err(Malformed("unknown offset value version"));
    }
    Ok(Committed {
        offset: get_i64(&mut buf)?,
        leader_epoch: LeaderEpoch(get_i32(&mut buf)?),
        metadata: get_str(&mut buf)?,
        commit_timestamp_ms: get_i64(&mut buf)?,
    })
}

pub fn encode_group(g: &StoredGroup) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.put_i16(3);
    put_str(&mut out, &g.protocol_type);
    out.put_i32(g.generation);
    put_opt_str(&mut out, g.protocol.as_deref());
    put_opt_str(&mut out, g.leader.as_deref());
    out.put_i64(g.state_timestamp_ms);
    out.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut out, &m.member_id);
        put_opt_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32);
        out.put_i32(m.session_timeout.as_millis().min(i32::MAX as u128) as i32);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

pub fn decode_group(mut buf: &[u8]) -> Result<StoredGroup, Malformed> {
    let version = get_i16(&mut buf)?;
    if version != 3 {
        return Err(Malformed("unknown group value version"));
    }
    let protocol_type = get_str(&mut buf)?;
    let generation = get_i32(&mut buf)?;
    let protocol = get_opt_str(&mut buf)?;
    let leader = get_opt_str(&mut buf)?;
    let state_timestamp_ms = get_i64(&mut buf)?;
    let n = get_i32(&mut buf)?;
    let mut members = Vec::new();
    for _ in 0..n.max(0) {
        members.push(StoredMember {
            member_id: get_str(&mut buf)?,
            instance_id: get_opt_str(&mut buf)?,
            client_id: get_str(&mut buf)?,
            client_host: get_str(&mut buf)?,
            rebalance_timeout: Duration::from_millis(get_i32(&mut buf)?.max(0) as u64),
            session_timeout: Duration::from_millis(get_i32(&mut buf)?.max(0) as u64),
            subscription: get_bytes(&mut buf)?,
            assignment: get_bytes(&mut buf)?,
        });
    }
    Ok(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_is_an_error() {
        let key = Key::Offset {
            group: "g".into(),
            partition: TopicPartition::new("orders", PartitionId::new(7).unwrap()),
        };
        assert_eq!(Key::decode(&key.encode()).unwrap(), key);
        let c = Committed {
            offset: 42,
            leader_epoch: LeaderEpoch::NONE,
            metadata: "m".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(decode_offset(&encode_offset(&c)).unwrap(), c);
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp_ms: 5,
            members: vec![StoredMember {
                member_id: "m-1".into(),
                instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: Duration::from_secs(300),
                session_timeout: Duration::from_secs(45),
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let encoded = encode_group(&g);
        assert_eq!(decode_group(&encoded).unwrap(), g);
        for cut in 0..encoded.len() {
            assert!(decode_group(&encoded[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            Key::decode(&Key::Group("g".into()).encode())
                .unwrap()
                .group(),
            "g"
        );
        assert!(Key::decode(&[0, 9]).is_err());
    }
}
