//! A TCP proxy the test owns, between clients and a broker, that can cut
//! every connection through it at once: requests the broker already
//! handled lose their answers, as on a flaky network, so clients retry
//! them. The broker advertises the proxy's address, so clients reach it
//! only through the proxy. Threads end when the proxy is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct Proxy {
    pub addr: String,
    target: Arc<Mutex<String>>,
    live: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    /// Connections cut so far.
    pub cuts: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on a free 127.0.0.1 port; connections go to the target set
    /// with `point_at` by the time they arrive.
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let target = Arc::new(Mutex::new(String::new()));
        let live = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, l, s) = (target.clone(), live.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let to = t.lock().unwrap().clone();
                let Ok(broker) = TcpStream::connect(&to) else {
                    continue; // the broker is down: the client retries
                };
                let _ = client.set_nodelay(true);
                let _ = broker.set_nodelay(true);
                pump(&client, &broker, &l);
            }
        });
        Proxy {
            addr,
            target,
            live,
            stop,
            cuts: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn point_at(&self, broker: &str) {
        *self.target.lock().unwrap() = broker.to_string();
    }

    /// Cuts every connection through the proxy, both ways.
    pub fn cut_all(&self) {
        let mut live = self.live.lock().unwrap();
        for s in live.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
            self.cuts.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Copies both ways on two threads; either side ending ends both.
fn pump(client: &TcpStream, broker: &TcpStream, live: &Arc<Mutex<Vec<TcpStream>>>) {
    let pairs = [
        (client.try_clone(), broker.try_clone()),
        (broker.try_clone(), client.try_clone()),
    ];
    {
        let mut live = live.lock().unwrap();
        for s in [client, broker] {
            if let Ok(s) = s.try_clone() {
                live.push(s);
            }
        }
    }
    for (from, to) in pairs {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut_all();
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(&self.addr);
    }
}
