//! Metadata records: the cluster's state as an ordered list of facts, the values of the
//! `__cluster_metadata` log. Each record encodes to a versioned, self-describing byte
//! string; decoding is total (bad bytes are an error, never a panic, never an
//! allocation sized by an untrusted count).
//!
//! Encoding (all integers big-endian): `format version: u8 (= 0)`, `record type: u8`,
//! then the record's fields in declaration order. Strings are `u16 length + UTF-8`;
//! lists are `u32 count + items`; optional strings carry a `u8` presence flag; a topic id
//! is 16 raw bytes. Trailing bytes are an error.

use crate::base::limits::{METADATA_LIST_ITEMS_MAX, METADATA_RECORD_BYTES_MAX};
use crate::base::{LeaderEpoch, NodeId, PartitionId};

/// The encoding version this code writes and reads.
pub const METADATA_RECORD_VERSION: u8 = 0;

/// A 128-bit topic id, as Kafka's (the bytes of a UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// Kafka's "no topic id" (all zeros).
    pub const ZERO: TopicId = TopicId([0; 16]);

    /// A random (version 4) id from 16 random bytes.
    pub fn from_random(mut bytes: [u8; 16]) -> TopicId {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        TopicId(bytes)
    }
}

/// What a configuration record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigResourceKind {
    Topic,
    Broker,
}

/// One fact about the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    /// The cluster's id, written once when the metadata log is created.
    ClusterId { cluster_id: String },
    /// A broker and where clients reach it.
    RegisterBroker {
        node_id: NodeId,
        epoch: i64,
        host: String,
        port: i32,
        rack: Option<String>,
    },
    /// A topic exists under this name and id.
    Topic { name: String, id: TopicId },
    /// A partition's assignment and leadership (the whole state, replacing any earlier).
    Partition {
        topic_id: TopicId,
        index: PartitionId,
        leader: NodeId,
        replicas: Vec<NodeId>,
        isr: Vec<NodeId>,
        leader_epoch: LeaderEpoch,
        partition_epoch: i32,
    },
    /// Sets (`Some`) or deletes (`None`) one configuration key of a resource.
    Config {
        kind: ConfigResourceKind,
        resource: String,
        key: String,
        value: Option<String>,
    },
    /// The topic, its partitions and its configs are gone.
    RemoveTopic { id: TopicId },
    /// Producer ids below `next_producer_id` are handed out (Kafka's ProducerIdsRecord:
    /// a broker reserves a block at a time, so no id is ever given twice).
    ProducerIds {
        broker: NodeId,
        next_producer_id: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordDecodeError {
    #[error("metadata record truncated")]
    Truncated,
    #[error("unknown metadata record format version {0}")]
    UnknownVersion(u8),
    #[error("unknown metadata record type {0}")]
    UnknownType(u8),
    #[error("metadata record is not valid UTF-8")]
    BadUtf8,
    #[error("metadata record list of {0} items exceeds the bound")]
    TooManyItems(u32),
    #[error("{0} trailing bytes after a metadata record")]
    TrailingBytes(usize),
    #[error("invalid metadata record field: {0}")]
    BadField(&'static str),
    #[error("metadata record of {0} bytes exceeds the bound")]
    TooLarge(usize),
}

const TYPE_CLUSTER_ID: u8 = 1;
const TYPE_REGISTER_BROKER: u8 = 2;
const TYPE_TOPIC: u8 = 3;
const TYPE_PARTITION: u8 = 4;
const TYPE_CONFIG: u8 = 5;
const TYPE_REMOVE_TOPIC: u8 = 6;
const TYPE_PRODUCER_IDS: u8 = 7;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn string(&mut self, s: &str) {
        // Names are validated far below u16::MAX (topic names ≤ 249, config values are
        // bounded by the request frame); a longer one is a caller bug.
        let len = u16::try_from(s.len()).expect("metadata strings are shorter than 64 KiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_string(&mut self, s: &Option<String>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.string(s);
            }
        }
    }
    fn nodes(&mut self, nodes: &[NodeId]) {
        self.0
            .extend_from_slice(&(nodes.len() as u32).to_be_bytes());
        for node in nodes {
            self.i32(node.0);
        }
    }
    fn id(&mut self, id: &TopicId) {
        self.0.extend_from_slice(&id.0);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordDecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(RecordDecodeError::Truncated)?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(RecordDecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, RecordDecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i32(&mut self) -> Result<i32, RecordDecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32(&mut self) -> Result<u32, RecordDecodeError> {
        Ok(self.i32()? as u32)
    }
    fn i64(&mut self) -> Result<i64, RecordDecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, RecordDecodeError> {
        let b = self.take(2)?;
        let len = u16::from_be_bytes([b[0], b[1]]) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordDecodeError::BadUtf8)
    }
    fn opt_string(&mut self) -> Result<Option<String>, RecordDecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(RecordDecodeError::BadField("optional-string flag")),
        }
    }
    fn nodes(&mut self) -> Result<Vec<NodeId>, RecordDecodeError> {
        let count = self.u32()?;
        if count as usize > METADATA_LIST_ITEMS_MAX {
            return Err(RecordDecodeError::TooManyItems(count));
        }
        // Each item is 4 bytes: a count larger than what is left is truncation, checked
        // before anything is allocated from it.
        if (count as usize) * 4 > self.buf.len() - self.pos {
            return Err(RecordDecodeError::Truncated);
        }
        (0..count).map(|_| self.i32().map(NodeId)).collect()
    }
    fn id(&mut self) -> Result<TopicId, RecordDecodeError> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(TopicId(a))
    }
}

impl MetadataRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.u8(METADATA_RECORD_VERSION);
        match self {
            MetadataRecord::ClusterId { cluster_id } => {
                w.u8(TYPE_CLUSTER_ID);
                w.string(cluster_id);
            }
            MetadataRecord::RegisterBroker {
                node_id,
                epoch,
                host,
                port,
                rack,
            } => {
                w.u8(TYPE_REGISTER_BROKER);
                w.i32(node_id.0);
                w.i64(*epoch);
                w.string(host);
                w.i32(*port);
                w.opt_string(rack);
            }
            MetadataRecord::Topic { name, id } => {
                w.u8(TYPE_TOPIC);
                w.string(name);
                w.id(id);
            }
            MetadataRecord::Partition {
                topic_id,
                index,
                leader,
                replicas,
                isr,
                leader_epoch,
                partition_epoch,
            } => {
                w.u8(TYPE_PARTITION);
                w.id(topic_id);
                w.i32(index.0);
                w.i32(leader.0);
                w.nodes(replicas);
                w.nodes(isr);
                w.i32(leader_epoch.0);
                w.i32(*partition_epoch);
            }
            MetadataRecord::Config {
                kind,
                resource,
                key,
                value,
            } => {
                w.u8(TYPE_CONFIG);
                w.u8(match kind {
                    ConfigResourceKind::Topic => 0,
                    ConfigResourceKind::Broker => 1,
                });
                w.string(resource);
                w.string(key);
                w.opt_string(value);
            }
            MetadataRecord::RemoveTopic { id } => {
                w.u8(TYPE_REMOVE_TOPIC);
                w.id(id);
            }
            MetadataRecord::ProducerIds {
                broker,
                next_producer_id,
            } => {
                w.u8(TYPE_PRODUCER_IDS);
                w.i32(broker.0);
                w.i64(*next_producer_id);
            }
        }
        w.0
    }

    /// Decodes one record; any malformation is an error.
    pub fn decode(buf: &[u8]) -> Result<MetadataRecord, RecordDecodeError> {
        if buf.len() > METADATA_RECORD_BYTES_MAX {
            return Err(RecordDecodeError::TooLarge(buf.len()));
        }
        let mut r = Reader { buf, pos: 0 };
        let version = r.u8()?;
        if version != METADATA_RECORD_VERSION {
            return Err(RecordDecodeError::UnknownVersion(version));
        }
        let record = match r.u8()? {
            TYPE_CLUSTER_ID => MetadataRecord::ClusterId {
                cluster_id: r.string()?,
            },
            TYPE_REGISTER_BROKER => MetadataRecord::RegisterBroker {
                node_id: NodeId(r.i32()?),
                epoch: r.i64()?,
                host: r.string()?,
                port: r.i32()?,
                rack: r.opt_string()?,
            },
            TYPE_TOPIC => MetadataRecord::Topic {
                name: r.string()?,
                id: r.id()?,
            },
            TYPE_PARTITION => MetadataRecord::Partition {
                topic_id: r.id()?,
                index: PartitionId(r.i32()?),
                leader: NodeId(r.i32()?),
                replicas: r.nodes()?,
                isr: r.nodes()?,
                leader_epoch: LeaderEpoch(r.i32()?),
                partition_epoch: r.i32()?,
            },
            TYPE_CONFIG => MetadataRecord::Config {
                kind: match r.u8()? {
                    0 => ConfigResourceKind::Topic,
                    1 => ConfigResourceKind::Broker,
                    _ => return Err(RecordDecodeError::BadField("config resource kind")),
                },
                resource: r.string()?,
                key: r.string()?,
                value: r.opt_string()?,
            },
            TYPE_REMOVE_TOPIC => MetadataRecord::RemoveTopic { id: r.id()? },
            TYPE_PRODUCER_IDS => MetadataRecord::ProducerIds {
                broker: NodeId(r.i32()?),
                next_producer_id: match r.i64()? {
                    next if next >= 0 => next,
                    _ => return Err(RecordDecodeError::BadField("next producer id")),
                },
            },
            other => return Err(RecordDecodeError::UnknownType(other)),
        };
        let trailing = buf.len() - r.pos;
        if trailing != 0 {
            return Err(RecordDecodeError::TrailingBytes(trailing));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<MetadataRecord> {
        vec![
            MetadataRecord::ClusterId {
                cluster_id: "abc".into(),
            },
            MetadataRecord::RegisterBroker {
                node_id: NodeId(1),
                epoch: 7,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: Some("r1".into()),
            },
            MetadataRecord::Topic {
                name: "t".into(),
                id: TopicId([9; 16]),
            },
            MetadataRecord::Partition {
                topic_id: TopicId([9; 16]),
                index: PartitionId(3),
                leader: NodeId(1),
                replicas: vec![NodeId(1), NodeId(2)],
                isr: vec![NodeId(1)],
                leader_epoch: LeaderEpoch(4),
                partition_epoch: 5,
            },
            MetadataRecord::Config {
                kind: ConfigResourceKind::Topic,
                resource: "t".into(),
                key: "retention.ms".into(),
                value: None,
            },
            MetadataRecord::RemoveTopic {
                id: TopicId([9; 16]),
            },
            MetadataRecord::ProducerIds {
                broker: NodeId(1),
                next_producer_id: 2000,
            },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        for record in samples() {
            assert_eq!(MetadataRecord::decode(&record.encode()), Ok(record));
        }
    }

    #[test]
    fn every_strict_prefix_and_any_extension_is_an_error() {
        for record in samples() {
            let bytes = record.encode();
            for len in 0..bytes.len() {
                assert!(
                    MetadataRecord::decode(&bytes[..len]).is_err(),
                    "{record:?} {len}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(
                MetadataRecord::decode(&longer),
                Err(RecordDecodeError::TrailingBytes(1))
            );
        }
        assert_eq!(
            MetadataRecord::decode(&[1, 1]),
            Err(RecordDecodeError::UnknownVersion(1))
        );
        assert_eq!(
            MetadataRecord::decode(&[0, 99]),
            Err(RecordDecodeError::UnknownType(99))
        );
    }

    #[test]
    fn a_huge_list_count_is_refused_before_allocating() {
        let mut bytes = vec![0, TYPE_PARTITION];
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&0i32.to_be_bytes());
        bytes.extend_from_slice(&1i32.to_be_bytes());
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(MetadataRecord::decode(&bytes).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn decode_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(record) = MetadataRecord::decode(&bytes) {
                prop_assert_eq!(record.encode(), bytes);
            }
        }
    }
}
