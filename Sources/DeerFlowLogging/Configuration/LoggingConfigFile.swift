public import DeerFlowCore
public import Foundation
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a sink writes a record: one JSON object per line, or a line for people at a terminal.
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    /// `{"timestamp":"2024-06-01T12:00:00.123Z","level":"info","logger":"deerflow","message":"...","run_id":"..."}`
    case json
    /// `2024-06-01T12:00:00.123Z INFO [deerflow] message run_id=...`
    case text
}

/// Settings of `logging.yaml`, as the monitoring chapter writes it.
///
/// ```yaml
/// logging:
///   level: INFO                 # TRACE, DEBUG, INFO, NOTICE, WARNING (WARN), ERROR, CRITICAL; any case
///   format: json                # json | text; default json
///   handlers:                   # absent: a console handler only; present: only the handlers listed
///     console:
///       enabled: true           # default true for every handler that is listed
///       level: INFO             # default: whatever the logger lets through
///       format: text            # default: logging.format
///     file:
///       path: /var/log/deerflow/app.log   # required; its directory is created
///       rotation: daily         # daily (default) | size
///       max_size: 100MB         # rotation: size only; B, KB, MB, GB (1024-based); default 100MB
///       retention: 30d          # rotated files older than this are deleted; default 30d
///       max_files: 10           # optional: keep at most this many rotated files
///     elasticsearch:
///       hosts: [http://elasticsearch:9200]   # required; http or https URLs
///       index: deerflow-logs-{date}          # default; {date} becomes 2024.06.01 (UTC)
///       batch_size: 500         # default 500 lines per _bulk request
///       flush_interval: 5s      # default 5s
///       buffer_size: 10000      # default 10000 lines kept while Elasticsearch is down
///       username: deerflow      # with password; or api_key
///       password: ${ES_PASSWORD}
///   task_output: true           # shell tasks' output lines also go to these handlers (default true)
///   task_output_lines: 10000    # at most this many lines per attempt; the rest are counted as dropped
///   filters:
///     - name: sensitive_data
///       action: redact          # the only action
///       patterns: ["password", "api_key", "secret"]   # see ``Redactor``
/// ```
///
/// `${VAR}` and `${VAR:-default}` in values are replaced from the environment; an unset variable
/// without default is an error naming it. Every problem is reported with file, line and key.
public struct LoggingConfigFile: Sendable, Hashable {
    /// `handlers.console`: lines to standard output.
    public struct Console: Sendable, Hashable {
        public var enabled: Bool = true
        /// Minimum level of this handler; nil: every record the logger lets through.
        public var level: Logger.Level?
        /// nil: the file's `format`.
        public var format: LogFormat?

        public init(enabled: Bool = true, level: Logger.Level? = nil, format: LogFormat? = nil) {
            self.enabled = enabled
            self.level = level
            self.format = format
        }
    }

    /// `handlers.file`: a file, rotated daily or by size, with old files deleted.
    public struct File: Sendable, Hashable {
        /// When the active file is renamed and a new one started.
        public enum Rotation: Sendable, Hashable {
            /// At midnight UTC: `app.log` becomes `app-2024-06-01.log`.
            case daily
            /// When the file would grow past `maxBytes`: `app.log` becomes `app-2024-06-01T12-00-00.123Z.log`.
            case size(maxBytes: Int)
        }

        public var enabled: Bool = true
        public var level: Logger.Level?
        public var format: LogFormat?
        /// Path of the active file (`/var/log/deerflow/app.log`).
        public var path: String
        public var rotation: Rotation = .daily
        /// Rotated files older than this are deleted; nil keeps them all. Default 30 days.
        public var retention: Duration? = .seconds(30 * 86400)
        /// At most this many rotated files are kept (the newest); nil: no limit.
        public var maxFiles: Int?

        public init(
            path: String, enabled: Bool = true, level: Logger.Level? = nil, format: LogFormat? = nil,
            rotation: Rotation = .daily, retention: Duration? = .seconds(30 * 86400), maxFiles: Int? = nil
        ) {
            self.path = path
            self.enabled = enabled
            self.level = level
            self.format = format
            self.rotation = rotation
            self.retention = retention
            self.maxFiles = maxFiles
        }
    }

    /// `handlers.elasticsearch`: batched `_bulk` shipping. Parsed here; the sink lives elsewhere.
    public struct Elasticsearch: Sendable, Hashable {
        public var enabled: Bool = true
        public var level: Logger.Level?
        /// Base URLs of the nodes (`http://elasticsearch:9200`).
        public var hosts: [URL]
        /// Index name; `{date}` is replaced by the record's UTC date as `2024.06.01`.
        public var index: String = "deerflow-logs-{date}"
        /// Lines per `_bulk` request. Default 500.
        public var batchSize: Int = 500
        /// Longest time a line waits before being sent. Default 5 s.
        public var flushInterval: Duration = .seconds(5)
        /// Lines kept while Elasticsearch is unreachable; older lines are dropped and counted. Default 10000.
        public var bufferSize: Int = 10000
        public var username: String?
        public var password: String?
        public var apiKey: String?

        public init(hosts: [URL], index: String = "deerflow-logs-{date}") {
            self.hosts = hosts
            self.index = index
        }

        /// The index for a record written at `date`: `deerflow-logs-{date}` → `deerflow-logs-2024.06.01`.
        public func indexName(for date: Date) -> String {
            guard index.contains("{date}") else { return index }
            let day = Timestamp.rfc3339(date).prefix(10).replacingOccurrences(of: "-", with: ".")
            return index.replacingOccurrences(of: "{date}", with: day)
        }
    }

    /// A `filters` entry.
    public struct Filter: Sendable, Hashable {
        public enum Action: String, Sendable, Hashable, CaseIterable { case redact }
        public var name: String
        public var action: Action
        /// Patterns as written; see ``Redactor`` for their meaning.
        public var patterns: [String]

        public init(name: String, action: Action = .redact, patterns: [String]) {
            self.name = name
            self.action = action
            self.patterns = patterns
        }
    }

    /// The root level: records below it are not even formatted. Default info.
    public var level: Logger.Level = .info
    /// Format of handlers that do not set their own. Default json.
    public var format: LogFormat = .json
    /// nil when the file lists handlers without `console`. A file without `handlers` gets a console.
    public var console: Console? = Console()
    public var file: File?
    public var elasticsearch: Elasticsearch?
    public var filters: [Filter] = []
    /// `task_output`: each line a shell task writes also goes to these handlers, with the task's
    /// ids and `stream`. Default true.
    public var taskOutput: Bool = true
    /// `task_output_lines`: lines of one attempt logged at most; further lines stay in the task
    /// log only and are counted in `deerflow_log_lines_dropped_total{handler="task_output"}`.
    /// Default 10000.
    public var taskOutputLines: Int = 10_000

    public init() {}

    /// Every pattern of every `redact` filter, in file order.
    public var redactionPatterns: [String] {
        filters.filter { $0.action == .redact }.flatMap(\.patterns)
    }

    /// The level names accepted in the file (any case), and the level each stands for.
    public static let levelNames: [(name: String, level: Logger.Level)] = [
        ("TRACE", .trace), ("DEBUG", .debug), ("INFO", .info), ("NOTICE", .notice),
        ("WARNING", .warning), ("WARN", .warning), ("ERROR", .error), ("CRITICAL", .critical),
    ]

    /// Reads `logging.yaml`; `${VAR}` is replaced from `environment`.
    ///
    /// - Parameters:
    ///   - yaml: The file's text.
    ///   - file: Its name, used in errors.
    ///   - environment: Variables for `${VAR}`.
    ///   - checkPaths: Whether to check that the file handler's path can be created and written
    ///     (its nearest existing directory is writable). Default true.
    public static func parse(
        yaml: String, file: String, environment: [String: String], checkPaths: Bool = true
    ) throws(FileErrors) -> LoggingConfigFile {
        let reader = YAMLReader(file: file, environment: environment)
        var config = LoggingConfigFile()
        if let root = reader.read(yaml), !root.isNull, let top = root.mapping(allowedKeys: ["logging"]),
           let logging = top.mapping("logging", allowedKeys: ["level", "format", "handlers", "filters", "task_output", "task_output_lines"])
        {
            if let enabled = logging.bool("task_output") { config.taskOutput = enabled }
            if let lines = logging.optional("task_output_lines")?.int(in: Limits.taskOutputLines) { config.taskOutputLines = lines }
            if let node = logging.optional("level"), let level = level(of: node) { config.level = level }
            if let node = logging.optional("format"), let format = node.oneOf(LogFormat.self, what: "log format") { config.format = format }
            if let handlersNode = logging.optional("handlers"), let handlers = handlersNode.mapping() {
                let names = ["console", "file", "elasticsearch"]
                handlers.checkKeys(names) { key in
                    if let suggestion = YAMLReader.suggestion(for: key, from: names) {
                        return "unknown handler '\(key)' (did you mean '\(suggestion)'?)"
                    }
                    return "unknown handler '\(key)' (available: \(names.joined(separator: ", ")))"
                }
                config.console = nil
                // A handler written without settings (`console:`) is enabled with its defaults.
                if let node = handlers["console"] { config.console = node.isNull ? Console() : console(of: node) }
                if let node = handlers["file"] {
                    if node.isNull {
                        node.fail("missing required key 'path' (the log file, e.g. /var/log/deerflow/app.log)")
                    } else {
                        config.file = fileHandler(of: node, checkPaths: checkPaths)
                    }
                }
                if let node = handlers["elasticsearch"] {
                    if node.isNull {
                        node.fail("missing required key 'hosts' (e.g. [http://elasticsearch:9200])")
                    } else {
                        config.elasticsearch = elasticsearch(of: node)
                    }
                }
            }
            for item in logging.sequence("filters") ?? [] {
                if let filter = filter(of: item) { config.filters.append(filter) }
            }
        }
        try reader.throwIfErrors()
        return config
    }

    /// Reads the file at `path`.
    public static func load(path: String, environment: [String: String], checkPaths: Bool = true) throws(FileErrors) -> LoggingConfigFile {
        try parse(yaml: try readText(path), file: path, environment: environment, checkPaths: checkPaths)
    }

    // MARK: Sections

    private static func console(of node: YAMLNode) -> Console? {
        guard let mapping = node.mapping(allowedKeys: ["enabled", "level", "format"]) else { return nil }
        var console = Console()
        if let enabled = mapping.bool("enabled") { console.enabled = enabled }
        console.level = mapping.optional("level").flatMap(level(of:))
        console.format = mapping.optional("format")?.oneOf(LogFormat.self, what: "log format")
        return console
    }

    private static func fileHandler(of node: YAMLNode, checkPaths: Bool) -> File? {
        let keys = ["enabled", "level", "format", "path", "rotation", "max_size", "retention", "max_files"]
        guard let mapping = node.mapping(allowedKeys: keys) else { return nil }
        let enabled = mapping.bool("enabled") ?? true
        let pathNode = mapping.optional("path")
        let path = pathNode?.string()
        if pathNode == nil {
            // At the `file:` line, which is where the key belongs.
            node.reader.report(
                "missing required key 'path' (the log file, e.g. /var/log/deerflow/app.log)", key: node.path + ".path",
                at: mapping["path"]?.keyLocation ?? node.keyLocation ?? node.location)
        }
        var file = File(path: path ?? "", enabled: enabled)
        if let pathNode, let path, enabled, checkPaths, let problem = pathProblem(path) { pathNode.fail(problem) }
        file.level = mapping.optional("level").flatMap(level(of:))
        file.format = mapping.optional("format")?.oneOf(LogFormat.self, what: "log format")
        let rotation = mapping.optional("rotation")?.oneOf(["daily", "size"], what: "rotation") ?? "daily"
        var maxBytes = 100 * 1024 * 1024
        if let sizeNode = mapping.optional("max_size") {
            if rotation != "size" {
                sizeNode.fail("'max_size' applies only to 'rotation: size'")
            } else if let text = sizeNode.string() {
                if let bytes = byteCount(text), bytes > 0 { maxBytes = bytes } else { sizeNode.fail("'\(text)' is not a size (use e.g. 100MB, 512KB, 1GB)") }
            }
        }
        file.rotation = rotation == "size" ? .size(maxBytes: maxBytes) : .daily
        if let retentionNode = mapping.optional("retention"), let retention = retentionNode.duration() {
            if retention > .zero { file.retention = retention } else { retentionNode.fail("must be longer than 0 (leave 'retention' out to keep every file)") }
        }
        if let countNode = mapping.optional("max_files"), let count = countNode.int() {
            if count >= 1 { file.maxFiles = count } else { countNode.fail("must be at least 1, got \(count)") }
        }
        return path == nil ? nil : file
    }

    private static func elasticsearch(of node: YAMLNode) -> Elasticsearch? {
        let keys = ["enabled", "level", "hosts", "index", "batch_size", "flush_interval", "buffer_size", "username", "password", "api_key"]
        guard let mapping = node.mapping(allowedKeys: keys) else { return nil }
        guard let hostsNode = mapping.require("hosts") else { return nil }
        var hosts: [URL] = []
        if hostsNode.isScalar {
            if let url = hostURL(of: hostsNode) { hosts = [url] }
        } else if let items = hostsNode.sequence() {
            if items.isEmpty { hostsNode.fail("needs at least one host, such as http://elasticsearch:9200") }
            hosts = items.compactMap(hostURL(of:))
        }
        var config = Elasticsearch(hosts: hosts)
        config.enabled = mapping.bool("enabled") ?? true
        config.level = mapping.optional("level").flatMap(level(of:))
        if let indexNode = mapping.optional("index"), let index = indexNode.string() {
            if let problem = indexProblem(index) { indexNode.fail(problem) } else { config.index = index }
        }
        if let countNode = mapping.optional("batch_size"), let count = countNode.int() {
            if count >= 1 { config.batchSize = count } else { countNode.fail("must be at least 1, got \(count)") }
        }
        if let countNode = mapping.optional("buffer_size"), let count = countNode.int() {
            if count >= config.batchSize { config.bufferSize = count } else { countNode.fail("must be at least batch_size (\(config.batchSize)), got \(count)") }
        }
        if let intervalNode = mapping.optional("flush_interval"), let interval = intervalNode.duration() {
            if interval > .zero { config.flushInterval = interval } else { intervalNode.fail("must be longer than 0") }
        }
        config.username = mapping.string("username")
        config.password = mapping.string("password")
        config.apiKey = mapping.string("api_key")
        if config.apiKey != nil, config.username != nil || config.password != nil {
            mapping.optional("api_key")?.fail("use either username and password or api_key, not both")
        } else if config.username != nil, config.password == nil {
            mapping.optional("username")?.fail("'username' needs a 'password'")
        } else if config.password != nil, config.username == nil {
            mapping.optional("password")?.fail("'password' needs a 'username'")
        }
        return config
    }

    private static func filter(of node: YAMLNode) -> Filter? {
        guard let mapping = node.mapping(allowedKeys: ["name", "action", "patterns"]) else { return nil }
        let name = mapping.string("name") ?? ""
        guard let actionNode = mapping.require("action"), let action = actionNode.oneOf(Filter.Action.self, what: "filter action"),
              let patternsNode = mapping.require("patterns")
        else { return nil }
        guard let items = patternsNode.isScalar ? [patternsNode] : patternsNode.sequence() else { return nil }
        if items.isEmpty { patternsNode.fail("needs at least one pattern") }
        var patterns: [String] = []
        for item in items {
            guard let pattern = item.string() else { continue }
            do {
                _ = try Redactor.KeyMatcher(pattern: pattern)
                patterns.append(pattern)
            } catch {
                item.fail(error.message)
            }
        }
        return Filter(name: name, action: action, patterns: patterns)
    }

    // MARK: Values

    /// A level name in any case; `WARN` is `WARNING`.
    static func level(of node: YAMLNode) -> Logger.Level? {
        guard let text = node.string() else { return nil }
        let upper = text.uppercased()
        if let match = levelNames.first(where: { $0.name == upper }) { return match.level }
        let names = ["TRACE", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]
        if let suggestion = YAMLReader.suggestion(for: upper, from: names) {
            node.fail("unknown log level '\(text)' (did you mean '\(suggestion)'?)")
        } else {
            node.fail("unknown log level '\(text)' (expected one of: \(names.joined(separator: ", ")))")
        }
        return nil
    }

    /// `100MB`, `512KB`, `1GB`, `4096` (bytes), `2MiB`; units are 1024-based, any case.
    static func byteCount(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).uppercased()
        let multiplier: Int
        switch unit {
        case "", "B": multiplier = 1
        case "K", "KB", "KIB": multiplier = 1024
        case "M", "MB", "MIB": multiplier = 1024 * 1024
        case "G", "GB", "GIB": multiplier = 1024 * 1024 * 1024
        default: return nil
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    private static func hostURL(of node: YAMLNode) -> URL? {
        guard let text = node.string() else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty, let url = components.url
        else {
            node.fail("'\(text)' is not an http or https URL (write e.g. http://elasticsearch:9200)")
            return nil
        }
        return url
    }

    /// Elasticsearch's rules for index names, with `{date}` the only placeholder.
    static func indexProblem(_ index: String) -> String? {
        let expanded = index.replacingOccurrences(of: "{date}", with: "2024.06.01")
        if expanded.contains("{") || expanded.contains("}") { return "'\(index)': the only placeholder in an index name is {date}" }
        if expanded.isEmpty { return "must not be empty" }
        if expanded != expanded.lowercased() { return "'\(index)': Elasticsearch index names must be lowercase" }
        if let first = expanded.first, "-_+".contains(first) { return "'\(index)': an index name cannot start with '\(first)'" }
        if let bad = expanded.first(where: { "\\/*?\"<>| ,#:".contains($0) }) { return "'\(index)': an index name cannot contain '\(bad)'" }
        return nil
    }

    /// Why a log file cannot be created or written at `path`, or nil when it can.
    static func pathProblem(_ path: String) -> String? {
        if path.isEmpty { return "must not be empty" }
        if path.hasSuffix("/") { return "'\(path)' is a directory; give a file path such as /var/log/deerflow/app.log" }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return "'\(path)' is a directory; give a file path such as \(path)/app.log" }
            return access(absolute, W_OK) == 0 ? nil : "'\(path)' is not writable (check its permissions)"
        }
        var ancestor = (absolute as NSString).deletingLastPathComponent
        while !FileManager.default.fileExists(atPath: ancestor, isDirectory: &isDirectory) {
            let parent = (ancestor as NSString).deletingLastPathComponent
            if parent == ancestor { break }
            ancestor = parent
        }
        if !isDirectory.boolValue { return "cannot create '\(path)': '\(ancestor)' is a file, not a directory" }
        if access(ancestor, W_OK | X_OK) != 0 {
            return "cannot create '\(path)': directory '\(ancestor)' is not writable (create the directory or give a writable path)"
        }
        return nil
    }

    private static func readText(_ path: String) throws(FileErrors) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: "no such file")])
        }
        guard !isDirectory.boolValue else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: "is a directory, not a file")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: "cannot read file (check its permissions)")])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
