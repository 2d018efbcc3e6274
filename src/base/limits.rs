//! Every bound the code enforces lives here, so that a reader can see in one place how
//! much memory, how many connections and how large a request the broker will accept.
//! Names carry their unit last.

/// Sector size used for torn-write boundaries on the simulated disk (HDD/SSD logical sector).
pub const DISK_SECTOR_BYTES: u64 = 512;
/// Page size used for torn-write boundaries on the simulated disk (page-cache writeback unit).
pub const DISK_PAGE_BYTES: u64 = 4096;
/// Largest single read the Disk seam will serve in one call; larger reads are a bug.
pub const DISK_READ_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Largest length a single path component may have (Linux NAME_MAX).
pub const DISK_NAME_BYTES_MAX: usize = 255;

/// Largest frame (request or response body, excluding the 4-byte length prefix) a
/// connection accepts. Kafka's `socket.request.max.bytes` default is 100 MiB.
pub const FRAME_BYTES_MAX: u32 = 100 * 1024 * 1024;
/// Largest frame the faulty transport and the sim smoke test will carry.
pub const SIM_FRAME_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Frames a faulty transport may hold back for delayed delivery at once.
pub const TRANSPORT_DELAYED_FRAMES_MAX: usize = 1024;

/// Largest RecordBatch (whole batch, header included) any decoder accepts: a batch
/// cannot be larger than the frame that carried it. Per-topic `max.message.bytes` is
/// checked by the caller against `BatchInfo::size_bytes`.
pub const RECORD_BATCH_BYTES_MAX: u64 = FRAME_BYTES_MAX as u64;
/// Largest records section a compressed batch may decompress to. Bounds decompression
/// bombs; a zstd window is capped to the same size.
pub const RECORD_BATCH_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most records one batch may declare. librdkafka's `batch.num.messages` tops out at
/// 1,000,000, so no real client exceeds this; it bounds the decoded `Vec<Record>`.
pub const RECORD_BATCH_RECORDS_MAX: i32 = 1 << 20;
/// Most headers, summed over all records, one batch may carry when decoded.
pub const RECORD_BATCH_HEADERS_MAX: usize = 1 << 20;
/// Largest zstd window (log2 bytes) a decoder accepts: 128 MiB, zstd's own default cap,
/// which covers every level Kafka allows (`compression.zstd.level` up to 22). A frame
/// asking for more is refused instead of sizing the decoder's buffer.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Connections a faulty transport proxy carries at once; further accepts are closed at once.
pub const TRANSPORT_CONNECTIONS_MAX: usize = 1024;
/// Requests a faulty transport tracks per connection while it waits for their responses.
/// Kafka clients pipeline at most `max.in.flight.requests.per.connection` (default 5);
/// past this bound the oldest entry is forgotten (its response is then delivered as is).
pub const TRANSPORT_OUTSTANDING_REQUESTS_MAX: usize = 1024;
/// Fault events a faulty transport keeps for the simulator to read; later ones are counted
/// but not stored.
pub const TRANSPORT_EVENTS_MAX: usize = 1_000_000;
/// Message records a faulty transport keeps (when asked to log messages) until the
/// simulator takes them; later ones are counted but not stored.
pub const TRANSPORT_MESSAGES_MAX: usize = 1_000_000;
/// Operation records a simulated disk keeps (when asked to log them) until the simulator
/// takes them; later ones are counted but not stored.
pub const SIM_DISK_OPS_LOGGED_MAX: usize = 1_000_000;
/// Longest delay the faulty transport injects into one frame (`delay_ms_max` is clamped).
pub const TRANSPORT_DELAY_MS_MAX: u64 = 60_000;

/// Requests one client connection keeps in flight (pipelined) at once; further requests
/// wait for a slot. Bounds the pending-response queue per connection.
pub const CLIENT_IN_FLIGHT_REQUESTS_MAX: usize = 256;
/// Largest response frame the client accepts (a fetch response is bounded by its
/// `max_bytes`, so this only stops a misbehaving broker from sizing our buffers).
pub const CLIENT_RESPONSE_BYTES_MAX: u32 = FRAME_BYTES_MAX;
/// Most bytes of records a producer buffers (queued and in flight) before `send` waits.
pub const PRODUCER_BUFFER_BYTES_MAX: usize = 1 << 30;
/// Largest ProduceRequest the producer builds (Kafka's `max.request.size` is 1 MiB by
/// default and configurable; this caps the configuration).
pub const PRODUCER_REQUEST_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most items in one list of a metadata record (replicas, ISR): bounds decode allocations.
pub const METADATA_LIST_ITEMS_MAX: usize = 65_536;
/// Largest encoded metadata record.
pub const METADATA_RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Most partitions one topic may have (CreateTopics/CreatePartitions beyond it get
/// INVALID_PARTITIONS): bounds the records one request can generate.
pub const TOPIC_PARTITIONS_MAX: i32 = 100_000;
/// Most metadata records the broker replays from one batch of its metadata log.
pub const METADATA_BATCH_RECORDS_MAX: usize = 1 << 20;

/// Connections the broker serves at once; further accepts are closed at once.
pub const BROKER_CONNECTIONS_MAX: usize = 10_000;
/// Requests one broker connection processes at once (pipelined); reading the next
/// request waits for a slot, so a client cannot queue unbounded work.
pub const BROKER_IN_FLIGHT_REQUESTS_MAX: usize = 64;
/// Longest a Fetch may wait (`max_wait_ms` is clamped to it).
pub const FETCH_MAX_WAIT_MS_MAX: u64 = 60_000;
/// Most bytes one Fetch response carries, whatever the request asks for.
pub const FETCH_RESPONSE_BYTES_MAX: u64 = 64 * 1024 * 1024;
