//! The Kafka wire protocol edge: request headers, the dispatch table, one
//! file per API. Typed errors from the inner layers become Kafka error codes
//! here and nowhere else.
//!
//! Decoding and encoding use the `kafka-protocol` crate. A request is
//! answered at the version it was sent in; `SUPPORTED` is exactly what
//! ApiVersions advertises. An ApiVersions request at a version we do not
//! know gets a v0 UNSUPPORTED_VERSION answer listing what we support (as
//! Kafka does); any other unknown API or version, or an undecodable request,
//! is an error that closes the connection (as Kafka does).

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod error_code;
pub mod fetch;
pub mod fetch_response;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod wire;

use crate::broker::Broker;
use crate::log::FileSlice;
use crate::metrics::Stage;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::rc::Rc;
use std::time::Instant;

/// What strom implements, by API: (key, min version, max version).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("request of {0} bytes is too short for a header")]
    ShortHeader(usize),
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("{api:?} v{version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("undecodable {api:?} v{version} request: {reason}")]
    Undecodable {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("encoding {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// One piece of a response frame, written in order: encoded bytes (or a
/// tail-cache batch), or a segment file range sent with `sendfile`.
pub enum Part {
    Bytes(Bytes),
    File(FileSlice),
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::File(f) => f.len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole response frame, size prefix included, as parts.
pub struct Response(pub Vec<Part>);

pub fn supported(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(k, min, max)| k == api && (min..=max).contains(&version))
}

/// Answers one request frame. `Ok(None)`: no response is due (acks=0).
/// `client_host`: the peer, as Kafka shows it ("/127.0.0.1").
pub async fn handle(
    broker: &Rc<Broker>,
    mut frame: Bytes,
    client_host: &str,
) -> Result<Option<Response>, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::ShortHeader(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(key).map_err(|_| ProtocolError::UnknownApi(key))?;
    if !supported(api, version) {
        if api == ApiKey::ApiVersions {
            let body = ResponseKind::ApiVersions(api_versions::unsupported());
            return encode(ApiKey::ApiVersions, 0, correlation_id, &body).map(Some);
        }
        return Err(ProtocolError::UnsupportedVersion { api, version });
    }
    let undecodable = |e: anyhow::Error| ProtocolError::Undecodable {
        api,
        version,
        reason: e.to_string(),
    };
    let metrics = &broker.shard.metrics;
    let decoding = Instant::now();
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(undecodable)?;
    let request = RequestKind::decode(api, &mut frame, version).map_err(undecodable)?;
    metrics.since(Stage::Decode, decoding);
    let client = header
        .client_id
        .as_ref()
        .map(StrBytes::as_str)
        .unwrap_or("");
    tracing::trace!(?api, version, client, correlation_id, "request");
    let cx = Context {
        api,
        version,
        correlation_id,
        client,
        client_host,
    };
    let response = match dispatch(broker, request, &cx).await? {
        Answer::Body(body) => body,
        Answer::Frame(frame) => return Ok(Some(frame)),
        Answer::Nothing => return Ok(None),
    };
    metrics.count_errors(key, error_codes(&response));
    encode(api, version, correlation_id, &response).map(Some)
}

/// What a handler may need of a request beyond its body.
struct Context<'a> {
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client: &'a str,
    client_host: &'a str,
}

/// What a request turned into. Returned once per request and matched at
/// once: moving the large variant costs less than boxing it would.
#[allow(clippy::large_enum_variant)]
enum Answer {
    /// A response body, to be encoded at the request's version.
    Body(ResponseKind),
    /// A whole frame, encoded by its handler (Fetch: record bytes are
    /// never copied into an encoder's buffer).
    Frame(Response),
    /// No response is due (acks=0).
    Nothing,
}

/// The dispatch table: one line per API, to the file that handles it.
async fn dispatch(
    broker: &Rc<Broker>,
    request: RequestKind,
    cx: &Context<'_>,
) -> Result<Answer, ProtocolError> {
    let (shard, groups, txns, v) = (&broker.shard, &broker.groups, &broker.txns, cx.version);
    use ResponseKind as R;
    let body = match request {
        RequestKind::ApiVersions(_) => R::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(r) => R::Metadata(metadata::handle(shard, r, v).await),
        RequestKind::CreateTopics(r) => R::CreateTopics(create_topics::handle(shard, r, v).await),
        RequestKind::DeleteTopics(r) => {
            R::DeleteTopics(delete_topics::handle(shard, groups, r, v).await)
        }
        RequestKind::Produce(r) => match produce::handle(shard, r, v).await {
            Some(response) => R::Produce(response),
            None => return Ok(Answer::Nothing),
        },
        RequestKind::Fetch(r) => {
            let frame = fetch::handle(shard, r, v, cx.correlation_id).await;
            return Ok(Answer::Frame(frame));
        }
        RequestKind::CreatePartitions(r) => {
            R::CreatePartitions(create_partitions::handle(shard, r).await)
        }
        RequestKind::DescribeConfigs(r) => R::DescribeConfigs(describe_configs::handle(shard, r)),
        RequestKind::AlterConfigs(r) => R::AlterConfigs(alter_configs::handle(shard, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            R::IncrementalAlterConfigs(incremental_alter_configs::handle(shard, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            R::FindCoordinator(find_coordinator::handle(shard, r, v))
        }
        RequestKind::ListOffsets(r) => R::ListOffsets(list_offsets::handle(shard, r, v).await),
        RequestKind::JoinGroup(r) => {
            let joined = join_group::handle(groups, r, v, cx.client, cx.client_host);
            R::JoinGroup(joined.await)
        }
        RequestKind::SyncGroup(r) => R::SyncGroup(sync_group::handle(groups, r, v).await),
        RequestKind::Heartbeat(r) => R::Heartbeat(heartbeat::handle(groups, r).await),
        RequestKind::LeaveGroup(r) => R::LeaveGroup(leave_group::handle(groups, r, v).await),
        RequestKind::OffsetCommit(r) => {
            R::OffsetCommit(offset_commit::handle(shard, groups, r, v).await)
        }
        RequestKind::OffsetFetch(r) => R::OffsetFetch(offset_fetch::handle(groups, r, v).await),
        RequestKind::ListGroups(r) => R::ListGroups(list_groups::handle(groups, r, v).await),
        RequestKind::DescribeGroups(r) => {
            R::DescribeGroups(describe_groups::handle(groups, r, v).await)
        }
        RequestKind::DeleteGroups(r) => R::DeleteGroups(delete_groups::handle(groups, r).await),
        RequestKind::OffsetDelete(r) => R::OffsetDelete(offset_delete::handle(groups, r).await),
        RequestKind::DeleteRecords(r) => R::DeleteRecords(delete_records::handle(shard, r).await),
        RequestKind::DescribeProducers(r) => {
            R::DescribeProducers(describe_producers::handle(shard, r).await)
        }
        RequestKind::InitProducerId(r) => {
            let ids = &broker.producer_ids;
            R::InitProducerId(init_producer_id::handle(ids, txns, r, v).await)
        }
        RequestKind::AddPartitionsToTxn(r) => {
            R::AddPartitionsToTxn(add_partitions_to_txn::handle(shard, txns, r, v).await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            R::AddOffsetsToTxn(add_offsets_to_txn::handle(groups, txns, r, v).await)
        }
        RequestKind::EndTxn(r) => R::EndTxn(end_txn::handle(txns, r, v).await),
        RequestKind::TxnOffsetCommit(r) => {
            R::TxnOffsetCommit(txn_offset_commit::handle(shard, groups, r, v).await)
        }
        RequestKind::DescribeTransactions(r) => {
            R::DescribeTransactions(describe_transactions::handle(txns, r).await)
        }
        RequestKind::ListTransactions(r) => {
            R::ListTransactions(list_transactions::handle(txns, r, v).await)
        }
        _ => {
            let (api, version) = (cx.api, v);
            return Err(ProtocolError::UnsupportedVersion { api, version });
        }
    };
    Ok(Answer::Body(body))
}

/// How many error codes other than NONE an answer carries (for the
/// per-API error counters; Fetch counts its own).
fn error_codes(response: &ResponseKind) -> u64 {
    use std::iter::once;
    // Counted as they are walked: no allocation per response.
    fn failed(codes: impl IntoIterator<Item = i16>) -> u64 {
        codes.into_iter().filter(|&c| c != 0).count() as u64
    }
    match response {
        ResponseKind::Produce(r) => failed(
            r.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
        ),
        ResponseKind::ListOffsets(r) => failed(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Metadata(r) => failed(r.topics.iter().map(|t| t.error_code)),
        ResponseKind::CreateTopics(r) => failed(r.topics.iter().map(|t| t.error_code)),
        ResponseKind::DeleteTopics(r) => failed(r.responses.iter().map(|t| t.error_code)),
        ResponseKind::CreatePartitions(r) => failed(r.results.iter().map(|t| t.error_code)),
        ResponseKind::DescribeConfigs(r) => failed(r.results.iter().map(|t| t.error_code)),
        ResponseKind::AlterConfigs(r) => failed(r.responses.iter().map(|t| t.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => {
            failed(r.responses.iter().map(|t| t.error_code))
        }
        ResponseKind::FindCoordinator(r) => {
            failed(once(r.error_code).chain(r.coordinators.iter().map(|c| c.error_code)))
        }
        ResponseKind::ApiVersions(r) => failed([r.error_code]),
        ResponseKind::JoinGroup(r) => failed([r.error_code]),
        ResponseKind::SyncGroup(r) => failed([r.error_code]),
        ResponseKind::Heartbeat(r) => failed([r.error_code]),
        ResponseKind::LeaveGroup(r) => {
            failed(once(r.error_code).chain(r.members.iter().map(|m| m.error_code)))
        }
        ResponseKind::OffsetCommit(r) => failed(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::OffsetFetch(r) => {
            failed(once(r.error_code).chain(r.groups.iter().map(|g| g.error_code)))
        }
        ResponseKind::ListGroups(r) => failed([r.error_code]),
        ResponseKind::DescribeGroups(r) => failed(r.groups.iter().map(|g| g.error_code)),
        ResponseKind::DeleteGroups(r) => failed(r.results.iter().map(|g| g.error_code)),
        ResponseKind::InitProducerId(r) => failed([r.error_code]),
        ResponseKind::AddPartitionsToTxn(r) => {
            failed(r.results_by_topic_v3_and_below.iter().flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            }))
        }
        ResponseKind::AddOffsetsToTxn(r) => failed([r.error_code]),
        ResponseKind::EndTxn(r) => failed([r.error_code]),
        ResponseKind::TxnOffsetCommit(r) => failed(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::DescribeTransactions(r) => {
            failed(r.transaction_states.iter().map(|t| t.error_code))
        }
        ResponseKind::ListTransactions(r) => failed([r.error_code]),
        ResponseKind::DescribeProducers(r) => failed(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::DeleteRecords(r) => failed(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::OffsetDelete(r) => failed(
            once(r.error_code).chain(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            ),
        ),
        _ => 0,
    }
}

/// A whole response frame: size, response header, body.
fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Response, ProtocolError> {
    let failed = |e: anyhow::Error| ProtocolError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut buf, api.response_header_version(version))
        .map_err(failed)?;
    body.encode(&mut buf, version).map_err(failed)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(Response(vec![Part::Bytes(buf.freeze())]))
}

/// Config name/value pairs from a request; null values are left out.
pub(crate) fn config_map<'a>(
    pairs: impl Iterator<Item = (&'a StrBytes, &'a Option<StrBytes>)>,
) -> std::collections::BTreeMap<String, String> {
    pairs
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.as_ref()?.as_str().to_string())))
        .collect()
}

/// A `StrBytes` from any string.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
