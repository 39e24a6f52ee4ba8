// Every bound in hotstock lives here, with its unit last in the name.
// Relationships between bounds are asserted when this module loads, so a
// change that breaks one fails at start, not under load.
import assert from 'node:assert/strict';
import { operationCosts } from './layout.ts';

// ---- identifiers and input -------------------------------------------------

/** SKU, order, user and idempotency ids: 1..128 printable characters. */
export const idLengthMax = 128;
/** Catalog attributes (product, size, color) are short labels. */
export const labelLengthMax = 64;
/** Free-text fields such as an adjustment reason. */
export const reasonLengthMax = 256;
/** Units in one reservation; a flash sale never sells a pallet to one user. */
export const orderQtyMax = 1_000;
/** Stock counts and adjustment deltas stay far inside the safe-integer range. */
export const stockUnitsMax = 1_000_000_000;
/** Prices in cents: up to ten million currency units. */
export const priceCentsMax = 1_000_000_000;
/** JSON request bodies (Fastify's default, stated explicitly): 1 MiB. */
export const requestBodyBytesMax = 1024 * 1024;
/** Path parameters are ids; percent-encoded UTF-8 takes up to 12 bytes a character. */
export const pathParamBytesMax = idLengthMax * 12;
/** Request URIs longer than this get 414; well under Node's 16 KiB limit on the request head. */
export const requestUriBytesMax = 8 * 1024;
/** A request must arrive whole within this long, so slow senders cannot hold sockets forever. */
export const httpRequestTimeoutMs = 30_000;
/** Idle keep-alive connections close after this long (Fastify's default, stated explicitly). */
export const httpKeepAliveTimeoutMs = 72_000;
/** Items in one `POST /v1/orders:batch`. */
export const batchRequestItemsMax = 1_000;
/** An opaque listing cursor, as text (base64url of a sealed position). */
export const cursorLengthMax = 4_096;
/**
 * `?sku=` of the watch, as text: a list of SKU ids must fit the URI bound
 * with the path, `?sku=` and a `&lastEventId=`, so the documented maximum is
 * one a client can send.
 */
export const watchSkuParamLengthMax = 8_000;

// ---- engine ----------------------------------------------------------------

/** Requests that may wait in one SKU's queue before new ones get 503 `overloaded`. */
export const skuQueueDepthMax = 4_096;
/** Requests waiting across all SKUs; bounds memory when many SKUs are hot at once. */
export const engineQueueDepthMax = 65_536;
/**
 * Default for --shed-queue-wait-ms: how long the oldest request in a SKU's
 * queue may have waited before new ones get 503 `overloaded`. At a
 * sustainable rate the oldest usually waits about one commit (a few ms), but
 * measured at 3000 req/s on a 2-core machine a writer stalls for 40-150 ms
 * now and then (P99.9), and an etcd commit takes tens of ms; the bound sits
 * above those so normal operation never sheds. Past it the SKU is taking more
 * than it can commit, and queueing more would only turn into timeouts.
 */
export const shedQueueWaitMsDefault = 250;
/** UTF-8 takes at most 4 bytes a character. */
const utf8BytesPerCharMax = 4;
/** The longest key the layout builds: a catalog entry (three labels and a SKU id) or a user's order entry. */
export const keyBytesMax = 3 * labelLengthMax * utf8BytesPerCharMax + idLengthMax * utf8BytesPerCharMax + 64;
/**
 * The largest value one write carries: an idempotency record holding an order
 * (three ids, a reason-free history of at most four states, a few numbers),
 * or an adjustment with its reason; field names and JSON framing included.
 */
export const recordBytesMax = 3 * idLengthMax * utf8BytesPerCharMax + reasonLengthMax * utf8BytesPerCharMax + 1024;
/**
 * Upper bound on the bytes one write of a batch carries (key plus encoded
 * value). The batch loop uses it to keep a commit within a store's
 * `commitBytesMax` without serializing anything twice.
 */
export const writeBytesMax = keyBytesMax + recordBytesMax;
/**
 * Entries of one user for one SKU the per-user limit reads (the user's orders
 * of that SKU, cancelled and expired ones included). A user past it on a SKU
 * with a limit is refused (`per_user_limit_exceeded`): the limit cannot be
 * proven kept, and a human does not place thousands of orders of one SKU.
 */
export const userSkuOrdersScanMax = 4_096;
/** Operations a SKU writer decides and commits together. */
export const batchOpsMax = 512;
/**
 * Batches of one SKU in flight at once: decided on top of each other and
 * handed to the store before the ones ahead have landed, on a store that
 * numbers commits as it takes them (LMDB), so their fsyncs are shared. On
 * etcd one is in flight and the next waits for its revision.
 */
export const pipelineBatchesMax = 4;
/** Times a batch is re-decided after a version conflict before it fails. */
export const commitConflictRetriesMax = 8;
/** SKUs the engine holds warm in memory (each is a few hundred bytes). */
export const skusMax = 1_000_000;
/**
 * Default for --shed-event-loop-lag-ms: event-loop lag (median over one
 * window) past which mutations are shed with 503 `overloaded` before any work
 * is done on them: the process is behind on reading sockets, so accepting
 * more only adds latency to everyone.
 */
export const shedEventLoopLagMsDefault = 40;
/** Upper bound for both shedding thresholds (0 turns a signal off). */
export const shedThresholdMsMax = 60_000;
/** Window over which event-loop lag is measured; shedding is decided once per window. */
export const eventLoopLagWindowMs = 250;
/** Seconds a client is told to wait after 503 `overloaded` or `store_unavailable`. */
export const retryAfterSeconds = 1;

// ---- time ------------------------------------------------------------------

/** A reservation holds stock this long unless paid (15 minutes). */
export const reservationTtlMsDefault = 15 * 60 * 1000;
export const reservationTtlMsMin = 1_000;
export const reservationTtlMsMax = 7 * 24 * 60 * 60 * 1000;
/** Idempotency records are kept one day by default. */
export const idempotencyTtlMsDefault = 24 * 60 * 60 * 1000;
export const idempotencyTtlMsMin = 1_000;
export const idempotencyTtlMsMax = 30 * 24 * 60 * 60 * 1000;
/** How often the sweeper looks for expired reservations and idempotency records. */
export const sweepIntervalMsDefault = 1_000;
export const sweepIntervalMsMin = 10;
export const sweepIntervalMsMax = 60_000;
/** Entries one sweep handles; the rest wait for the next sweep. */
export const sweepEntriesMax = 1_000;
/** Time given to in-flight requests and batches on SIGTERM before the store closes anyway. */
export const shutdownGraceMsDefault = 10_000;

// ---- reads -----------------------------------------------------------------

export const listLimitDefault = 50;
export const listLimitMax = 500;
/** Index entries one listing request may examine while filtering, so a sparse filter stays cheap. */
export const listScanEntriesMax = 5_000;

// ---- store -----------------------------------------------------------------

/** LMDB reserves address space up front; 64 GiB of virtual space costs nothing until used. */
export const lmdbMapSizeBytesDefault = 64 * 1024 * 1024 * 1024;
/** One LMDB commit carries at most this many checks, and at most this many writes. */
export const lmdbCommitChecksMax = 2_048;
export const lmdbCommitWritesMax = 65_536;
/** One LMDB commit carries at most this many bytes of values. */
export const lmdbCommitBytesMax = 256 * 1024 * 1024;
// etcd (distributed mode). Every call to etcd has a deadline, so a dead
// cluster turns into fast errors (and an open breaker), never a pile of hangs.
/** etcd's default --max-txn-ops: compares, success ops and failure ops are each capped at this. */
export const etcdMaxTxnOpsDefault = 128;
/** `--etcd-max-txn-ops` accepts this range: the least still fits any one operation's commit. */
export const etcdMaxTxnOpsMin = 16;
export const etcdMaxTxnOpsMax = 65_536;
/** etcd's default --max-request-bytes (1.5 MiB). */
export const etcdRequestBytesMax = 1.5 * 1024 * 1024;
/**
 * Keys and values one etcd commit may carry, as `commitBytes` counts them. The
 * request also carries the namespace prefix on every key (twice for checked
 * keys), compares and protobuf framing; the rest of the 1.5 MiB is their room.
 */
export const etcdCommitBytesMax = 1024 * 1024;
/** A point read, getMany chunk or range page. */
export const etcdReadTimeoutMs = 2_000;
/** A conditional commit (one Txn), including the fsync on a quorum. */
export const etcdCommitTimeoutMs = 5_000;
/** Member list, status and alarm calls of the start-up checks and the admin status endpoint. */
export const etcdStatusTimeoutMs = 2_000;
/** Connecting to an endpoint. */
export const etcdDialTimeoutMs = 2_000;
/** A watch that lost its stream tries again after this long, growing to the max. */
export const etcdWatchBackoffMsMin = 100;
export const etcdWatchBackoffMsMax = 2_000;
/** Attempts of one call across endpoints (a dead member is skipped by the next attempt). */
export const etcdCallAttemptsMax = 3;
/** Share of the backend quota above which start-up and the status endpoint warn. */
export const etcdQuotaWarnRatio = 0.8;
/** etcd's default --quota-backend-bytes (2 GiB). */
export const etcdQuotaBytesDefault = 2 * 1024 * 1024 * 1024;
/** Endpoints one hotstock instance may be given. */
export const etcdEndpointsMax = 16;
/** The namespace prefix every hotstock key carries in etcd. */
export const etcdKeyPrefixBytesMax = 256;

// Circuit breaker around the etcd backend.
/** Consecutive failed calls that open the breaker. */
export const breakerConsecutiveFailuresDefault = 5;
/** Failure rate over the sampling window that opens the breaker (with enough calls). */
export const breakerFailureRateDefault = 0.5;
export const breakerWindowMs = 10_000;
/** Calls per second the window must see before the failure rate counts. */
export const breakerMinimumRps = 5;
/** How long the breaker stays open before one half-open probe may pass. */
export const breakerHalfOpenAfterMsDefault = 2_000;
export const breakerHalfOpenAfterMsMin = 100;
export const breakerHalfOpenAfterMsMax = 300_000;
/** After a version conflict a writer waits up to this long (randomised) before re-deciding. */
export const commitConflictBackoffMsMax = 5;

/** Check/fix scans read this many entries per range call. */
export const scanPageEntries = 1_000;

// ---- cluster (distributed mode: one writer per SKU across instances) --------

/**
 * Shards the SKUs are hashed into; each shard has one owner at a time, and a
 * SKU's writes happen only on its shard's owner. Every instance of a
 * deployment must use the same count (members announce theirs; one with
 * another count is ignored). 64 spreads evenly over a few instances (~21 each
 * of three) for 64 small keys in etcd.
 */
export const clusterShardsCount = 64;
/** Members one instance keeps track of (and keeps connections to); more are ignored. */
export const clusterMembersMax = 64;
/**
 * Default for --cluster-lease-ttl-s: an instance's shards outlive its last
 * keepalive by this long, so a dead owner's shards move after about this
 * long. etcd grants no lease shorter than 1.5 times its election timeout
 * (1.5 s by default), hence the minimum.
 */
export const clusterLeaseTtlSDefault = 5;
export const clusterLeaseTtlSMin = 2;
export const clusterLeaseTtlSMax = 60;
/** --cluster-key: at least this many characters, since it lets a caller write on any instance. */
export const clusterKeyLengthMin = 32;
/** --cluster-key takes up to this many keys (the first is sent, any is accepted), so a key rotates without downtime. */
export const clusterKeysMax = 4;
/** Operations one forwarded request carries to the owner of their SKUs. */
export const clusterForwardOpsMax = 256;
/** Forwarded requests in flight to one peer at once, each on its own connection. */
export const clusterForwardRequestsPerPeerMax = 4;
/** Operations waiting to be forwarded to one peer; past it, new ones get 503 `overloaded`. */
export const clusterForwardQueueOpsMax = 8_192;
/** The body of one forwarded request: the API's own body limit (1 MiB). */
export const clusterForwardBodyBytesMax = requestBodyBytesMax;
/**
 * Bytes one forwarded operation may take as JSON: a few ids and labels (128
 * and 64 characters, up to 4 bytes each), an idempotency key, a reason, and
 * an If-Match list of at most 256 characters.
 */
export const clusterForwardedOpBytesMax = 4 * 1024;
/** The owner's answer to one forwarded request: one result (an order or a SKU record) per operation. */
export const clusterForwardResponseBytesMax = 8 * 1024 * 1024;
/** Idle connections to a peer close after this long: before the peer's own keep-alive bound closes one under a request. */
export const clusterPeerKeepAliveMs = httpKeepAliveTimeoutMs / 2;
/** A peer that keeps failing is logged at most this often, however many requests fail. */
export const clusterForwardFailureLogIntervalMs = 1_000;
/** Cluster changes held back while the snapshot of the cluster is read at start; past it, the snapshot is read again. */
export const clusterFeedBufferChangesMax = 1_024;
/** Keys the cluster snapshot reads at most: every member and shard, twice over for stray keys. */
export const clusterSnapshotKeysMax = 2 * (clusterMembersMax + clusterShardsCount);
/** Connecting to a peer; a dead peer's address refuses at once, a vanished one times out. */
export const clusterForwardConnectTimeoutMs = 1_000;
/** A forwarded request's deadline: the owner may read and commit (each with its own deadline) before it answers. */
export const clusterForwardTimeoutMs = etcdReadTimeoutMs + etcdCommitTimeoutMs + 1_000;
/** Forwarded requests one instance serves at once; past it, 503 `overloaded`. */
export const clusterInboundRequestsMax = 64;
/** How long a request waits for its shard to get an owner (a hand-over, a start) before 503 `owner_unavailable`. */
export const clusterOwnerWaitMs = 3_000;
/** Times one request is routed again after the instance it went to had just lost the shard (and applied nothing). */
export const clusterRouteAttemptsMax = 3;
/** A shard's old owner lets its in-flight batches land for at most this long before it lets go (the fence covers the rest). */
export const clusterHandOverDrainMsMax = etcdCommitTimeoutMs + 1_000;
/** Shard acquisitions or releases sent to etcd at once. */
export const clusterShardCallsConcurrency = 8;
/** After an ownership call to etcd fails, the next try waits this long, doubling up to the max. */
export const clusterRetryBackoffMsMin = 100;
export const clusterRetryBackoffMsMax = 2_000;

// ---- migration (`hotstock migrate`) ----------------------------------------

/** Keys one migration chunk carries by default (one range read, one commit). */
export const migrateChunkKeysDefault = 1_000;
export const migrateChunkKeysMax = 10_000;
/**
 * Keys listed (keys only) per etcd call while copying; values are then read a
 * chunk at a time from ranges that hold exactly those keys. Bounds memory to
 * this many keys (at most `migrateRawKeyBytesMax` bytes each).
 */
export const migrateKeySlabKeys = 200_000;
/** Keys whose values one etcd range call reads (then split into chunks); bounded in bytes by `migrateChunkBytesMax`. */
export const migrateReadWindowKeys = 10_000;
/** Pages read from etcd ahead of the chunk being hashed and committed. */
export const migrateReadAheadPages = 2;
/** Raw chunk commits in flight at once (LMDB applies them in order and may share one fsync). */
export const migrateCommitsInFlightMax = 4;
/** A chunk is cut early once its keys and values pass this many bytes, so a page of 1.5 MiB values stays bounded. */
export const migrateChunkBytesMax = 64 * 1024 * 1024;
/** etcd's default request limit (1.5 MiB) bounds one value; a gRPC reply holds at most a chunk of them. */
export const etcdValueBytesMax = 1.5 * 1024 * 1024;
/**
 * gRPC replies up to this size are accepted (grpc-js refuses more than 4 MiB
 * unless told). A page that would be larger is read again with half the limit.
 */
export const migrateGrpcReceiveBytesMax = 256 * 1024 * 1024;
/** LMDB (lmdb-js) refuses longer keys; a longer etcd key stops a raw migration with its name. */
export const migrateRawKeyBytesMax = 1_978;
/** Records one source key may map to (`--transform`, the legacy importer): one SKU or one order. */
export const migrateRecordsPerKeyMax = 1;
/** Chunk writes beyond the records: the checkpoint and the chunk's manifest entry. */
export const migrateChunkMetaWrites = 2;
/** Watch responses queued for the follower before it pauses the watch and catches up from its checkpoint. */
export const migrateFollowQueueResponsesMax = 1_024;
/** How long a follower waits before it watches again after the watch broke (not compaction). */
export const migrateFollowRetryMs = 1_000;
/** Plain progress lines (not a terminal) are printed at most this often. */
export const migrateProgressIntervalMs = 1_000;
/** Differing keys `--verify` prints; the rest are counted. */
export const migrateVerifyKeysPrintedMax = 100;
/** etcd calls (range, status) fail after this long; a stalled server does not hang the migration. */
export const etcdCallTimeoutMs = 30_000;
// ---- watch (Server-Sent Events) ----------------------------------------------

/**
 * Stock changes kept for `Last-Event-ID` resumes. A hot SKU commits a few
 * hundred batches a second, so this is over a minute of history; an entry is
 * one serialized event (~200 bytes), so the ring holds ~4 MiB at most.
 */
export const watchHistoryEventsMax = 16_384;
/** Concurrent watchers unless --watch-subscribers-max says otherwise; each holds one socket (one fd). */
export const watchSubscribersMaxDefault = 16_384;
export const watchSubscribersMaxMax = 100_000;
/** SKUs one watcher may follow (named in ?sku= or matched by ?product=); bounds a snapshot to ~64 KiB. */
export const watchSkusMax = 256;
/**
 * A watcher whose socket has not taken what it was sent while the store
 * advanced this many revisions is dropped with reason `lagging`.
 */
export const watchLagRevisionsMax = 4_096;
/** SSE comment sent to every watcher this often: keeps proxies from idling it out, finds dead peers. */
export const watchHeartbeatIntervalMsDefault = 15_000;
export const watchHeartbeatIntervalMsMin = 100;
export const watchHeartbeatIntervalMsMax = 300_000;
/** Heartbeats in a row a watcher's socket may stay undrained before it is dropped with reason `stalled`. */
export const watchStalledHeartbeatsMax = 2;
/**
 * Watchers written to before the broadcast yields to the event loop: a slice
 * takes well under a millisecond, so a SKU writer's commit callback or next
 * batch never waits long behind a broadcast.
 */
export const watchWriteSliceSubscribers = 64;
/**
 * After a broadcast pass that kept the thread busy for D ms, the next one
 * starts no sooner than this × D later: fan-out then takes at most a third of
 * the core (1 / (1 + 2)) however many watchers there are, and reservations the
 * rest; with more watchers, each pass carries more events instead.
 */
export const watchBroadcastRestRatio = 2;
/** Events one broadcast pass carries to each watcher; later ones wait for the next pass. */
export const watchPassEventsMax = 64;
/** Bytes of history one write carries when a watcher resumes; the rest follows once the socket takes it. */
export const watchWriteBytesMax = 64 * 1024;
/** The reconnect delay advertised to EventSource clients (the SSE `retry:` field). */
export const watchClientRetryMs = 1_000;
/** A dropped watcher's socket gets this long to flush its final event before it is destroyed. */
export const watchCloseGraceMs = 5_000;
/** A `Last-Event-ID` is a store revision: a safe integer, so at most 16 digits. */
export const watchEventIdDigitsMax = 16;

// ---- cutover: mirror, moves, shadow reads (src/cutover/) --------------------

/** Writes the outbox adds to every commit it records: the entry itself. */
export const outboxWritesPerCommit = 1;
/**
 * Outbox entries the mirror worker reads in one round. Consecutive entries
 * are applied to the mirror together as far as the mirror's commit limits
 * allow; one entry is one commit of the authoritative store (up to a full
 * batch, ~1,500 writes on LMDB), so a round holds at most a few MiB.
 */
export const mirrorApplyEntriesMax = 64;
/** After a failed round the worker waits this long, doubling up to the max, before it tries again. */
export const mirrorRetryBackoffMsMin = 50;
export const mirrorRetryBackoffMsMax = 5_000;
/** A caught-up worker is woken by every recorded commit; it also looks on its own this often. */
export const mirrorIdleWaitMs = 1_000;
/**
 * Entries an outbox may hold before the service says so loudly: an error in
 * the log (again every `mirrorOutboxWarnIntervalMs`), the outbox gauge over
 * its limit, and the HotstockMirrorOutboxOverBound alert. Commits go on: the
 * mirror never slows the authoritative store, so a long mirror outage costs
 * disk (about a batch's writes per entry), which the store's own disk and
 * quota alerts watch. Moves out of that store wait for the mirror as always.
 */
export const mirrorOutboxEntriesWarn = 100_000;
export const mirrorOutboxWarnIntervalMs = 60_000;
/**
 * On a clean stop the mirror gets up to this long to apply what was recorded
 * last, so a store that holds every SKU can be left allowed to run alone
 * (cutover/standalone.ts). Within the shutdown grace period.
 */
export const mirrorStopCatchUpMs = 5_000;
/** Applied entries deleted from the outbox per trim commit (also bounded by the store's commit limits). */
export const mirrorTrimEntriesMax = 4_096;
/**
 * An etcd commit that failed without a clear outcome may still apply; its
 * outbox entry is read back this long after, and the mirror waits for the answer.
 */
export const outboxUnknownSettleMs = 2 * etcdCommitTimeoutMs;
/** SKUs a move fences, drains and flips together (one etcd transaction flips them). */
export const moveGroupSkusMax = 64;
/** A move waits until the mirror is at most this many entries behind before it fences a group. */
export const moveFenceLagEntriesMax = 256;
/** How long a move waits for the mirror to come within `moveFenceLagEntriesMax` before it gives up. */
export const movePreDrainTimeoutMs = 120_000;
/** How long a fenced group waits for the mirror to apply everything before it is released unmoved. */
export const moveDrainTimeoutMs = 30_000;
/** Attempts at one group before the move rolls back. */
export const moveGroupAttemptsMax = 3;
/** A rollback that cannot proceed (a store down) tries again after this long, until it can. */
export const moveRetryPauseMs = 1_000;
/** Moves waiting behind the running one; past it, 409 move_queue_full. */
export const movesQueuedMax = 16;
/** SKUs one move request may name explicitly (`{"skus": [...]}`). */
export const moveSkusMax = 1_000;
/** Finished moves whose records are kept (the oldest are deleted past it). */
export const movesKeptMax = 256;
/** A shadow read gives up (result `skipped`) when the mirror has not caught up within this long. */
export const shadowReadTimeoutMs = 2_000;
/** Shadow reads compared at once; past it a sampled read is skipped, never queued. */
export const shadowReadsInFlightMax = 64;
/** Mismatches kept for GET /v1/admin/shadow/mismatches, newest first. */
export const shadowMismatchesKept = 100;
/** Rounds `hotstock reconcile` re-reads a difference, waiting for the mirror each time, before it reports it. */
export const reconcileRecheckRoundsMax = 5;
/** How long one re-check round waits for the mirror to apply what was recorded before it. */
export const reconcileSettleTimeoutMs = 10_000;
/** Differences `hotstock reconcile` keeps to re-check and print; past it they are counted. */
export const reconcileDifferencesKeptMax = 10_000;
/** Differences printed; the rest are counted. */
export const reconcileDifferencesPrintedMax = 100;

// ---- observability -----------------------------------------------------------

/**
 * An `X-Request-ID` a client sends is kept when it is 1 to this many
 * characters of `requestIdPattern` (a UUID is 36, a W3C trace id 32);
 * anything else is replaced by a generated id, never echoed.
 */
export const requestIdLengthMax = 64;
/**
 * SKUs whose stock `/metrics` exports per SKU (three series each): the most
 * recently changed ones. The catalog may hold a million SKUs; every one stays
 * readable through `GET /v1/skus`, but a series per SKU would swamp Prometheus.
 */
export const metricsStockSkusMax = 50;

// ---- auth ------------------------------------------------------------------

/** API keys shorter than this are refused at start: they could be guessed. */
export const apiKeyLengthMin = 8;
/**
 * The longest key an Authorization header is read with (API and cluster keys
 * alike); a longer key could never be presented, so it is refused at start.
 */
export const bearerTokenLengthMax = 512;
export const apiKeysMax = 1_000;
/** A --keys-file larger than this is refused: it holds at most apiKeysMax short entries. */
export const keysFileBytesMax = 1024 * 1024;
/** --cursor-secret: at least this many characters, so the cursor key cannot be guessed. */
export const cursorSecretLengthMin = 32;

// ---- quotas ----------------------------------------------------------------

/** --quota-rps: requests a second one API key may sustain (0, the default, means no quota). */
export const quotaRpsDefault = 0;
export const quotaRpsMax = 1_000_000;
/** --quota-burst: requests one API key may send at once on top of its rate (0: one second's worth). */
export const quotaBurstMax = 10_000_000;
/**
 * --user-attempts-per-minute: reservation attempts one user may make on one
 * SKU in a minute, refilled evenly (one a second). No person clicks "buy"
 * once a second for a minute; a script does.
 */
export const userAttemptsPerMinuteDefault = 60;
export const userAttemptsPerMinuteMax = 60_000;
/**
 * (user, SKU) buckets kept at once. A bucket untouched for a minute is full
 * again and no different from a fresh one; past this bound the oldest created
 * hundredth is dropped. About 150 bytes each: ~30 MiB at the bound.
 */
export const userAttemptBucketsMax = 200_000;

assert.ok(
  '/v1/watch?sku='.length + watchSkuParamLengthMax + '&lastEventId='.length + watchEventIdDigitsMax <=
    requestUriBytesMax,
  'a watch list of the documented maximum length fits the URI bound',
);
assert.ok(cursorLengthMax < requestUriBytesMax, 'a cursor fits the URI bound');
assert.ok(userAttemptsPerMinuteDefault <= userAttemptsPerMinuteMax);
assert.ok(batchOpsMax <= skuQueueDepthMax, 'a batch is taken from one queue');
assert.ok(pipelineBatchesMax >= 2, 'a batch can be decided while the one ahead commits');
assert.ok(skuQueueDepthMax >= 4_096, 'the API promises a SKU queue holds at least 4096 waiting requests');
assert.ok(skuQueueDepthMax <= engineQueueDepthMax, 'one SKU cannot exceed the engine bound');
assert.ok(batchRequestItemsMax <= engineQueueDepthMax, 'a full batch request must be admissible');
assert.ok(
  batchOpsMax * operationCosts.reserve.writes + operationCosts.skuRecord.writes <= lmdbCommitWritesMax &&
    batchOpsMax * operationCosts.reserve.checks + operationCosts.skuRecord.checks <= lmdbCommitChecksMax,
  'a full batch of reservations fits one LMDB commit',
);
assert.ok(batchOpsMax * writeBytesMax * operationCosts.reserve.writes <= lmdbCommitBytesMax);
assert.ok(etcdCommitBytesMax < etcdRequestBytesMax, 'an etcd commit leaves room for prefixes and framing');
assert.ok(
  Object.values(operationCosts).every(
    (cost) =>
      cost.writes + operationCosts.idempotency.writes + operationCosts.skuRecord.writes <= etcdMaxTxnOpsMin &&
      (cost.writes + operationCosts.idempotency.writes + operationCosts.skuRecord.writes) * writeBytesMax <=
        etcdCommitBytesMax,
  ),
  'any one operation fits the smallest etcd transaction hotstock accepts',
);
assert.ok(breakerHalfOpenAfterMsDefault >= breakerHalfOpenAfterMsMin);
assert.ok(
  clusterForwardTimeoutMs > etcdReadTimeoutMs + etcdCommitTimeoutMs,
  'a forward outlasts the read and the commit the owner may wait for, so a slow owner is not taken for a dead one',
);
assert.ok(
  clusterForwardedOpBytesMax + 64 <= clusterForwardBodyBytesMax,
  'one forwarded operation always fits a request',
);
assert.ok(
  clusterForwardResponseBytesMax >= clusterForwardOpsMax * (recordBytesMax + 1024),
  'an answer holds a record per operation',
);
assert.ok(
  clusterForwardQueueOpsMax >= clusterForwardOpsMax * clusterForwardRequestsPerPeerMax,
  'a peer queue holds the requests in flight to it at least once over',
);
assert.ok(clusterLeaseTtlSDefault >= clusterLeaseTtlSMin && clusterLeaseTtlSDefault <= clusterLeaseTtlSMax);
assert.ok(clusterHandOverDrainMsMax > etcdCommitTimeoutMs, 'a hand-over lets a commit in flight land');
assert.ok(clusterOwnerWaitMs < httpRequestTimeoutMs, 'a request waiting for an owner is answered before it times out');
assert.ok(listLimitMax <= listScanEntriesMax, 'a listing page is reachable within the scan bound');
assert.ok(reservationTtlMsDefault >= reservationTtlMsMin && reservationTtlMsDefault <= reservationTtlMsMax);
assert.ok(idempotencyTtlMsDefault >= idempotencyTtlMsMin && idempotencyTtlMsDefault <= idempotencyTtlMsMax);
assert.ok(orderQtyMax <= stockUnitsMax);
assert.ok(
  migrateChunkKeysMax * migrateRecordsPerKeyMax * (operationCosts.reserve.writes + operationCosts.skuRecord.writes) +
    migrateChunkMetaWrites <=
    lmdbCommitWritesMax,
  'a full migration chunk of records (an order and its index entries, or a SKU and its catalog entry) fits one LMDB commit',
);
assert.ok(migrateChunkKeysDefault <= migrateChunkKeysMax);
assert.ok(migrateChunkKeysMax <= migrateKeySlabKeys, 'a slab of keys holds at least one chunk');
assert.ok(migrateReadWindowKeys <= migrateKeySlabKeys, 'a slab of keys holds at least one read window');
assert.ok(migrateChunkBytesMax >= 2 * etcdValueBytesMax, 'a chunk holds at least one largest value');
assert.ok(migrateGrpcReceiveBytesMax >= 2 * migrateChunkBytesMax, 'a reply holds at least a full chunk');
assert.ok(watchPassEventsMax <= watchHistoryEventsMax, 'a pass reads its events from the history ring');
assert.ok(watchLagRevisionsMax <= watchHistoryEventsMax, 'a dropped laggard can usually still resume from history');
assert.ok(watchSubscribersMaxDefault <= watchSubscribersMaxMax);
assert.ok(
  watchHeartbeatIntervalMsDefault >= watchHeartbeatIntervalMsMin &&
    watchHeartbeatIntervalMsDefault <= watchHeartbeatIntervalMsMax,
);
assert.ok(
  Object.values(operationCosts).every(
    (cost) =>
      cost.writes + operationCosts.idempotency.writes + operationCosts.skuRecord.writes + outboxWritesPerCommit <=
      etcdMaxTxnOpsMin,
  ),
  'any one operation and its outbox entry fit the smallest etcd transaction hotstock accepts',
);
assert.ok(
  moveGroupSkusMax + 1 <= etcdMaxTxnOpsDefault,
  "a group's routes and the move record fit one etcd transaction",
);
assert.ok(
  moveFenceLagEntriesMax >= mirrorApplyEntriesMax,
  'a fenced group waits for at most a few rounds of the mirror',
);
assert.ok(mirrorRetryBackoffMsMin < mirrorRetryBackoffMsMax);
assert.ok(mirrorStopCatchUpMs < shutdownGraceMsDefault, "the mirror's catch-up at a stop fits the grace period");
assert.ok(reconcileDifferencesPrintedMax <= reconcileDifferencesKeptMax, 'what is printed was kept');
