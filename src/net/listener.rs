//! Accepts connections on one shard. Every shard binds the same address
//! with SO_REUSEPORT, so the kernel spreads connections over shards.
//!
//! The listener also sets SO_REUSEADDR, and its accepted sockets inherit
//! it. That is what lets a restarted broker bind at once: the sockets of
//! the previous process's connections linger in TIME-WAIT for a minute,
//! and Linux refuses a bind next to a socket without SO_REUSEADDR. A port
//! that a live broker *listens* on is still refused (main's exclusive
//! probe has no SO_REUSEPORT, so it cannot share a listening port).

use super::connection;
use crate::broker::Broker;
use crate::shard::Shard;
use glommio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

/// Kafka's default `socket.listen.backlog.size` is 50; glommio's own bind
/// uses 1024, which a reconnect storm after a restart can use.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds the listen address; fails if it is taken.
pub fn bind(shard: &Shard) -> std::io::Result<TcpListener> {
    bind_shared(shard.config.listen)
}

/// A listening socket with SO_REUSEADDR and SO_REUSEPORT, as a glommio
/// listener of the current executor.
pub fn bind_shared(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket that
    // `into_raw_fd` released; the glommio listener is its only owner.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// The first wait after a failed accept, and the longest.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts until the future is dropped; each connection is its own task.
///
/// A failed accept (EMFILE or ENFILE when descriptors run out) leaves the
/// connection in the kernel's backlog, so the loop waits before it tries
/// again, twice as long after each failure up to a second, and logs the
/// 1st, 2nd, 4th, 8th... failure of a run, not each one. Connections
/// already accepted are served meanwhile: they run in their own tasks.
pub async fn accept_loop(broker: Rc<Broker>, listener: TcpListener) {
    let mut failures: u64 = 0;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if failures > 0 {
                    tracing::info!(failures, "accepting connections again");
                    failures = 0;
                    backoff = ACCEPT_BACKOFF_MIN;
                }
                glommio::spawn_local(connection::serve(broker.clone(), stream)).detach();
            }
            Err(e) => {
                failures += 1;
                if failures.is_power_of_two() {
                    let e = std::io::Error::from(e);
                    tracing::warn!(
                        failures,
                        errno = e.raw_os_error(),
                        retry_ms = backoff.as_millis() as u64,
                        "accept failed: {e}; new connections wait in the backlog, \
                         accepted ones are still served"
                    );
                }
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}
