//! Broker-side measurements: per-stage HDR latency histograms, request and
//! error counts per API, bytes in and out — one `ShardMetrics` per shard,
//! touched only by its own executor (plain `Cell`s, no atomics), and a
//! `Snapshot` of them that crosses shards to be merged for `/metrics`.
//!
//! Latencies are recorded in microseconds, 3 significant digits, saturating
//! at one minute: recording is a few nanoseconds, and a scrape copies a
//! fixed-size histogram per stage.

pub mod exposition;
pub mod table;

use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where a request spends time inside the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Request header and body decoding.
    Decode,
    /// One crossing of the shard mesh (request or reply), sender to receiver.
    Hop,
    /// A partition append (offsets assigned, bytes in the write buffer).
    Append,
    /// An acks=all producer waiting for its fdatasync.
    FsyncWait,
    /// Writing a non-fetch response to the socket.
    ResponseWrite,
    /// A fetch long-polling for data (min_bytes / max_wait_ms).
    FetchWait,
    /// Writing a fetch response: tail-cache bytes and sendfile ranges.
    FetchSend,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Decode,
        Stage::Hop,
        Stage::Append,
        Stage::FsyncWait,
        Stage::ResponseWrite,
        Stage::FetchWait,
        Stage::FetchSend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Hop => "cross_shard_hop",
            Stage::Append => "append",
            Stage::FsyncWait => "fsync_wait",
            Stage::ResponseWrite => "response_write",
            Stage::FetchWait => "fetch_wait",
            Stage::FetchSend => "fetch_send",
        }
    }
}

/// The longest latency recorded as itself; longer ones count as this.
const LATENCY_MAX_US: u64 = 60_000_000;

pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// Requests, errors and end-to-end latency (frame read to response
/// written) of one API.
#[derive(Clone)]
pub struct ApiStats {
    pub requests: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
}

fn api_stats(apis: &mut BTreeMap<i16, ApiStats>, api: i16) -> &mut ApiStats {
    apis.entry(api).or_insert_with(|| ApiStats {
        requests: 0,
        errors: 0,
        latency: latency_histogram(),
    })
}

/// One shard's measurements.
pub struct ShardMetrics {
    stages: Vec<RefCell<Histogram<u64>>>,
    apis: RefCell<BTreeMap<i16, ApiStats>>,
    /// Request frame bytes read from clients.
    pub bytes_in: Cell<u64>,
    /// Response bytes written to clients.
    pub bytes_out: Cell<u64>,
    /// Record bytes fetched from the tail cache (vectored writes, no disk).
    pub fetch_hot_bytes: Cell<u64>,
    /// Record bytes fetched from segment files (O_DIRECT reads or `sendfile`).
    pub fetch_cold_bytes: Cell<u64>,
    /// Requests being handled right now (shutdown waits for them).
    pub requests_in_flight: Cell<usize>,
    pub connections_accepted: Cell<u64>,
    pub connections_open: Cell<u64>,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            stages: Stage::ALL
                .iter()
                .map(|_| RefCell::new(latency_histogram()))
                .collect(),
            apis: RefCell::new(BTreeMap::new()),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            fetch_hot_bytes: Cell::new(0),
            fetch_cold_bytes: Cell::new(0),
            requests_in_flight: Cell::new(0),
            connections_accepted: Cell::new(0),
            connections_open: Cell::new(0),
        }
    }
}

/// Adds `n` to a counter.
pub fn add(counter: &Cell<u64>, n: u64) {
    counter.set(counter.get().wrapping_add(n));
}

impl ShardMetrics {
    pub fn record(&self, stage: Stage, elapsed: Duration) {
        let us = (elapsed.as_micros() as u64).max(1);
        self.stages[stage as usize]
            .borrow_mut()
            .saturating_record(us);
    }

    /// Records the time from `start` to now.
    pub fn since(&self, stage: Stage, start: Instant) {
        self.record(stage, start.elapsed());
    }

    /// A request of `api` was answered (or dropped, for acks=0) after
    /// `latency`.
    pub fn count_request(&self, api: i16, latency: Duration) {
        let mut apis = self.apis.borrow_mut();
        let stats = api_stats(&mut apis, api);
        stats.requests += 1;
        stats
            .latency
            .saturating_record((latency.as_micros() as u64).max(1));
    }

    /// Error codes in an answer of `api` (or 1 for a request that closed
    /// the connection).
    pub fn count_errors(&self, api: i16, errors: u64) {
        if errors == 0 {
            return;
        }
        let mut apis = self.apis.borrow_mut();
        api_stats(&mut apis, api).errors += errors;
    }

    /// A copy of this shard's measurements; partitions are the caller's.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            shards: 1,
            stages: self.stages.iter().map(|h| h.borrow().clone()).collect(),
            apis: self.apis.borrow().clone(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            fetch_hot_bytes: self.fetch_hot_bytes.get(),
            fetch_cold_bytes: self.fetch_cold_bytes.get(),
            requests_in_flight: self.requests_in_flight.get() as u64,
            connections_accepted: self.connections_accepted.get(),
            connections_open: self.connections_open.get(),
            partitions: Vec::new(),
        }
    }
}

/// One partition's log, as its owner sees it.
#[derive(Clone, Debug)]
pub struct PartitionStats {
    pub topic: String,
    pub partition: u32,
    pub shard: usize,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    /// Where read_committed consumers stop: the first offset of the
    /// oldest open transaction (the log end when none is open).
    pub last_stable_offset: u64,
    pub size_bytes: u64,
    /// Idempotent and transactional producers with state here.
    pub producers: u64,
    pub open_transactions: u64,
}

/// Measurements of one shard, or merged over several. `Send`.
#[derive(Clone)]
pub struct Snapshot {
    pub shards: usize,
    /// Indexed like `Stage::ALL`.
    pub stages: Vec<Histogram<u64>>,
    pub apis: BTreeMap<i16, ApiStats>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub fetch_hot_bytes: u64,
    pub fetch_cold_bytes: u64,
    pub requests_in_flight: u64,
    pub connections_accepted: u64,
    pub connections_open: u64,
    pub partitions: Vec<PartitionStats>,
}

impl Snapshot {
    /// Adds another shard's measurements to these.
    pub fn merge(&mut self, other: Snapshot) {
        self.shards += other.shards;
        for (mine, theirs) in self.stages.iter_mut().zip(&other.stages) {
            // Same bounds on every shard: adding cannot fail.
            let _ = mine.add(theirs);
        }
        for (api, theirs) in other.apis {
            match self.apis.get_mut(&api) {
                Some(mine) => {
                    mine.requests += theirs.requests;
                    mine.errors += theirs.errors;
                    let _ = mine.latency.add(&theirs.latency);
                }
                None => {
                    self.apis.insert(api, theirs);
                }
            }
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.fetch_hot_bytes += other.fetch_hot_bytes;
        self.fetch_cold_bytes += other.fetch_cold_bytes;
        self.requests_in_flight += other.requests_in_flight;
        self.connections_accepted += other.connections_accepted;
        self.connections_open += other.connections_open;
        self.partitions.extend(other.partitions);
        self.partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    }

    pub fn stage(&self, stage: Stage) -> &Histogram<u64> {
        &self.stages[stage as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_histograms() {
        let a = ShardMetrics::default();
        let b = ShardMetrics::default();
        a.record(Stage::Append, Duration::from_micros(100));
        b.record(Stage::Append, Duration::from_micros(300));
        a.count_request(0, Duration::from_micros(50));
        b.count_request(0, Duration::from_micros(70));
        b.count_errors(0, 2);
        a.bytes_in.set(10);
        b.bytes_in.set(5);
        let mut merged = a.snapshot();
        merged.merge(b.snapshot());
        assert_eq!(merged.shards, 2);
        assert_eq!(merged.stage(Stage::Append).len(), 2);
        assert_eq!(merged.stage(Stage::Append).max(), 300);
        assert_eq!(merged.apis[&0].requests, 2);
        assert_eq!(merged.apis[&0].errors, 2);
        assert_eq!(merged.bytes_in, 15);
    }

    #[test]
    fn latencies_beyond_a_minute_saturate() {
        let m = ShardMetrics::default();
        m.record(Stage::FetchWait, Duration::from_secs(3600));
        assert!(m.snapshot().stage(Stage::FetchWait).max() >= LATENCY_MAX_US);
    }
}
