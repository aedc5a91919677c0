//! One client connection, pipelined: a reader takes request frames off the
//! socket and starts handling each at once (up to `PIPELINE_DEPTH` at a
//! time); a writer sends the answers strictly in request order. Clients
//! pipeline requests (librdkafka keeps up to 5 produce requests in flight),
//! so a connection's acks=all produce requests share fdatasyncs instead of
//! waiting for one each.
//!
//! Order: requests start in the order they arrive, and every step before a
//! produce request's append is first-in first-out (task spawning, the
//! router's per-peer send order, the partition's append lock), so appends
//! from one connection to one partition keep request order.
//!
//! Bad input closes only this connection, with a log line: an oversized or
//! truncated frame, or a request `protocol` cannot decode. Answers to the
//! requests before it are still sent.
//!
//! The depth is `BrokerConfig::pipeline_depth` (tuning.md); 1 handles one
//! request at a time, as Kafka does.

use super::frame::read_frame;
use crate::protocol::{self, Part, ProtocolError, Response};
use crate::shard::Shard;
use futures_lite::io::{split, WriteHalf};
use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use glommio::Task;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

type Answer = Result<Option<Response>, ProtocolError>;

pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let (mut reader, writer) = split(stream);
    // A request holds a slot from before it is read until its answer is
    // written, so at most `depth` are handled at once.
    let depth = shard.config.pipeline_depth.max(1);
    let slots = Rc::new(Semaphore::new(depth as u64));
    let (queue, answers) = local_channel::new_bounded::<(Task<Answer>, StaticPermit)>(depth);
    let writing = glommio::spawn_local(write_answers(writer, fd, answers, peer.clone()));
    let max = shard.config.socket_request_max_bytes;
    loop {
        let Ok(slot) = slots.acquire_static_permit(1).await else {
            break;
        };
        let frame = match read_frame(&mut reader, max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, "closing connection: {e}");
                break;
            }
        };
        let handling = glommio::spawn_local(handle(shard.clone(), frame));
        if queue.send((handling, slot)).await.is_err() {
            break; // the writer stopped: the connection is done
        }
    }
    drop(queue);
    writing.await;
}

async fn handle(shard: Rc<Shard>, frame: bytes::Bytes) -> Answer {
    let in_flight = &shard.stats.requests_in_flight;
    in_flight.set(in_flight.get() + 1);
    let answer = protocol::handle(&shard, frame).await;
    in_flight.set(in_flight.get() - 1);
    answer
}

/// Awaits each request's answer in request order and writes it.
async fn write_answers(
    mut writer: WriteHalf<TcpStream>,
    fd: RawFd,
    answers: local_channel::LocalReceiver<(Task<Answer>, StaticPermit)>,
    peer: String,
) {
    while let Some((task, _slot)) = answers.recv().await {
        match task.await {
            Ok(Some(response)) => {
                if let Err(e) = write_response(&mut writer, fd, response).await {
                    tracing::debug!(%peer, "write failed: {e}");
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
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

/// Makes the reader see end-of-stream, so a connection closed for bad input
/// ends even if the peer keeps it open.
fn shut_down_reads(fd: RawFd) {
    // SAFETY: `fd` is the connection's socket, still open (the reader half
    // owns it until `serve` returns); shutdown changes only socket state.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RD);
    }
}
