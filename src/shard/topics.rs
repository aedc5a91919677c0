//! `TopicTable`: which topics exist, their partition counts, ids and config
//! overrides, durable in `<data-dir>/meta/topics`.
//!
//! Every shard holds a copy. Shard 0 plans each change (`check_new`,
//! `add_partitions`, `set_configs` only check and return the changed
//! topic), writes the whole table with the change durably (`write_table`:
//! temp file, fsync, rename, directory fsync, on a blocking thread) and
//! only then applies the change to every shard's copy (`apply`).
//! A crash leaves either the old or the new file, never a mix, and no
//! shard ever serves a change that is not durable. The file is one line
//! per topic: `<name> <partitions> <topic-id hex> [<k>=<v> ...]`.

use crate::log::config::ConfigError;
use crate::log::log_dir::write_durably_off_thread;
use crate::log::LogConfig;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Kafka's limit on topic name length.
const TOPIC_NAME_LEN_MAX: usize = 249;

/// Partitions of one topic at most: Kafka's counts are INT32.
const PARTITION_COUNT_MAX: u32 = i32::MAX.unsigned_abs();

fn valid_count(partitions: u32) -> bool {
    (1..=PARTITION_COUNT_MAX).contains(&partitions)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub partitions: u32,
    pub id: u128,
    /// Overrides by Kafka config name, as the user gave them.
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    /// The log config of this topic's partitions: broker defaults, then the
    /// topic's overrides.
    pub fn log_config(&self, defaults: &LogConfig) -> Result<LogConfig, ConfigError> {
        let mut config = defaults.clone();
        for (k, v) in &self.configs {
            config.set(k, v)?;
        }
        Ok(config)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic name {0:?} is invalid: {1}")]
    InvalidName(String, &'static str),
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    #[error("number of partitions must be at least 1, got {0}")]
    InvalidPartitions(i64),
    #[error("topic {0} has {1} partitions; the count can only grow")]
    PartitionsCannotShrink(String, u32),
    #[error("topic {0} does not exist")]
    Unknown(String),
    #[error("invalid topic config {0}")]
    InvalidConfig(#[from] ConfigError),
    #[error("writing topic metadata {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The broker cannot hold the partitions asked for (`partition_budget`).
    #[error("{0}")]
    PartitionLimit(String),
    #[error("topic metadata {path} line {line} is corrupt")]
    Corrupt { path: PathBuf, line: usize },
}

/// Kafka's rule: 1..=249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let invalid = |why| Err(TopicError::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return invalid("it is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// A durable change to one topic, as every shard applies it.
#[derive(Clone)]
pub enum TopicUpdate {
    Upsert(Topic),
    Delete(String),
}

pub struct TopicTable {
    path: PathBuf,
    topics: BTreeMap<String, Topic>,
}

impl TopicTable {
    /// Loads `<data-dir>/meta/topics`, or starts empty.
    pub async fn load(data_dir: &Path) -> Result<TopicTable, TopicError> {
        let path = data_dir.join("meta").join("topics");
        let mut topics = BTreeMap::new();
        let reading = path.clone();
        let read = glommio::executor()
            .spawn_blocking(move || std::fs::read_to_string(reading))
            .await;
        let text = match read {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(TopicError::Io { path, source }),
        };
        for (i, line) in text.lines().enumerate() {
            let topic = parse_line(line).ok_or_else(|| TopicError::Corrupt {
                path: path.clone(),
                line: i + 1,
            })?;
            topics.insert(topic.name.clone(), topic);
        }
        Ok(TopicTable { path, topics })
    }

    pub fn get(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Topic> {
        self.topics.values()
    }

    /// Checks a new topic (CreateTopics).
    pub fn check_new(&self, topic: &Topic, defaults: &LogConfig) -> Result<(), TopicError> {
        validate_name(&topic.name)?;
        if self.topics.contains_key(&topic.name) {
            return Err(TopicError::AlreadyExists(topic.name.clone()));
        }
        if !valid_count(topic.partitions) {
            return Err(TopicError::InvalidPartitions(i64::from(topic.partitions)));
        }
        check_configs(topic, defaults)
    }

    fn existing(&self, name: &str) -> Result<&Topic, TopicError> {
        self.topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))
    }

    /// A topic grown to `partitions` (CreatePartitions), checked.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<Topic, TopicError> {
        let topic = self.existing(name)?;
        if partitions <= topic.partitions {
            return Err(TopicError::PartitionsCannotShrink(
                name.to_string(),
                topic.partitions,
            ));
        }
        if !valid_count(partitions) {
            return Err(TopicError::InvalidPartitions(i64::from(partitions)));
        }
        let mut grown = topic.clone();
        grown.partitions = partitions;
        Ok(grown)
    }

    /// A topic with its config overrides replaced, checked.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        defaults: &LogConfig,
    ) -> Result<Topic, TopicError> {
        let mut changed = self.existing(name)?.clone();
        changed.configs = configs;
        check_configs(&changed, defaults)?;
        Ok(changed)
    }

    /// Applies a change to this copy of the table, in memory only (it is
    /// durable already).
    pub fn apply(&mut self, update: &TopicUpdate) {
        match update {
            TopicUpdate::Upsert(topic) => {
                self.topics.insert(topic.name.clone(), topic.clone());
            }
            TopicUpdate::Delete(name) => {
                self.topics.remove(name);
            }
        }
    }

    /// The file's text once `update` is applied.
    pub fn text_after(&self, update: &TopicUpdate) -> String {
        let mut after = self.topics.clone();
        match update {
            TopicUpdate::Upsert(topic) => {
                after.insert(topic.name.clone(), topic.clone());
            }
            TopicUpdate::Delete(name) => {
                after.remove(name);
            }
        }
        let mut text = String::new();
        for t in after.values() {
            let configs: Vec<String> = t.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                text,
                "{} {} {:032x} {}",
                t.name,
                t.partitions,
                t.id,
                configs.join(" ")
            );
        }
        text
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Rewrites the table file with `text`: temp file, fsync, rename, fsync
/// the directory, on a blocking thread.
pub async fn write_table(path: &Path, text: String) -> Result<(), TopicError> {
    write_durably_off_thread(path.to_path_buf(), text.into_bytes())
        .await
        .map_err(|source| TopicError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Config overrides must parse, be honourable, and fit the one-line file
/// format (no whitespace).
fn check_configs(topic: &Topic, defaults: &LogConfig) -> Result<(), TopicError> {
    for (k, v) in &topic.configs {
        if v.chars().any(char::is_whitespace) || k.chars().any(char::is_whitespace) {
            return Err(ConfigError {
                name: k.clone(),
                value: v.clone(),
                reason: "whitespace is not allowed",
            }
            .into());
        }
    }
    topic.log_config(defaults)?;
    Ok(())
}

fn parse_line(line: &str) -> Option<Topic> {
    let mut parts = line.split_whitespace();
    let name = parts.next()?.to_string();
    let partitions: u32 = parts.next()?.parse().ok()?;
    if !valid_count(partitions) {
        return None;
    }
    let id = u128::from_str_radix(parts.next()?, 16).ok()?;
    let mut configs = BTreeMap::new();
    for kv in parts {
        let (k, v) = kv.split_once('=')?;
        configs.insert(k.to_string(), v.to_string());
    }
    Some(Topic {
        name,
        partitions,
        id,
        configs,
    })
}

/// A fresh topic id: random bits from the process's hasher seed and the
/// clock (ids only need to be unique, not secret).
pub fn new_topic_id(name: &str) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let state = ahash::RandomState::new();
    let mut h = state.build_hasher();
    h.write(name.as_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    let hi = h.finish();
    h.write_u64(hi);
    (u128::from(hi) << 64) | u128::from(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_eu-2").is_ok());
        for bad in ["", ".", "..", "a b", "ünïcode", &"x".repeat(250)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn table_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("executor")
            .run(async move {
                let mut table = TopicTable::load(&path).await.unwrap();
                let defaults = LogConfig::default();
                let mut configs = BTreeMap::new();
                configs.insert("retention.ms".to_string(), "1000".to_string());
                let t = Topic {
                    name: "demo".into(),
                    partitions: 6,
                    id: new_topic_id("demo"),
                    configs,
                };
                table.check_new(&t, &defaults).unwrap();
                let create = TopicUpdate::Upsert(t.clone());
                write_table(table.path(), table.text_after(&create))
                    .await
                    .unwrap();
                table.apply(&create);
                assert!(matches!(
                    table.check_new(&t, &defaults),
                    Err(TopicError::AlreadyExists(_))
                ));
                let reloaded = TopicTable::load(&path).await.unwrap();
                assert_eq!(reloaded.get("demo"), Some(&t));
                assert_eq!(t.log_config(&defaults).unwrap().retention_ms, 1000);
                let delete = TopicUpdate::Delete("demo".into());
                write_table(table.path(), table.text_after(&delete))
                    .await
                    .unwrap();
                assert!(TopicTable::load(&path).await.unwrap().get("demo").is_none());
            });
    }
}
