//! Prometheus text exposition (format 0.0.4): `render` writes a merged
//! `Snapshot`, `parse` reads such text back into samples (for `strom
//! stats`). Latency histograms are summaries — quantiles in seconds, plus
//! `_sum` and `_count` — and the maximum as quantile 1.

use super::{Snapshot, Stage};
use hdrhistogram::Histogram;
use kafka_protocol::messages::ApiKey;
use std::fmt::Write as _;

/// The quantiles every latency summary reports (1 is the maximum).
pub const QUANTILES: &[f64] = &[0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];

/// Prometheus text for a merged snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8192);
    render_latencies(&mut out, s);
    render_counters(&mut out, s);
    render_partitions(&mut out, s);
    out
}

/// Per-stage and per-API latency summaries, requests and errors per API.
fn render_latencies(out: &mut String, s: &Snapshot) {
    header(
        out,
        "strom_stage_latency_seconds",
        "summary",
        "Time spent in each broker stage, merged over shards.",
    );
    for stage in Stage::ALL {
        summary(
            out,
            "strom_stage_latency_seconds",
            &format!("stage=\"{}\"", stage.name()),
            s.stage(stage),
        );
    }
    header(
        out,
        "strom_request_latency_seconds",
        "summary",
        "Request frame read to response written, per API.",
    );
    for (&key, api) in &s.apis {
        summary(
            out,
            "strom_request_latency_seconds",
            &format!("api=\"{}\"", api_name(key)),
            &api.latency,
        );
    }
    header(
        out,
        "strom_requests_total",
        "counter",
        "Requests handled, per API.",
    );
    for (&key, api) in &s.apis {
        let _ = writeln!(
            out,
            "strom_requests_total{{api=\"{}\"}} {}",
            api_name(key),
            api.requests
        );
    }
    header(
        out,
        "strom_request_errors_total",
        "counter",
        "Error codes answered (and requests that closed their connection), per API.",
    );
    for (&key, api) in &s.apis {
        let _ = writeln!(
            out,
            "strom_request_errors_total{{api=\"{}\"}} {}",
            api_name(key),
            api.errors
        );
    }
}

/// Broker-wide counters and gauges.
fn render_counters(out: &mut String, s: &Snapshot) {
    let counters: [(&str, &str, &str, u64); 7] = [
        (
            "strom_bytes_in_total",
            "counter",
            "Request bytes read from clients.",
            s.bytes_in,
        ),
        (
            "strom_bytes_out_total",
            "counter",
            "Response bytes written to clients.",
            s.bytes_out,
        ),
        (
            "strom_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            s.connections_accepted,
        ),
        (
            "strom_connections_open",
            "gauge",
            "Client connections open now.",
            s.connections_open,
        ),
        (
            "strom_requests_in_flight",
            "gauge",
            "Requests being handled now.",
            s.requests_in_flight,
        ),
        (
            "strom_shards",
            "gauge",
            "Shards (pinned executors) answering.",
            s.shards as u64,
        ),
        (
            "strom_partitions",
            "gauge",
            "Partitions open on this broker.",
            s.partitions.len() as u64,
        ),
    ];
    for (name, kind, help, value) in counters {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        out,
        "strom_fetch_bytes_total",
        "counter",
        "Record bytes fetched, by where they came from.",
    );
    let _ = writeln!(
        out,
        "strom_fetch_bytes_total{{source=\"tail_cache\"}} {}",
        s.fetch_hot_bytes
    );
    let _ = writeln!(
        out,
        "strom_fetch_bytes_total{{source=\"segment_file\"}} {}",
        s.fetch_cold_bytes
    );
}

/// Each partition's offsets and size.
fn render_partitions(out: &mut String, s: &Snapshot) {
    type Field = fn(&super::PartitionStats) -> u64;
    let gauges: [(&str, &str, Field); 6] = [
        (
            "strom_partition_log_start_offset",
            "First offset still in the log.",
            |p| p.log_start_offset,
        ),
        (
            "strom_partition_log_end_offset",
            "Offset the next record will get.",
            |p| p.log_end_offset,
        ),
        (
            "strom_partition_last_stable_offset",
            "Where read_committed consumers stop: the first offset of the oldest open transaction, else the log end.",
            |p| p.last_stable_offset,
        ),
        (
            "strom_partition_size_bytes",
            "Bytes of the partition's segments.",
            |p| p.size_bytes,
        ),
        (
            "strom_partition_producers",
            "Idempotent and transactional producers with state in the partition.",
            |p| p.producers,
        ),
        (
            "strom_partition_open_transactions",
            "Transactions open on the partition.",
            |p| p.open_transactions,
        ),
    ];
    for (name, help, field) in gauges {
        header(out, name, "gauge", help);
        for p in &s.partitions {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{}\",shard=\"{}\"}} {}",
                escape(&p.topic),
                p.partition,
                p.shard,
                field(p)
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn summary(out: &mut String, name: &str, labels: &str, h: &Histogram<u64>) {
    for &q in QUANTILES {
        let us = if q >= 1.0 {
            h.max()
        } else {
            h.value_at_quantile(q)
        };
        let _ = writeln!(
            out,
            "{name}{{{labels},quantile=\"{q}\"}} {}",
            us as f64 / 1e6
        );
    }
    let sum = h.mean() * h.len() as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.len());
}

/// Kafka's name of an API ("Produce"), or its number if unknown.
pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(api) => format!("{api:?}"),
        Err(_) => key.to_string(),
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One line of exposition text: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Parses exposition text; comments and blank lines are skipped, anything
/// else that is not a well-formed sample is an error.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |reason| ParseError {
            line: i + 1,
            reason,
            text: raw.to_string(),
        };
        let name_end = line.find(['{', ' ']).ok_or_else(|| fail("no value"))?;
        let name = &line[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(fail("bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let (parsed, after) = parse_labels(body).ok_or_else(|| fail("bad labels"))?;
            labels = parsed;
            rest = after;
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| fail("no value"))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| fail("bad value"))?,
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// `a="x",b="y"}` → labels and the text after the brace.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PartitionStats, ShardMetrics};
    use std::time::Duration;

    #[test]
    fn rendered_text_parses_back() {
        let m = ShardMetrics::default();
        m.record(Stage::Append, Duration::from_micros(250));
        m.count_request(0, Duration::from_micros(900));
        m.count_errors(0, 1);
        let mut s = m.snapshot();
        s.partitions.push(PartitionStats {
            topic: "a\"b".into(),
            partition: 3,
            shard: 1,
            log_start_offset: 5,
            log_end_offset: 42,
            last_stable_offset: 40,
            size_bytes: 4096,
            producers: 2,
            open_transactions: 1,
        });
        let samples = parse(&render(&s)).expect("parses");
        let find = |name: &str, label: (&str, &str)| {
            samples
                .iter()
                .find(|x| x.name == name && x.label(label.0) == Some(label.1))
                .unwrap_or_else(|| panic!("{name} {label:?} missing"))
                .value
        };
        assert_eq!(find("strom_requests_total", ("api", "Produce")), 1.0);
        let lso = find("strom_partition_last_stable_offset", ("topic", "a\"b"));
        assert_eq!(lso, 40.0);
        let open = find("strom_partition_open_transactions", ("topic", "a\"b"));
        assert_eq!(open, 1.0);
        assert_eq!(find("strom_request_errors_total", ("api", "Produce")), 1.0);
        assert_eq!(
            find("strom_stage_latency_seconds_count", ("stage", "append")),
            1.0
        );
        let p99 = samples
            .iter()
            .find(|x| {
                x.name == "strom_stage_latency_seconds"
                    && x.label("stage") == Some("append")
                    && x.label("quantile") == Some("0.99")
            })
            .expect("append p99")
            .value;
        assert!((p99 - 250e-6).abs() < 1e-6, "{p99}");
        assert_eq!(
            find("strom_partition_log_end_offset", ("topic", "a\"b")),
            42.0
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in ["x{a=\"1\" 2", "x", "x{a=1} 2", "x 1.2.3", "bad-name 1"] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(parse("# c\n\nx 1\n").expect("ok").len(), 1);
    }
}
