//! `TopicTable`: which topics exist, their partition counts, ids and config
//! overrides, durable in `<data-dir>/meta/topics`.
//!
//! Every shard holds a copy (one today). Changes are written whole to a
//! temp file, fsynced, renamed over the old one and the directory fsynced,
//! so a crash leaves either the old or the new table, never a mix. The file
//! is one line per topic: `<name> <partitions> <topic-id hex> [<k>=<v> ...]`.

use crate::log::config::ConfigError;
use crate::log::log_dir::write_durably;
use crate::log::LogConfig;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Kafka's limit on topic name length.
const TOPIC_NAME_LEN_MAX: usize = 249;

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

pub struct TopicTable {
    path: PathBuf,
    topics: BTreeMap<String, Topic>,
}

impl TopicTable {
    /// Loads `<data-dir>/meta/topics`, or starts empty.
    pub fn load(data_dir: &Path) -> Result<TopicTable, TopicError> {
        let path = data_dir.join("meta").join("topics");
        let mut topics = BTreeMap::new();
        let text = match std::fs::read_to_string(&path) {
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

    /// Checks a new topic without creating it (CreateTopics validate_only).
    pub fn check_new(&self, topic: &Topic, defaults: &LogConfig) -> Result<(), TopicError> {
        validate_name(&topic.name)?;
        if self.topics.contains_key(&topic.name) {
            return Err(TopicError::AlreadyExists(topic.name.clone()));
        }
        if topic.partitions == 0 {
            return Err(TopicError::InvalidPartitions(0));
        }
        check_configs(topic, defaults)
    }

    /// Adds a topic and makes the table durable before returning.
    pub fn create(&mut self, topic: Topic, defaults: &LogConfig) -> Result<(), TopicError> {
        self.check_new(&topic, defaults)?;
        self.topics.insert(topic.name.clone(), topic);
        self.persist()
    }

    fn topic_mut(&mut self, name: &str) -> Result<&mut Topic, TopicError> {
        self.topics
            .get_mut(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))
    }

    /// Grows a topic to `partitions` (CreatePartitions), durably unless
    /// `validate_only`.
    pub fn add_partitions(
        &mut self,
        name: &str,
        partitions: u32,
        validate_only: bool,
    ) -> Result<Topic, TopicError> {
        let topic = self.topic_mut(name)?;
        if partitions <= topic.partitions {
            return Err(TopicError::PartitionsCannotShrink(
                name.to_string(),
                topic.partitions,
            ));
        }
        if validate_only {
            let mut t = topic.clone();
            t.partitions = partitions;
            return Ok(t);
        }
        topic.partitions = partitions;
        let t = topic.clone();
        self.persist()?;
        Ok(t)
    }

    /// Replaces a topic's config overrides, durably unless `validate_only`.
    pub fn set_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
        defaults: &LogConfig,
        validate_only: bool,
    ) -> Result<Topic, TopicError> {
        let topic = self.topic_mut(name)?;
        let mut t = topic.clone();
        t.configs = configs;
        check_configs(&t, defaults)?;
        if !validate_only {
            *topic = t.clone();
            self.persist()?;
        }
        Ok(t)
    }

    /// Puts a topic into this copy of the table, in memory only: how shards
    /// other than shard 0 learn of changes shard 0 made durable.
    pub fn apply(&mut self, topic: Topic) {
        self.topics.insert(topic.name.clone(), topic);
    }

    /// Drops a topic from this copy, in memory only.
    pub fn forget(&mut self, name: &str) {
        self.topics.remove(name);
    }

    /// Removes a topic (its partitions' files are the caller's to delete).
    pub fn remove(&mut self, name: &str) -> Result<Option<Topic>, TopicError> {
        let removed = self.topics.remove(name);
        if removed.is_some() {
            self.persist()?;
        }
        Ok(removed)
    }

    /// Rewrites the file: temp file, fsync, rename, fsync the directory.
    /// A few hundred bytes per topic, written only on admin changes, so the
    /// blocking calls are brief.
    fn persist(&self) -> Result<(), TopicError> {
        let io = |source| TopicError::Io {
            path: self.path.clone(),
            source,
        };
        let mut text = String::new();
        for t in self.topics.values() {
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
        write_durably(&self.path, text.as_bytes()).map_err(io)
    }
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
    let partitions = parts.next()?.parse().ok()?;
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
        let mut table = TopicTable::load(dir.path()).unwrap();
        let defaults = LogConfig::default();
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        let t = Topic {
            name: "demo".into(),
            partitions: 6,
            id: new_topic_id("demo"),
            configs,
        };
        table.create(t.clone(), &defaults).unwrap();
        assert!(matches!(
            table.create(t.clone(), &defaults),
            Err(TopicError::AlreadyExists(_))
        ));
        let reloaded = TopicTable::load(dir.path()).unwrap();
        assert_eq!(reloaded.get("demo"), Some(&t));
        assert_eq!(t.log_config(&defaults).unwrap().retention_ms, 1000);
    }
}
