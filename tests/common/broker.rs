//! Runs the real `strom` binary on a free 127.0.0.1 port and a data dir the
//! test owns; always stops it (SIGKILL on drop).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Where `/metrics` is served (the broker picks a free port and logs it).
    pub metrics_addr: String,
    port: u16,
    /// Flags it was started with, kept for restarts.
    extra: Vec<String>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Broker {
    /// Starts a broker on `data_dir` and waits until it accepts connections.
    pub fn start(data_dir: &Path) -> Broker {
        Broker::start_on(data_dir, free_port(), &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Broker {
        Broker::start_on(data_dir, free_port(), extra)
    }

    fn start_on(data_dir: &Path, port: u16, extra: &[&str]) -> Broker {
        let addr = format!("127.0.0.1:{port}");
        let log = data_dir.with_extension(format!("{port}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args([
                "serve",
                "--listen",
                &addr,
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn strom");
        let mut broker = Broker {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            log,
            metrics_addr: String::new(),
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        broker.wait_ready();
        // The startup line says: metrics="http://127.0.0.1:PORT/metrics".
        let text = broker.log_text();
        broker.metrics_addr = text
            .split("metrics=\"http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        broker
    }

    /// Ready once the startup line is logged (every shard bound and
    /// recovered) and the port accepts connections.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log_text().contains("strom is serving")
            || TcpStream::connect(&self.addr).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "strom did not listen: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts again on the same port and data dir.
    pub fn restart_after_kill(&mut self) {
        self.kill();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let fresh = Broker::start_on(&self.data_dir, self.port, &extra);
        *self = fresh;
    }

    /// SIGTERM; asserts a clean exit within 10 s.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "strom exited with {status}: {}",
                    self.log_text()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("strom did not stop on SIGTERM: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().expect("wait").is_none(),
            None => false,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
