public import AsyncHTTPClient
import DeerFlowCore
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization

/// Ships log lines to Elasticsearch with the `_bulk` API: the `elasticsearch` handler of
/// `logging.yaml`.
///
/// - ``write(_:record:)`` never waits: it appends the line to a bounded buffer (`buffer_size`
///   lines). When the buffer is full the oldest line is dropped and counted (``droppedLines``,
///   `onDropped("elasticsearch", n)`), so logging goes on however long Elasticsearch is away.
/// - ``run()``, the body of a swift-service-lifecycle `Service`, sends batches of up to
///   `batch_size` lines when a batch is full or `flush_interval` has passed:
///   `POST {host}/_bulk`, `Content-Type: application/x-ndjson`, for every line an action line
///   `{"index":{"_index":"deerflow-logs-2024.06.01"}}` (the index of the record's UTC day, see
///   ``LoggingConfigFile/Elasticsearch/indexName(for:)``) and the line itself as the document,
///   each followed by a newline. Basic auth (`username`/`password`) or `Authorization: ApiKey`
///   (`api_key`) when configured.
/// - Answers: 2xx with `"errors": false` ships the batch. With `"errors": true` the lines whose
///   item status is 429 or 5xx are sent again; the others (a mapping error, 400) are dropped and
///   counted, each kind of error reported once to standard error. 429, 5xx and connection
///   failures send the whole batch again after an exponential backoff (100 ms doubling to 30 s,
///   with jitter), trying the next of `hosts` each time. Other statuses (401, 403, 404, 413) drop
///   the batch, reported once per status: sending it again would not help.
/// - Shutdown: at graceful shutdown ``run()`` lets a request in flight be answered, then
///   ``flush(deadline:)`` sends what is buffered; all within ``shutdownDeadline`` (default 5 s)
///   from the shutdown: a request still unanswered then is cut short, and what is left is dropped
///   and counted. When its task is cancelled ``run()`` cuts a request in flight short at once (its
///   lines are sent again) and still flushes, within the same deadline.
///
/// Problems are written to standard error, never logged through swift-log (that would feed the
/// sink its own failures): an outage once when it starts and once when shipping resumes, with
/// the number of lines dropped meanwhile.
///
/// Lines are counted as dropped when they leave the buffer unshipped; a line that was in a request
/// when the buffer overflowed is counted once that request has failed (and as shipped if it
/// succeeded). Lines are sent at least once: a request whose answer is lost (a timeout, a
/// cancellation) is sent again, and Elasticsearch may then index those lines twice.
///
/// Give the sink its own `HTTPClient` made with ``httpClientConfiguration`` so that a host that
/// refuses connections fails at once and the next host is tried (the default `.shared` client
/// retries connecting until the request times out), and put it early in the service group so that
/// it stops after the services whose last lines it ships.
///
/// ```swift
/// let config = try LoggingConfigFile.load(path: "config/logging.yaml", environment: environment)
/// let onDropped: DroppedLinesHandler = { sink, count in droppedLines.increment(by: count) }   // deerflow_log_lines_dropped_total{handler=sink}
/// let client = HTTPClient(configuration: ElasticsearchSink.httpClientConfiguration)
/// var services: [any Service] = []
/// var extraSinks: [any LogSink] = []
/// if let settings = config.elasticsearch, settings.enabled {
///     let elasticsearch = ElasticsearchSink(configuration: settings, httpClient: client, onDropped: onDropped)
///     services.append(elasticsearch)
///     extraSinks.append(elasticsearch)
/// }
/// let backend = try LoggingBackend(configuration: config, extraSinks: extraSinks, onDropped: onDropped)
/// LoggingSystem.bootstrap(backend.makeHandler)
/// let group = ServiceGroup(services: services + [scheduler, api], logger: logger)
/// try await group.run()
/// try await client.shutdown()
/// ```
public final class ElasticsearchSink: LogSink, Service {
    /// `elasticsearch`.
    public let name: String
    public let level: Logger.Level?
    /// Always JSON, whatever `format` the file gives other handlers: the document of a line is its JSON object.
    public let format = LogFormat.json
    /// The handler's settings (hosts, index, batch size, flush interval, buffer size, credentials).
    public let configuration: LoggingConfigFile.Elasticsearch
    /// Longest time one `_bulk` request may take.
    public let requestTimeout: Duration
    /// How long ``run()`` may take after a shutdown (finishing a request, flushing) before it
    /// drops what is left.
    public let shutdownDeadline: Duration

    let batchSize: Int
    let bufferSize: Int
    let flushInterval: Duration
    let backoff: Backoff
    /// `{host}/_bulk` for every host.
    let bulkURLs: [String]
    private let authorization: String?
    private let httpClient: HTTPClient
    private let onDropped: DroppedLinesHandler
    private let report: @Sendable (String) -> Void
    private let state = Mutex(State())
    private let wakeup = Wakeup()

    /// Largest answer read; a longer one is taken as unreadable.
    static let maximumResponseBytes = 32 * 1024 * 1024

    /// An `HTTPClient` configuration for the sink's own client: a host that refuses connections
    /// fails the request at once (so the next host is tried) instead of being retried until the
    /// request times out; connecting times out after 2 s; requests are not traced.
    ///
    /// ```swift
    /// let client = HTTPClient(configuration: ElasticsearchSink.httpClientConfiguration)
    /// defer { try? await client.shutdown() }   // after the service group has returned
    /// ```
    public static var httpClientConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(2)))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.tracing.tracer = nil
        return configuration
    }

    /// - Parameters:
    ///   - configuration: The `handlers.elasticsearch` section (`enabled` is the caller's to check).
    ///   - httpClient: The client to send with. Default `.shared`; better one made with ``httpClientConfiguration``.
    ///   - requestTimeout: Longest time one `_bulk` request may take. Default 10 s.
    ///   - shutdownDeadline: How long ``run()`` may take after a shutdown. Default 5 s.
    ///   - onDropped: Called with `("elasticsearch", n)` when `n` lines are dropped.
    public convenience init(
        configuration: LoggingConfigFile.Elasticsearch,
        httpClient: HTTPClient = .shared,
        requestTimeout: Duration = .seconds(10),
        shutdownDeadline: Duration = .seconds(5),
        onDropped: @escaping DroppedLinesHandler = { _, _ in }
    ) {
        self.init(
            configuration: configuration, httpClient: httpClient, requestTimeout: requestTimeout, shutdownDeadline: shutdownDeadline,
            backoff: Backoff(), onDropped: onDropped, report: FileDescriptorIO.standardError)
    }

    init(
        configuration: LoggingConfigFile.Elasticsearch, httpClient: HTTPClient, requestTimeout: Duration, shutdownDeadline: Duration,
        backoff: Backoff, name: String = "elasticsearch", onDropped: @escaping DroppedLinesHandler,
        report: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.requestTimeout = requestTimeout > .zero ? requestTimeout : .seconds(10)
        self.shutdownDeadline = max(shutdownDeadline, .zero)
        self.backoff = backoff
        self.name = name
        self.onDropped = onDropped
        self.report = report
        level = configuration.level
        batchSize = max(1, configuration.batchSize)
        bufferSize = max(batchSize, configuration.bufferSize)
        flushInterval = configuration.flushInterval > .zero ? configuration.flushInterval : .seconds(5)
        bulkURLs = configuration.hosts.map { host in
            var base = host.absoluteString
            while base.hasSuffix("/") { base.removeLast() }
            return base + "/_bulk"
        }
        if let apiKey = configuration.apiKey {
            authorization = "ApiKey " + apiKey
        } else if let username = configuration.username {
            authorization = "Basic " + Data("\(username):\(configuration.password ?? "")".utf8).base64EncodedString()
        } else {
            authorization = nil
        }
    }

    // MARK: Counters

    /// Lines dropped since the sink was made: the buffer overflowed, Elasticsearch rejected them,
    /// or the shutdown deadline passed.
    public var droppedLines: Int { state.withLock { $0.dropped } }

    /// Lines Elasticsearch has accepted since the sink was made.
    public var shippedLines: Int { state.withLock { $0.shipped } }

    /// Lines held now: waiting, or in a request not yet answered.
    var bufferedLines: Int { state.withLock { $0.held } }

    // MARK: LogSink

    public func write(_ line: String, record: LogRecord) {
        let document = BulkRequest.singleLine(line)
        let (droppedNow, firstOverflow, batchFull) = state.withLock { state -> (Int, Bool, Bool) in
            let action = state.action(for: record.timestamp, configuration: configuration)
            var droppedNow = 0
            var firstOverflow = false
            if state.held >= bufferSize {
                droppedNow = state.evictOldest()
                firstOverflow = !state.overflowReported
                state.overflowReported = true
            }
            state.queue.append(BulkEntry(action: action, document: document))
            return (droppedNow, firstOverflow, state.queue.count == batchSize)
        }
        if batchFull { wakeup.signal() }
        if firstOverflow {
            report(
                "deerflow: the Elasticsearch log buffer is full (buffer_size \(bufferSize)); dropping the oldest lines "
                    + "(counted in deerflow_log_lines_dropped_total{handler=\"\(name)\"}); this is reported once")
        }
        if droppedNow > 0 { onDropped(name, droppedNow) }
    }

    /// Does nothing: batches are sent by ``run()`` when full or every `flush_interval`
    /// (``LoggingBackend`` calls this every second, which would defeat batching).
    public func flush() {}

    /// Does nothing: ``run()`` flushes at shutdown, within ``shutdownDeadline``.
    public func close() {}

    // MARK: Service

    /// Ships batches until graceful shutdown or cancellation, then flushes, and returns within
    /// ``shutdownDeadline`` of the shutdown. Never throws.
    ///
    /// ```swift
    /// let group = ServiceGroup(services: [elasticsearchSink, scheduler], logger: logger)
    /// try await group.run()
    /// ```
    public func run() async {
        if bulkURLs.isEmpty {
            report("deerflow: the Elasticsearch log handler has no hosts; its lines are dropped (counted in deerflow_log_lines_dropped_total)")
        }
        state.withLock { $0.stopping = false }
        let end = await withTaskGroup(of: Void.self) { group -> ContinuousClock.Instant in
            group.addTask { await self.ship() }
            // Returns at graceful shutdown; throws at once when cancelled (the loop is cancelled too).
            try? await gracefulShutdown()
            let end = ContinuousClock.now + shutdownDeadline
            // The loop ends after its current request, which keeps the lines of a request that
            // Elasticsearch is answering from being sent twice; a request that outlives the
            // deadline is cut short.
            stop()
            group.addTask { try? await Sleep.until(end) }
            _ = await group.next()
            group.cancelAll()
            return end
        }
        // The last lines matter most when the group is cancelled because a service failed: the
        // final flush runs in a task of its own, which our cancellation does not reach, bounded by
        // the deadline.
        let deadline = "the shutdown deadline (\(DurationText.format(shutdownDeadline)))"
        await Task.detached { await self.flush(until: end, deadline: deadline) }.value
    }

    /// Ends the loop of ``run()`` at its next wait, or once its current request is answered.
    private func stop() {
        state.withLock { $0.stopping = true }
        wakeup.signal()
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    /// Sends the buffered lines, and those written meanwhile, until none is left or `deadline` has
    /// passed (with backoff between failed requests); then drops and counts what is still
    /// buffered. ``run()`` does this at shutdown. In a cancelled task it drops them at once.
    ///
    /// In async code `await sink.flush()` calls this with the default deadline; synchronous code
    /// (and ``LoggingBackend``, through ``LogSink``) gets ``flush()``, which does nothing.
    ///
    /// ```swift
    /// await sink.flush(deadline: .seconds(5))
    /// ```
    ///
    /// - Parameter deadline: How long to try. Default 5 s.
    public func flush(deadline: Duration = .seconds(5)) async {
        await flush(until: ContinuousClock.now + deadline, deadline: DurationText.format(deadline))
    }

    private func flush(until end: ContinuousClock.Instant, deadline: String) async {
        var failures = 0
        while !Task.isCancelled {
            let remaining = end - ContinuousClock.now
            guard remaining > .zero, let batch = takeBatch(minimum: 1) else { break }
            if await send(batch, timeout: min(requestTimeout, remaining)) {
                failures += 1
                let pause = min(backoff.delay(afterFailures: failures), end - ContinuousClock.now)
                if pause > .zero { try? await Sleep.for(pause) }
            } else {
                failures = 0
            }
        }
        let left = state.withLock { state -> Int in
            let count = state.queue.count
            state.queue.removeAll()
            state.dropped += count
            return count
        }
        if left > 0 {
            report(
                "deerflow: \(left) log line(s) could not be shipped to Elasticsearch within \(deadline); "
                    + "dropped (counted in deerflow_log_lines_dropped_total{handler=\"\(name)\"})")
            onDropped(name, left)
        }
    }

    // MARK: Shipping

    /// The loop of ``run()``: a full batch goes at once, anything buffered goes every
    /// `flush_interval`, a failed batch goes again after a backoff. Returns when cancelled or
    /// stopped.
    func ship() async {
        var nextFlush = ContinuousClock.now + flushInterval
        /// Lines that were buffered at the last `flush_interval` tick and still have to go.
        var due = 0
        var failures = 0
        var retrying = false
        while !Task.isCancelled, !stopping {
            if ContinuousClock.now >= nextFlush {
                due = state.withLock { $0.queue.count }
                nextFlush = ContinuousClock.now + flushInterval
            }
            guard let batch = takeBatch(minimum: retrying || due > 0 ? 1 : batchSize) else {
                due = 0
                retrying = false
                await wakeup.wait(until: nextFlush)
                continue
            }
            due = max(0, due - batch.entries.count)
            if await send(batch, timeout: requestTimeout) {
                failures += 1
                retrying = true
                // Lines filling a batch wake the wait too: wait out the backoff unless stopping.
                let end = ContinuousClock.now + backoff.delay(afterFailures: failures)
                while !Task.isCancelled, !stopping, ContinuousClock.now < end { await wakeup.wait(until: end) }
            } else {
                failures = 0
                retrying = false
            }
        }
    }

    /// Takes up to `batch_size` of the oldest buffered lines if at least `minimum` are buffered.
    func takeBatch(minimum: Int) -> Batch? {
        state.withLock { state in
            guard state.queue.count >= max(1, minimum), !bulkURLs.isEmpty else { return nil }
            let count = min(batchSize, state.queue.count)
            var entries: [BulkEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count { entries.append(state.queue.removeFirst()) }
            let id = state.nextBatchID
            state.nextBatchID += 1
            state.inFlight.append(State.InFlight(id: id, count: count))
            return Batch(id: id, entries: entries, host: state.host % bulkURLs.count)
        }
    }

    /// Sends one batch and settles its lines: shipped, dropped, or back at the front of the buffer.
    /// Returns true when the next request should wait for a backoff.
    func send(_ batch: Batch, timeout: Duration) async -> Bool {
        let url = bulkURLs[batch.host]
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-ndjson")
        request.headers.add(name: "User-Agent", value: "DeerFlow")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.body = .bytes(BulkRequest.body(batch.entries))
        let status: Int
        var body = ByteBuffer()
        var truncated = false
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(max(1, Self.nanoseconds(timeout))))
            status = Int(response.status.code)
            for try await chunk in response.body {
                if body.readableBytes + chunk.readableBytes <= Self.maximumResponseBytes {
                    body.writeImmutableBuffer(chunk)
                } else {
                    truncated = true
                }
            }
        } catch {
            // Cut short by a shutdown: the final flush sends the lines again, to the same host.
            let cancelled = Task.isCancelled
            settle(batch, { _ in .retry }, rotateFrom: cancelled ? nil : batch.host)
            if !cancelled { failed(host: url, reason: Self.describe(error)) }
            return true
        }
        switch status {
        case 200..<300:
            let answer = truncated ? .unreadable("answer longer than \(Self.maximumResponseBytes) bytes") : BulkResponse.parse(body)
            var rejected: [String: (count: Int, reason: String)] = [:]
            var retried: [String: (count: Int, reason: String)] = [:]
            var outcomes: [Outcome] = []
            switch answer {
            case .allShipped:
                break
            case .unreadable(let why):
                // The request was accepted; sending it again could index every line twice.
                reportOnce(kind: "unreadable", "deerflow: unreadable answer from Elasticsearch \(url) (\(why)); taking the lines as shipped")
            case .items(let items):
                outcomes.reserveCapacity(batch.entries.count)
                for index in batch.entries.indices {
                    let item = index < items.count ? items[index] : .rejected(kind: "malformed_response", reason: "no item for this line")
                    switch item {
                    case .shipped:
                        outcomes.append(.shipped)
                    case .retry(let kind, let reason):
                        outcomes.append(.retry)
                        retried[kind, default: (0, reason)].count += 1
                    case .rejected(let kind, let reason):
                        outcomes.append(.rejected)
                        rejected[kind, default: (0, reason)].count += 1
                    }
                }
            }
            recovered(host: url)
            settle(batch, { outcomes.isEmpty ? .shipped : outcomes[$0] }, rotateFrom: nil, answered: true)
            for (kind, value) in rejected.sorted(by: { $0.key < $1.key }) {
                reportOnce(
                    kind: "rejected " + kind,
                    "deerflow: Elasticsearch rejected \(value.count) log line(s): \(kind)\(Self.reasonText(value.reason)); dropping such lines "
                        + "(counted in deerflow_log_lines_dropped_total{handler=\"\(name)\"}); further rejections of this kind are not reported")
            }
            for (kind, value) in retried.sorted(by: { $0.key < $1.key }) {
                reportOnce(
                    kind: "retried " + kind,
                    "deerflow: Elasticsearch could not take \(value.count) log line(s) now: \(kind)\(Self.reasonText(value.reason)); "
                        + "sending them again with backoff; further answers of this kind are not reported")
            }
            return !retried.isEmpty
        case 429, 500...:
            settle(batch, { _ in .retry }, rotateFrom: batch.host)
            failed(host: url, reason: "HTTP \(status)\(Self.bodyText(body))")
            return true
        default:
            settle(batch, { _ in .rejected }, rotateFrom: nil, answered: true)
            let hint: String
            switch status {
            case 401, 403: hint = "check username and password, or api_key"
            case 404: hint = "check that hosts are Elasticsearch base URLs"
            case 413: hint = "lower batch_size or raise http.max_content_length"
            default: hint = "sending them again would not help"
            }
            reportOnce(
                kind: "HTTP \(status)",
                "deerflow: Elasticsearch \(url) answered HTTP \(status)\(Self.bodyText(body)) (\(hint)); dropping the log lines of such requests "
                    + "(counted in deerflow_log_lines_dropped_total{handler=\"\(name)\"}); further answers of this kind are not reported")
            return false
        }
    }

    /// Settles a batch's lines and tells `onDropped` about those dropped; lines evicted while the
    /// request was in flight count as dropped unless shipped. Moves on to the next host when
    /// `rotateFrom` is the current one. `answered`: Elasticsearch answered with 2xx or a status
    /// that is not retried (the mark for the count of an outage's dropped lines).
    private func settle(_ batch: Batch, _ outcome: (Int) -> Outcome, rotateFrom host: Int?, answered: Bool = false) {
        let dropped = state.withLock { state -> Int in
            if let host, state.host % bulkURLs.count == host { state.host = (host + 1) % bulkURLs.count }
            guard let position = state.inFlight.firstIndex(where: { $0.id == batch.id }) else { return 0 }
            let evicted = state.inFlight.remove(at: position).evicted
            var dropped = 0
            var again: [BulkEntry] = []
            for index in batch.entries.indices {
                switch outcome(index) {
                case .shipped:
                    state.shipped += 1
                case .rejected:
                    dropped += 1
                case .retry:
                    if index < evicted { dropped += 1 } else { again.append(batch.entries[index]) }
                }
            }
            for entry in again.reversed() { state.queue.prepend(entry) }
            state.dropped += dropped
            if answered { state.droppedAtAnswer = state.dropped }
            return dropped
        }
        if dropped > 0 { onDropped(name, dropped) }
    }

    /// A request failed as a whole: reported once per outage.
    private func failed(host: String, reason: String) {
        let first = state.withLock { state -> Bool in
            guard !state.failing else { return false }
            state.failing = true
            return true
        }
        guard first else { return }
        let others = bulkURLs.count > 1 ? " and the other hosts" : ""
        report(
            "deerflow: cannot ship log lines to Elasticsearch \(host): \(reason); retrying with backoff\(others), keeping the newest "
                + "\(bufferSize) lines (older ones are dropped and counted in deerflow_log_lines_dropped_total{handler=\"\(name)\"})")
    }

    /// A request was answered with 2xx: reports the end of an outage, with the lines dropped since
    /// the last answer before it.
    private func recovered(host: String) {
        let dropped = state.withLock { state -> Int? in
            guard state.failing else { return nil }
            state.failing = false
            return state.dropped - state.droppedAtAnswer
        }
        guard let dropped else { return }
        report("deerflow: shipping log lines to Elasticsearch \(host) again; \(dropped) line(s) dropped meanwhile")
    }

    private func reportOnce(kind: String, _ message: String) {
        let first = state.withLock { state -> Bool in
            guard state.reportedKinds.count < 256 else { return false }
            return state.reportedKinds.insert(kind).inserted
        }
        if first { report(message) }
    }

    private static func reasonText(_ reason: String) -> String {
        let line = reason.replacingOccurrences(of: "\n", with: " ")
        if line.isEmpty { return "" }
        return " (" + (line.count > 300 ? line.prefix(300) + "..." : line) + ")"
    }

    private static func bodyText(_ body: ByteBuffer) -> String {
        let text = (body.getString(at: body.readerIndex, length: min(body.readableBytes, 300)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ")
        return text.isEmpty ? "" : ": " + text
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout { return "no answer in time" }
            if error == .connectTimeout { return "connecting timed out" }
        }
        return "\(error)"
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : whole &+ attoseconds / 1_000_000_000
    }

    // MARK: State

    /// Lines taken from the buffer for one request.
    struct Batch: Sendable {
        var id: Int
        var entries: [BulkEntry]
        /// Index into ``bulkURLs``.
        var host: Int
    }

    enum Outcome {
        case shipped
        case rejected
        case retry
    }

    struct State {
        /// A batch whose request has not been answered yet.
        struct InFlight {
            var id: Int
            var count: Int
            /// Its oldest lines that the buffer gave up while the request was in flight: dropped
            /// unless the request ships them.
            var evicted = 0
        }

        /// Lines waiting, oldest first.
        var queue = CircularBuffer<BulkEntry>()
        /// Batches in requests, oldest first.
        var inFlight: [InFlight] = []
        var nextBatchID = 0
        var dropped = 0
        var shipped = 0
        /// The host to send to, an index into ``bulkURLs`` (modulo their count).
        var host = 0
        /// The action line of the last record's UTC day: days change rarely.
        var day = Int.min
        var action = ""
        var failing = false
        /// ``run()`` is shutting down: its loop ends.
        var stopping = false
        /// ``dropped`` after the last request Elasticsearch answered.
        var droppedAtAnswer = 0
        var overflowReported = false
        var reportedKinds: Set<String> = []

        /// Lines the buffer holds: waiting, and in requests unless given up.
        var held: Int {
            var count = queue.count
            for batch in inFlight { count += batch.count - batch.evicted }
            return count
        }

        /// Makes room for one line: gives up the oldest line held. Returns 1 when a waiting line
        /// was dropped, 0 when a line in flight was given up (counted when its request ends).
        mutating func evictOldest() -> Int {
            if let position = inFlight.firstIndex(where: { $0.evicted < $0.count }) {
                inFlight[position].evicted += 1
                return 0
            }
            guard !queue.isEmpty else { return 0 }
            queue.removeFirst()
            dropped += 1
            return 1
        }

        mutating func action(for date: Date, configuration: LoggingConfigFile.Elasticsearch) -> String {
            let day = Int((date.timeIntervalSince1970 / 86400).rounded(.down))
            if day != self.day {
                self.day = day
                action = BulkRequest.actionLine(index: configuration.indexName(for: date))
            }
            return action
        }
    }
}
