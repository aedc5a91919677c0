//! One client connection, pipelined: a reader takes request frames off the
//! socket and starts handling each at once (up to `PIPELINE_DEPTH` at a
//! time); a writer sends the answers strictly in request order. Clients
//! pipeline requests (librdkafka keeps up to 5 produce requests in flight),
//! so a connection's acks=all produce requests share fdatasyncs instead of
//! waiting for one each.
//!
//! Order: requests start in the order they arrive (tasks spawned in
//! arrival order run first in that order), and every step before a produce
//! request's append is first-in first-out (the fan-out polls its owners'
//! calls in order, the router's per-peer send order, an owner's appends one
//! after the other, the partition's append lock), so appends from one
//! connection to one partition keep request order.
//!
//! At shutdown a connection reads no new request: it writes the answers
//! it owes and closes, so connected clients cannot hold shutdown up.
//!
//! Bad input closes only this connection, with a log line: an oversized or
//! truncated frame, or a request `protocol` cannot decode. Answers to the
//! requests before it are still sent.
//!
//! The depth is `BrokerConfig::pipeline_depth` (tuning.md); 1 handles one
//! request at a time, as Kafka does.

use super::frame::read_frame;
use crate::broker::Broker;
use crate::metrics::{self, Stage};
use crate::protocol::{self, Part, ProtocolError, Response};
use crate::shard::Shard;
use futures_lite::future;
use futures_lite::io::{split, WriteHalf};
use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use glommio::Task;
use kafka_protocol::messages::ApiKey;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

type Answer = Result<Option<Response>, ProtocolError>;

/// A request being handled: its answer, its pipeline slot, its API key and
/// when its frame was read (for the per-API counters and latency).
struct InFlight {
    answer: Task<Answer>,
    _slot: StaticPermit,
    api: i16,
    read_at: Instant,
}

pub async fn serve(broker: Rc<Broker>, stream: TcpStream) {
    let shard = broker.shard.clone();
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    metrics::add(&shard.metrics.connections_accepted, 1);
    metrics::add(&shard.metrics.connections_open, 1);
    let fd = stream.as_raw_fd();
    // Kafka's form of a member's host in DescribeGroups: "/<ip>".
    let client_host: Rc<str> = stream
        .peer_addr()
        .map_or_else(|_| "".into(), |a| format!("/{}", a.ip()).into());
    set_buffer(fd, libc::SO_SNDBUF, shard.config.socket_send_buffer_bytes);
    set_buffer(
        fd,
        libc::SO_RCVBUF,
        shard.config.socket_receive_buffer_bytes,
    );
    let (mut reader, writer) = split(stream);
    // A request holds a slot from before it is read until its answer is
    // written, so at most `depth` are handled at once.
    let depth = shard.config.pipeline_depth.max(1);
    let slots = Rc::new(Semaphore::new(depth as u64));
    let (queue, answers) = local_channel::new_bounded::<InFlight>(depth);
    let writing = glommio::spawn_local(write_answers(
        shard.clone(),
        writer,
        fd,
        answers,
        peer.clone(),
    ));
    let max = shard.config.socket_request_max_bytes;
    loop {
        let Ok(slot) = slots.acquire_static_permit(1).await else {
            break;
        };
        if shard.shutdown.has_started() {
            break;
        }
        // At shutdown the connection takes no new request: it answers
        // the ones it has and closes.
        let next = future::or(async { Some(read_frame(&mut reader, max).await) }, async {
            shard.shutdown.started().await;
            None
        });
        let frame = match next.await {
            Some(Ok(Some(frame))) => frame,
            None | Some(Ok(None)) => break,
            Some(Err(e)) => {
                tracing::warn!(%peer, "closing connection: {e}");
                break;
            }
        };
        let read_at = Instant::now();
        metrics::add(&shard.metrics.bytes_in, frame.len() as u64 + 4);
        let api = frame
            .get(..2)
            .map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
        let in_flight = InFlight {
            answer: glommio::spawn_local(handle(broker.clone(), frame, client_host.clone())),
            _slot: slot,
            api,
            read_at,
        };
        if queue.send(in_flight).await.is_err() {
            break; // the writer stopped: the connection is done
        }
    }
    drop(queue);
    writing.await;
    let open = &shard.metrics.connections_open;
    open.set(open.get().saturating_sub(1));
}

async fn handle(broker: Rc<Broker>, frame: bytes::Bytes, client_host: Rc<str>) -> Answer {
    let _counted = InFlightGuard::new(&broker.shard);
    protocol::handle(&broker, frame, &client_host).await
}

/// Counts a request in `requests_in_flight` until dropped — also when its
/// task is dropped because the client went away mid-request.
struct InFlightGuard<'a>(&'a Shard);

impl<'a> InFlightGuard<'a> {
    fn new(shard: &'a Shard) -> Self {
        let n = &shard.metrics.requests_in_flight;
        n.set(n.get() + 1);
        InFlightGuard(shard)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let n = &self.0.metrics.requests_in_flight;
        n.set(n.get().saturating_sub(1));
    }
}

/// Awaits each request's answer in request order and writes it.
async fn write_answers(
    shard: Rc<Shard>,
    mut writer: WriteHalf<TcpStream>,
    fd: RawFd,
    answers: local_channel::LocalReceiver<InFlight>,
    peer: String,
) {
    let m = &shard.metrics;
    while let Some(request) = answers.recv().await {
        let answer = request.answer.await;
        match answer {
            Ok(Some(response)) => {
                let writing = Instant::now();
                let len: usize = response.0.iter().map(Part::len).sum();
                if let Err(e) = write_response(&mut writer, fd, response).await {
                    tracing::debug!(%peer, "write failed: {e}");
                    return;
                }
                let stage = if request.api == ApiKey::Fetch as i16 {
                    Stage::FetchSend
                } else {
                    Stage::ResponseWrite
                };
                m.since(stage, writing);
                metrics::add(&m.bytes_out, len as u64);
                m.count_request(request.api, request.read_at.elapsed());
            }
            Ok(None) => m.count_request(request.api, request.read_at.elapsed()),
            Err(e) => {
                m.count_request(request.api, request.read_at.elapsed());
                m.count_errors(request.api, 1);
                tracing::warn!(%peer, "closing connection: {e}");
                let _ = writer.close().await;
                shut_down_reads(fd);
                return;
            }
        }
    }
}

/// Writes a response's parts in order: bytes with ordinary sends (tail-cache
/// batches included, never copied into a buffer), file ranges with sendfile.
async fn write_response(
    writer: &mut WriteHalf<TcpStream>,
    fd: RawFd,
    response: Response,
) -> std::io::Result<()> {
    for part in response.0 {
        match part {
            Part::Bytes(bytes) => writer.write_all(&bytes).await?,
            Part::File(slice) => super::sendfile::send(fd, &slice).await?,
        }
    }
    Ok(())
}

/// socket.send.buffer.bytes / socket.receive.buffer.bytes; -1 keeps the
/// kernel's autotuned buffers.
fn set_buffer(fd: RawFd, option: libc::c_int, bytes: i32) {
    if bytes < 0 {
        return;
    }
    let value: libc::c_int = bytes;
    // SAFETY: `fd` is this connection's open socket; the option value is a
    // c_int that lives across the call, and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::warn!(
            option,
            bytes,
            "setting a socket buffer size: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Makes the reader see end-of-stream, so a connection closed for bad input
/// ends even if the peer keeps it open.
fn shut_down_reads(fd: RawFd) {
    // SAFETY: `fd` is the connection's socket, still open (the reader half
    // owns it until `serve` returns); shutdown changes only socket state.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RD);
    }
}
