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

impl Broker {
    /// Starts a broker on `data_dir` and waits until it accepts connections.
    pub fn start(data_dir: &Path) -> Broker {
        Broker::start_with(data_dir, &[])
    }

    /// The broker picks a free port itself and names it in its startup
    /// line (a port picked here and released could be taken before the
    /// broker binds it).
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Broker {
        Broker::start_on(data_dir, 0, extra)
    }

    fn start_on(data_dir: &Path, port: u16, extra: &[&str]) -> Broker {
        let listen = format!("127.0.0.1:{port}");
        let log = unique_log_path(data_dir);
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args([
                "serve",
                "--listen",
                &listen,
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
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            log,
            metrics_addr: String::new(),
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        // The startup line says: listen=127.0.0.1:PORT ...
        // metrics="http://127.0.0.1:PORT/metrics".
        let text = broker.wait_serving();
        broker.addr = text
            .split("strom is serving listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the startup line names the listen address")
            .to_string();
        broker.port = broker
            .addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        broker.metrics_addr = text
            .split("metrics=\"http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        broker.wait_connectable();
        broker
    }

    /// Waits for the startup line (every shard bound and recovered) and
    /// returns the log so far; fails early if the broker exited.
    fn wait_serving(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.log_text();
            if text.contains("strom is serving") {
                return text;
            }
            assert!(self.is_running(), "strom exited at startup: {text}");
            assert!(Instant::now() < deadline, "strom did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_connectable(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "strom did not listen: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker process's pid (0 once it was stopped or killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// File descriptors the broker has open now.
    pub fn open_files(&self) -> usize {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid()));
        fds.expect("the broker's /proc").count()
    }

    /// Sets the running broker's soft RLIMIT_NOFILE (`prlimit`; up to the
    /// hard limit, which an unprivileged test cannot raise).
    pub fn set_open_files_limit(&self, n: usize) {
        let pid = self.pid().to_string();
        let set = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={n}:")])
            .status()
            .expect("prlimit");
        assert!(set.success(), "prlimit --nofile={n}: failed");
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
        self.start_again();
    }

    /// Starts a stopped or killed broker again on its port and data dir.
    pub fn start_again(&mut self) {
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

    /// Waits up to `timeout` for the broker to exit by itself and returns
    /// how it exited (None if it is still running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.child.as_mut()?.try_wait().expect("wait");
            if let Some(status) = status {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
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

/// Runs `strom serve --data-dir DATA_DIR ARGS` (listening on port 0 with
/// no metrics unless ARGS say otherwise), asserts that it refuses to start,
/// and returns what it printed on stderr.
pub fn refused_start(data_dir: &Path, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strom"));
    command.arg("serve");
    for (flag, default) in [("--listen", "127.0.0.1:0"), ("--metrics-listen", "none")] {
        if !args.contains(&flag) {
            command.args([flag, default]);
        }
    }
    let out = command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("strom serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "strom started: {stderr}");
    stderr
}

/// One log file per broker process started, beside its data dir.
fn unique_log_path(data_dir: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, Ordering::SeqCst);
    data_dir.with_extension(format!("{}.{n}.log", std::process::id()))
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
