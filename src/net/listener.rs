//! Accepts connections on one shard. Every shard binds the same address;
//! glommio sets SO_REUSEPORT, so the kernel spreads connections over shards.

use super::connection;
use crate::shard::Shard;
use glommio::net::TcpListener;
use std::rc::Rc;

/// Binds the listen address; fails if it is taken.
pub fn bind(shard: &Shard) -> std::io::Result<TcpListener> {
    TcpListener::bind(shard.config.listen).map_err(std::io::Error::from)
}

/// Accepts until the future is dropped; each connection is its own task.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(connection::serve(shard.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
