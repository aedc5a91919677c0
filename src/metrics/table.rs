//! `strom stats`: the samples of a `/metrics` scrape as readable tables —
//! broker totals, latency per stage, requests per API, partitions.

use super::exposition::Sample;
use super::Stage;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The tables for one scrape.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    let scalar = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
            .map_or(0.0, |s| s.value)
    };
    let fetched = |source: &str| {
        samples
            .iter()
            .find(|s| s.name == "strom_fetch_bytes_total" && s.label("source") == Some(source))
            .map_or(0.0, |s| s.value)
    };
    let _ = writeln!(
        out,
        "{} shards, {} connections open ({} accepted), {} requests in flight",
        scalar("strom_shards"),
        scalar("strom_connections_open"),
        scalar("strom_connections_accepted_total"),
        scalar("strom_requests_in_flight"),
    );
    let _ = writeln!(
        out,
        "bytes in {}, out {}; records fetched from the tail cache {}, from segment files {}\n",
        human(scalar("strom_bytes_in_total")),
        human(scalar("strom_bytes_out_total")),
        human(fetched("tail_cache")),
        human(fetched("segment_file")),
    );

    let _ = writeln!(
        out,
        "{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "STAGE", "COUNT", "P50 ms", "P90 ms", "P99 ms", "P99.9 ms", "MAX ms"
    );
    for stage in Stage::ALL {
        summary_row(
            &mut out,
            samples,
            "strom_stage_latency_seconds",
            "stage",
            stage.name(),
            None,
        );
    }

    let _ = writeln!(
        out,
        "\n{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "API", "REQUESTS", "ERRORS", "P50 ms", "P90 ms", "P99 ms", "P99.9 ms", "MAX ms"
    );
    let mut apis: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "strom_requests_total")
        .filter_map(|s| s.label("api"))
        .collect();
    apis.sort_unstable();
    for api in apis {
        let count = |name: &str| {
            samples
                .iter()
                .find(|s| s.name == name && s.label("api") == Some(api))
                .map_or(0.0, |s| s.value)
        };
        let requests = count("strom_requests_total");
        let errors = count("strom_request_errors_total");
        summary_row(
            &mut out,
            samples,
            "strom_request_latency_seconds",
            "api",
            api,
            Some((requests, errors)),
        );
    }

    let _ = writeln!(
        out,
        "\n{:<24} {:>9} {:>5} {:>14} {:>14} {:>12} {:>9} {:>9} {:>9}",
        "TOPIC",
        "PARTITION",
        "SHARD",
        "LOG START",
        "LOG END",
        "SIZE",
        "LSO LAG",
        "PRODUCERS",
        "OPEN TXNS"
    );
    // (topic, partition) -> (shard, start, end, size, lso, producers, txns)
    let mut partitions: BTreeMap<(String, u64), [f64; 7]> = BTreeMap::new();
    for s in samples {
        let column = match s.name.as_str() {
            "strom_partition_log_start_offset" => 1,
            "strom_partition_log_end_offset" => 2,
            "strom_partition_size_bytes" => 3,
            "strom_partition_last_stable_offset" => 4,
            "strom_partition_producers" => 5,
            "strom_partition_open_transactions" => 6,
            _ => continue,
        };
        let (Some(topic), Some(partition)) = (s.label("topic"), s.label("partition")) else {
            continue;
        };
        let key = (topic.to_string(), partition.parse().unwrap_or(0));
        let row = partitions.entry(key).or_default();
        row[0] = s.label("shard").and_then(|v| v.parse().ok()).unwrap_or(0.0);
        row[column] = s.value;
    }
    for ((topic, partition), [shard, start, end, size, lso, producers, txns]) in &partitions {
        let _ = writeln!(
            out,
            "{topic:<24} {partition:>9} {shard:>5} {start:>14} {end:>14} {:>12} {:>9} {producers:>9} {txns:>9}",
            human(*size),
            end - lso
        );
    }
    out
}

/// A latency summary's row: label value, count (or requests and errors),
/// then p50, p90, p99, p99.9 and max in milliseconds.
fn summary_row(
    out: &mut String,
    samples: &[Sample],
    name: &str,
    label: &str,
    value: &str,
    requests: Option<(f64, f64)>,
) {
    let of = |q: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == name && s.label(label) == Some(value) && s.label("quantile") == Some(q)
            })
            .map_or(0.0, |s| s.value * 1000.0)
    };
    let count_name = format!("{name}_count");
    let count = samples
        .iter()
        .find(|s| s.name == count_name && s.label(label) == Some(value))
        .map_or(0.0, |s| s.value);
    let _ = write!(out, "{value:<16}");
    match requests {
        Some((requests, errors)) => {
            let _ = write!(out, " {requests:>10} {errors:>9}");
        }
        None => {
            let _ = write!(out, " {count:>10}");
        }
    }
    let _ = writeln!(
        out,
        " {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        of("0.5"),
        of("0.9"),
        of("0.99"),
        of("0.999"),
        of("1")
    );
}

/// 1234567 → "1.2 MB".
fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::{self, parse};
    use crate::metrics::{PartitionStats, ShardMetrics};
    use std::time::Duration;

    #[test]
    fn tables_show_stages_apis_and_partitions() {
        let m = ShardMetrics::default();
        m.record(Stage::FsyncWait, Duration::from_micros(1500));
        m.count_request(1, Duration::from_micros(200));
        let mut s = m.snapshot();
        s.partitions.push(PartitionStats {
            topic: "orders".into(),
            partition: 2,
            shard: 1,
            log_start_offset: 0,
            log_end_offset: 1000,
            last_stable_offset: 990,
            size_bytes: 2_500_000,
            producers: 3,
            open_transactions: 1,
        });
        let table = render(&parse(&exposition::render(&s)).expect("parses"));
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no {start} row in\n{table}"))
                .to_string()
        };
        assert!(line("fsync_wait").contains("1.500"), "{table}");
        assert!(
            line("Fetch").split_whitespace().nth(1) == Some("1"),
            "{table}"
        );
        let orders = line("orders");
        let columns: Vec<&str> = orders.split_whitespace().collect();
        assert_eq!(columns[columns.len() - 3..], ["10", "3", "1"], "{table}");
        assert!(
            orders.contains("1000") && orders.contains("2.5 MB"),
            "{table}"
        );
        assert_eq!(human(999.0), "999 B");
        assert_eq!(human(1_500_000_000.0), "1.5 GB");
    }
}
