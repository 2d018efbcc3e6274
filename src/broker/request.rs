//! The request decode entry point, as a pure function (the fuzz target and the proptest
//! call it directly), the table of what this broker implements, and response encoding.
//!
//! `decode_request` is total: any bytes give a `Request` or a `DecodeError` saying what
//! Kafka does about them (answer UNSUPPORTED_VERSION for ApiVersions, close otherwise).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

/// One implemented API: the versions it decodes and the lowest version it advertises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSupport {
    pub key: ApiKey,
    /// Lowest version advertised in ApiVersions.
    pub advertised_min: i16,
    /// Lowest version actually decoded. Produce is advertised from v0 (old librdkafka
    /// gates features on it, as Apache Kafka 4 does, KAFKA-18659) but only v3+ decodes:
    /// a v0–v2 Produce gets the connection closed, as Kafka 4 does.
    pub decoded_min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiSupport {
    ApiSupport {
        key,
        advertised_min: min,
        decoded_min: min,
        max,
    }
}

/// Every API this broker answers, with the versions it answers. ApiVersions advertises
/// exactly this table.
pub const SUPPORTED_APIS: &[ApiSupport] = &[
    ApiSupport {
        key: ApiKey::Produce,
        advertised_min: 0,
        decoded_min: 3,
        max: 11,
    },
    api(ApiKey::Fetch, 4, 16),
    api(ApiKey::ListOffsets, 1, 8),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 3),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::InitProducerId, 0, 4),
    api(ApiKey::DescribeProducers, 0, 0),
];

/// The support entry for `key`, if implemented.
pub fn support_for(key: ApiKey) -> Option<&'static ApiSupport> {
    SUPPORTED_APIS.iter().find(|s| s.key == key)
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a frame is not a request this broker answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header fields: close.
    #[error("request of {len} bytes is shorter than a request header")]
    TooShort { len: usize },
    /// An API key Kafka does not define, or one this broker does not implement: close.
    #[error("unknown or unimplemented API key {api_key}")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    /// A version outside what this broker decodes. For ApiVersions Kafka answers
    /// UNSUPPORTED_VERSION with a v0 body; for anything else it closes.
    #[error("unsupported version {version} of API {api_key}")]
    UnsupportedVersion {
        api_key: i16,
        version: i16,
        correlation_id: i32,
    },
    /// Header or body did not decode: close.
    #[error("malformed request (API {api_key} v{version}): {detail}")]
    Malformed {
        api_key: i16,
        version: i16,
        correlation_id: i32,
        detail: String,
    },
}

/// Decodes one request frame (the bytes after the length prefix).
pub fn decode_request(frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort { len: frame.len() });
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let unknown = DecodeError::UnknownApiKey {
        api_key: api_key_raw,
        correlation_id,
    };
    let api_key = ApiKey::try_from(api_key_raw).map_err(|_| unknown.clone())?;
    let support = support_for(api_key).ok_or(unknown)?;
    if version < support.decoded_min || version > support.max {
        return Err(DecodeError::UnsupportedVersion {
            api_key: api_key_raw,
            version,
            correlation_id,
        });
    }
    let malformed = |detail: String| DecodeError::Malformed {
        api_key: api_key_raw,
        version,
        correlation_id,
        detail,
    };
    let header_version = api_key.request_header_version(version);
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| malformed(format!("header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut buf, version)
        .map_err(|e| malformed(format!("body: {e}")))?;
    // Kafka ignores bytes after the body only for tagged-field-free future additions;
    // a well-formed request of a known version has none, but clients are not refused
    // for them (Kafka does not check either).
    Ok(Request {
        header,
        api_key,
        body,
    })
}

/// Encodes a response frame body (header and message) for `api_key` at `version`.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, String> {
    let mut out = BytesMut::with_capacity(256);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut out, api_key.response_header_version(version))
        .map_err(|e| format!("response header: {e}"))?;
    body.encode(&mut out, version)
        .map_err(|e| format!("response body: {e}"))?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;
    use proptest::prelude::*;

    fn frame(key: i16, version: i16, body: &impl Encodable) -> Bytes {
        let api_key = ApiKey::try_from(key).unwrap();
        let mut out = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(42);
        header
            .encode(&mut out, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn a_valid_request_decodes_at_every_supported_version() {
        for version in 0..=12 {
            let request = decode_request(frame(3, version, &MetadataRequest::default())).unwrap();
            assert_eq!(request.api_key, ApiKey::Metadata);
            assert_eq!(request.correlation_id(), 42);
            assert_eq!(request.version(), version);
        }
    }

    #[test]
    fn bad_headers_get_the_right_error() {
        assert_eq!(
            decode_request(Bytes::from_static(&[0, 3])),
            Err(DecodeError::TooShort { len: 2 })
        );
        assert!(matches!(
            decode_request(Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1])),
            Err(DecodeError::UnknownApiKey {
                api_key: 0x7f00,
                correlation_id: 1
            })
        ));
        // OffsetCommit exists in Kafka but is not implemented here.
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 8, 0, 0, 0, 0, 0, 1])),
            Err(DecodeError::UnknownApiKey { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 18, 0, 9, 0, 0, 0, 5])),
            Err(DecodeError::UnsupportedVersion {
                api_key: 18,
                version: 9,
                correlation_id: 5
            })
        ));
        // Produce v2 is advertised (for old librdkafka) but not decoded.
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 0, 0, 2, 0, 0, 0, 5])),
            Err(DecodeError::UnsupportedVersion {
                api_key: 0,
                version: 2,
                ..
            })
        ));
        let mut truncated = frame(3, 1, &MetadataRequest::default()).to_vec();
        truncated.truncate(truncated.len() - 2);
        assert!(matches!(
            decode_request(Bytes::from(truncated)),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn a_huge_array_count_does_not_allocate() {
        // Metadata v1: header (api 3, v1, corr 1, client id null), then topics count 2^31-1.
        let bytes: &[u8] = &[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_request(Bytes::from_static(bytes)),
            Err(DecodeError::Malformed { .. })
        ));
    }

    fn supported_prefix() -> impl Strategy<Value = Vec<u8>> {
        (0..SUPPORTED_APIS.len(), 0i16..20, any::<i32>()).prop_map(|(i, v, c)| {
            let mut out = Vec::new();
            out.extend_from_slice(&(SUPPORTED_APIS[i].key as i16).to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&c.to_be_bytes());
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn decode_is_total_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(Bytes::from(bytes));
        }

        #[test]
        fn decode_is_total_on_random_bodies_of_real_headers(
            prefix in supported_prefix(),
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = prefix;
            bytes.extend_from_slice(&body);
            let _ = decode_request(Bytes::from(bytes));
        }
    }
}
