//! The client's typed errors and the table of Kafka error codes.
//!
//! Owns: `ClientError` (every way a client call can fail, with the Kafka error code and
//! name when a broker answered one) and `KAFKA_ERRORS` (code → name, retriable flag, as in
//! Apache Kafka's `Errors.java`). Must never: lose the broker's error code by folding it
//! into a string, or decide retriability anywhere but here.

/// One row of the Kafka error table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaErrorInfo {
    pub code: i16,
    /// The name Kafka's `Errors` enum gives it (`NOT_LEADER_OR_FOLLOWER`).
    pub name: &'static str,
    /// Whether Kafka clients retry the operation on this error (a `RetriableException`).
    pub retriable: bool,
}

macro_rules! kafka_errors {
    ($(($code:literal, $name:literal, $retriable:literal)),* $(,)?) => {
        /// Every Kafka error code this client knows, in code order.
        pub const KAFKA_ERRORS: &[KafkaErrorInfo] = &[
            $(KafkaErrorInfo { code: $code, name: $name, retriable: $retriable },)*
        ];
    };
}

kafka_errors!(
    (-1, "UNKNOWN_SERVER_ERROR", false),
    (0, "NONE", false),
    (1, "OFFSET_OUT_OF_RANGE", false),
    (2, "CORRUPT_MESSAGE", true),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", true),
    (4, "INVALID_FETCH_SIZE", false),
    (5, "LEADER_NOT_AVAILABLE", true),
    (6, "NOT_LEADER_OR_FOLLOWER", true),
    (7, "REQUEST_TIMED_OUT", true),
    (8, "BROKER_NOT_AVAILABLE", false),
    (9, "REPLICA_NOT_AVAILABLE", true),
    (10, "MESSAGE_TOO_LARGE", false),
    (11, "STALE_CONTROLLER_EPOCH", false),
    (12, "OFFSET_METADATA_TOO_LARGE", false),
    (13, "NETWORK_EXCEPTION", true),
    (14, "COORDINATOR_LOAD_IN_PROGRESS", true),
    (15, "COORDINATOR_NOT_AVAILABLE", true),
    (16, "NOT_COORDINATOR", true),
    (17, "INVALID_TOPIC_EXCEPTION", false),
    (18, "RECORD_LIST_TOO_LARGE", false),
    (19, "NOT_ENOUGH_REPLICAS", true),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true),
    (21, "INVALID_REQUIRED_ACKS", false),
    (22, "ILLEGAL_GENERATION", false),
    (23, "INCONSISTENT_GROUP_PROTOCOL", false),
    (24, "INVALID_GROUP_ID", false),
    (25, "UNKNOWN_MEMBER_ID", false),
    (26, "INVALID_SESSION_TIMEOUT", false),
    (27, "REBALANCE_IN_PROGRESS", false),
    (28, "INVALID_COMMIT_OFFSET_SIZE", false),
    (29, "TOPIC_AUTHORIZATION_FAILED", false),
    (30, "GROUP_AUTHORIZATION_FAILED", false),
    (31, "CLUSTER_AUTHORIZATION_FAILED", false),
    (32, "INVALID_TIMESTAMP", false),
    (33, "UNSUPPORTED_SASL_MECHANISM", false),
    (34, "ILLEGAL_SASL_STATE", false),
    (35, "UNSUPPORTED_VERSION", false),
    (36, "TOPIC_ALREADY_EXISTS", false),
    (37, "INVALID_PARTITIONS", false),
    (38, "INVALID_REPLICATION_FACTOR", false),
    (39, "INVALID_REPLICA_ASSIGNMENT", false),
    (40, "INVALID_CONFIG", false),
    (41, "NOT_CONTROLLER", true),
    (42, "INVALID_REQUEST", false),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false),
    (44, "POLICY_VIOLATION", false),
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false),
    (46, "DUPLICATE_SEQUENCE_NUMBER", false),
    (47, "INVALID_PRODUCER_EPOCH", false),
    (48, "INVALID_TXN_STATE", false),
    (49, "INVALID_PRODUCER_ID_MAPPING", false),
    (50, "INVALID_TRANSACTION_TIMEOUT", false),
    (51, "CONCURRENT_TRANSACTIONS", false),
    (52, "TRANSACTION_COORDINATOR_FENCED", false),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false),
    (54, "SECURITY_DISABLED", false),
    (55, "OPERATION_NOT_ATTEMPTED", false),
    (56, "KAFKA_STORAGE_ERROR", true),
    (57, "LOG_DIR_NOT_FOUND", false),
    (58, "SASL_AUTHENTICATION_FAILED", false),
    (59, "UNKNOWN_PRODUCER_ID", false),
    (60, "REASSIGNMENT_IN_PROGRESS", false),
    (61, "DELEGATION_TOKEN_AUTH_DISABLED", false),
    (62, "DELEGATION_TOKEN_NOT_FOUND", false),
    (63, "DELEGATION_TOKEN_OWNER_MISMATCH", false),
    (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false),
    (65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false),
    (66, "DELEGATION_TOKEN_EXPIRED", false),
    (67, "INVALID_PRINCIPAL_TYPE", false),
    (68, "NON_EMPTY_GROUP", false),
    (69, "GROUP_ID_NOT_FOUND", false),
    (70, "FETCH_SESSION_ID_NOT_FOUND", true),
    (71, "INVALID_FETCH_SESSION_EPOCH", true),
    (72, "LISTENER_NOT_FOUND", true),
    (73, "TOPIC_DELETION_DISABLED", false),
    (74, "FENCED_LEADER_EPOCH", true),
    (75, "UNKNOWN_LEADER_EPOCH", true),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", false),
    (77, "STALE_BROKER_EPOCH", false),
    (78, "OFFSET_NOT_AVAILABLE", true),
    (79, "MEMBER_ID_REQUIRED", false),
    (80, "PREFERRED_LEADER_NOT_AVAILABLE", true),
    (81, "GROUP_MAX_SIZE_REACHED", false),
    (82, "FENCED_INSTANCE_ID", false),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true),
    (84, "ELECTION_NOT_NEEDED", true),
    (85, "NO_REASSIGNMENT_IN_PROGRESS", false),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC", false),
    (87, "INVALID_RECORD", false),
    (88, "UNSTABLE_OFFSET_COMMIT", true),
    (89, "THROTTLING_QUOTA_EXCEEDED", true),
    (90, "PRODUCER_FENCED", false),
    (91, "RESOURCE_NOT_FOUND", false),
    (92, "DUPLICATE_RESOURCE", false),
    (93, "UNACCEPTABLE_CREDENTIAL", false),
    (94, "INCONSISTENT_VOTER_SET", false),
    (95, "INVALID_UPDATE_VERSION", false),
    (96, "FEATURE_UPDATE_FAILED", false),
    (97, "PRINCIPAL_DESERIALIZATION_FAILURE", false),
    (98, "SNAPSHOT_NOT_FOUND", false),
    (99, "POSITION_OUT_OF_RANGE", false),
    (100, "UNKNOWN_TOPIC_ID", true),
    (101, "DUPLICATE_BROKER_REGISTRATION", false),
    (102, "BROKER_ID_NOT_REGISTERED", false),
    (103, "INCONSISTENT_TOPIC_ID", true),
    (104, "INCONSISTENT_CLUSTER_ID", false),
    (105, "TRANSACTIONAL_ID_NOT_FOUND", false),
    (106, "FETCH_SESSION_TOPIC_ID_ERROR", true),
    (107, "INELIGIBLE_REPLICA", false),
    (108, "NEW_LEADER_ELECTED", false),
    (109, "OFFSET_MOVED_TO_TIERED_STORAGE", false),
    (110, "FENCED_MEMBER_EPOCH", false),
    (111, "UNRELEASED_INSTANCE_ID", false),
    (112, "UNSUPPORTED_ASSIGNOR", false),
    (113, "STALE_MEMBER_EPOCH", false),
    (114, "MISMATCHED_ENDPOINT_TYPE", false),
    (115, "UNSUPPORTED_ENDPOINT_TYPE", false),
    (116, "UNKNOWN_CONTROLLER_ID", false),
    (117, "UNKNOWN_SUBSCRIPTION_ID", false),
    (118, "TELEMETRY_TOO_LARGE", false),
    (119, "INVALID_REGISTRATION", false),
    (120, "TRANSACTION_ABORTABLE", false),
    (121, "INVALID_RECORD_STATE", false),
    (122, "SHARE_SESSION_NOT_FOUND", true),
    (123, "INVALID_SHARE_SESSION_EPOCH", true),
    (124, "FENCED_STATE_EPOCH", false),
    (125, "INVALID_VOTER_KEY", false),
    (126, "DUPLICATE_VOTER", false),
    (127, "VOTER_NOT_FOUND", false),
    (128, "INVALID_REGULAR_EXPRESSION", false),
    (129, "REBOOTSTRAP_REQUIRED", false),
);

/// Error codes the client handles by name.
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const REPLICA_NOT_AVAILABLE: i16 = 9;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const NETWORK_EXCEPTION: i16 = 13;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const INVALID_REQUEST: i16 = 42;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// The table row for `code`, or `None` for a code this client does not know.
pub fn kafka_error(code: i16) -> Option<&'static KafkaErrorInfo> {
    // The table is sorted by code and dense from -1, but a search keeps that an
    // optimisation rather than an assumption.
    KAFKA_ERRORS
        .binary_search_by_key(&code, |info| info.code)
        .ok()
        .map(|index| &KAFKA_ERRORS[index])
}

/// Kafka's name for `code`, `UNKNOWN_ERROR_CODE` for codes newer than this table.
pub fn kafka_error_name(code: i16) -> &'static str {
    kafka_error(code).map_or("UNKNOWN_ERROR_CODE", |info| info.name)
}

/// Whether a Kafka client retries on `code`. Unknown codes are not retriable, as in Kafka.
pub fn is_retriable_code(code: i16) -> bool {
    kafka_error(code).is_some_and(|info| info.retriable)
}

/// Whether `code` means the client's view of partition leadership is stale, so metadata
/// must be refreshed before the next attempt.
pub fn is_metadata_code(code: i16) -> bool {
    matches!(
        code,
        code::UNKNOWN_TOPIC_OR_PARTITION
            | code::LEADER_NOT_AVAILABLE
            | code::NOT_LEADER_OR_FOLLOWER
            | code::REPLICA_NOT_AVAILABLE
            | code::KAFKA_STORAGE_ERROR
            | code::NOT_CONTROLLER
            | code::FENCED_LEADER_EPOCH
            | code::UNKNOWN_LEADER_EPOCH
            | code::UNKNOWN_TOPIC_ID
    )
}

/// Every way a client operation fails. Cloneable, because one failed produce request
/// fails every record of its batches with the same error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A broker answered with a Kafka error code.
    #[error("{context}: broker returned {name} ({code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        code: i16,
        name: &'static str,
        message: Option<String>,
        /// What the client was doing: `produce t-0`, `create topic t`.
        context: String,
    },
    /// The TCP connection could not be opened (refused, unreachable, timed out).
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    /// An established connection failed or closed; requests in flight on it have an
    /// unknown outcome (the broker may have applied them).
    #[error("connection to {addr} lost: {detail}")]
    Disconnected { addr: String, detail: String },
    /// No response within the request timeout; the connection was closed because later
    /// responses on it can no longer be trusted to match. Outcome unknown.
    #[error("{api} request to {addr} timed out after {timeout_ms} ms")]
    RequestTimeout {
        addr: String,
        api: String,
        timeout_ms: u64,
    },
    /// The broker sent something this client cannot decode or that breaks the protocol
    /// (wrong correlation id, undecodable body, corrupt record batch).
    #[error("protocol error from {addr}: {detail}")]
    Protocol { addr: String, detail: String },
    /// The broker does not support any version of an API in the range this client speaks.
    #[error("broker {addr} supports no usable version of {api}")]
    UnsupportedApi { addr: String, api: String },
    /// No bootstrap server or known broker could be reached.
    #[error("no broker reachable (last error: {last_error})")]
    NoBrokerAvailable { last_error: String },
    /// A record was not acknowledged within the producer's delivery timeout.
    #[error("delivery timed out after {timeout_ms} ms (last error: {last_error})")]
    DeliveryTimeout { timeout_ms: u64, last_error: String },
    /// The producer or consumer was closed.
    #[error("client closed")]
    Closed,
    /// The caller passed something unusable (unknown partition, record too large, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A record batch could not be encoded.
    #[error("cannot encode record batch: {0}")]
    Encode(String),
}

impl ClientError {
    /// A `Kafka` error for `code`, with the name from the table.
    pub fn kafka(code: i16, message: Option<String>, context: impl Into<String>) -> ClientError {
        ClientError::Kafka {
            code,
            name: kafka_error_name(code),
            message,
            context: context.into(),
        }
    }

    /// `Ok(())` for code 0, else a `Kafka` error.
    pub fn check(
        code: i16,
        message: Option<&str>,
        context: impl FnOnce() -> String,
    ) -> Result<(), ClientError> {
        if code == code::NONE {
            Ok(())
        } else {
            Err(ClientError::kafka(
                code,
                message.map(str::to_owned),
                context(),
            ))
        }
    }

    /// The Kafka error code, if a broker answered with one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same operation may succeed: retriable Kafka codes, and
    /// transport failures (connect, disconnect, timeout).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => is_retriable_code(*code),
            ClientError::Connect { .. }
            | ClientError::Disconnected { .. }
            | ClientError::RequestTimeout { .. }
            | ClientError::NoBrokerAvailable { .. } => true,
            ClientError::Protocol { .. }
            | ClientError::UnsupportedApi { .. }
            | ClientError::DeliveryTimeout { .. }
            | ClientError::Closed
            | ClientError::InvalidArgument(_)
            | ClientError::Encode(_) => false,
        }
    }

    /// Whether the metadata cache should be refreshed before retrying: leadership
    /// errors, and any transport failure (the broker may be gone).
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => is_metadata_code(*code),
            ClientError::Connect { .. }
            | ClientError::Disconnected { .. }
            | ClientError::RequestTimeout { .. }
            | ClientError::NoBrokerAvailable { .. } => true,
            _ => false,
        }
    }

    /// Whether the outcome of the failed request is unknown (it may have been applied):
    /// what a history checker records as `info` rather than `fail`.
    pub fn is_indeterminate(&self) -> bool {
        matches!(
            self,
            ClientError::Disconnected { .. }
                | ClientError::RequestTimeout { .. }
                | ClientError::DeliveryTimeout { .. }
        ) || self.kafka_code() == Some(code::REQUEST_TIMED_OUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_dense() {
        for pair in KAFKA_ERRORS.windows(2) {
            assert_eq!(pair[0].code + 1, pair[1].code, "codes are dense and sorted");
        }
        assert_eq!(KAFKA_ERRORS[0].code, -1);
    }

    #[test]
    fn table_agrees_with_kafka_protocol() {
        // kafka-protocol carries Kafka's own table; ours must agree on every code it
        // knows, names compared without underscores and case.
        for info in KAFKA_ERRORS.iter().filter(|info| info.code != 0) {
            let theirs = kafka_protocol::ResponseError::try_from_code(info.code)
                .expect("a non-zero code is an error");
            assert_eq!(
                theirs.is_retriable(),
                info.retriable,
                "retriable flag of {}",
                info.name
            );
            let their_name = format!("{theirs:?}").to_lowercase();
            let our_name = info.name.replace('_', "").to_lowercase();
            assert_eq!(their_name, our_name, "name of code {}", info.code);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(kafka_error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(kafka_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_error_name(5), "LEADER_NOT_AVAILABLE");
        assert_eq!(kafka_error_name(1000), "UNKNOWN_ERROR_CODE");
        assert_eq!(kafka_error_name(i16::MIN), "UNKNOWN_ERROR_CODE");
        assert!(is_retriable_code(6));
        assert!(is_retriable_code(19));
        assert!(!is_retriable_code(1));
        assert!(!is_retriable_code(10));
        assert!(!is_retriable_code(1000));
        assert!(is_metadata_code(6));
        assert!(!is_metadata_code(19));
        let error = ClientError::kafka(6, None, "produce t-0");
        assert_eq!(error.kafka_code(), Some(6));
        assert!(error.is_retriable());
        assert!(error.needs_metadata_refresh());
        assert_eq!(
            error.to_string(),
            "produce t-0: broker returned NOT_LEADER_OR_FOLLOWER (6)"
        );
        assert!(!ClientError::kafka(36, Some("exists".into()), "x").is_retriable());
        assert!(ClientError::check(0, None, || unreachable!()).is_ok());
    }
}
