import DeerFlowCore
import Foundation
import Logging
import Testing

@testable import DeerFlowLogging

@Suite("logging.yaml")
struct LoggingConfigFileTests {
    /// The chapter's file, exactly.
    static let seed = """
        # config/logging.yaml
        logging:
          level: INFO
          format: json

          handlers:
            console:
              enabled: true
              level: INFO

            file:
              enabled: true
              path: /var/log/deerflow/app.log
              rotation: daily
              retention: 30d

            elasticsearch:
              enabled: true
              hosts:
                - http://elasticsearch:9200
              index: deerflow-logs-{date}

          filters:
            - name: sensitive_data
              action: redact
              patterns:
                - "password"
                - "api_key"
                - "secret"

        """

    /// Parses and returns the errors, or an empty list.
    func errors(_ yaml: String, environment: [String: String] = [:]) -> [FileError] {
        do {
            _ = try LoggingConfigFile.parse(yaml: yaml, file: "logging.yaml", environment: environment, checkPaths: false)
            return []
        } catch {
            return error.errors
        }
    }

    @Test("the chapter's file loads as it is")
    func seedFile() throws {
        // The path check needs /var/log to be writable (root, or a container); the values do not.
        let checkPaths = access("/var/log", W_OK) == 0
        let config = try LoggingConfigFile.parse(yaml: Self.seed, file: "config/logging.yaml", environment: [:], checkPaths: checkPaths)
        #expect(config.level == .info)
        #expect(config.format == .json)
        #expect(config.console == LoggingConfigFile.Console(enabled: true, level: .info, format: nil))
        let file = try #require(config.file)
        #expect(file.enabled)
        #expect(file.path == "/var/log/deerflow/app.log")
        #expect(file.rotation == .daily)
        #expect(file.retention == .seconds(30 * 86400))
        #expect(file.maxFiles == nil)
        let elasticsearch = try #require(config.elasticsearch)
        #expect(elasticsearch.enabled)
        #expect(elasticsearch.hosts == [URL(string: "http://elasticsearch:9200")!])
        #expect(elasticsearch.index == "deerflow-logs-{date}")
        #expect(elasticsearch.indexName(for: Timestamp.parse("2024-06-01T23:59:59Z")!) == "deerflow-logs-2024.06.01")
        #expect(elasticsearch.batchSize == 500)
        #expect(elasticsearch.flushInterval == .seconds(5))
        #expect(elasticsearch.bufferSize == 10000)
        #expect(config.filters == [LoggingConfigFile.Filter(name: "sensitive_data", action: .redact, patterns: ["password", "api_key", "secret"])])
        #expect(config.redactionPatterns == ["password", "api_key", "secret"])
    }

    @Test("an empty file, or one without handlers, logs to the console")
    func defaults() throws {
        let empty = try LoggingConfigFile.parse(yaml: "# nothing\n", file: "logging.yaml", environment: [:])
        #expect(empty == LoggingConfigFile())
        #expect(empty.console == LoggingConfigFile.Console())
        #expect(empty.level == .info)
        let noHandlers = try LoggingConfigFile.parse(yaml: "logging:\n  level: debug\n", file: "logging.yaml", environment: [:])
        #expect(noHandlers.console != nil)
        #expect(noHandlers.level == .debug)
        let fileOnly = try LoggingConfigFile.parse(
            yaml: "logging:\n  handlers:\n    file: {path: /tmp/x/app.log}\n", file: "logging.yaml", environment: [:], checkPaths: false)
        #expect(fileOnly.console == nil)
        #expect(fileOnly.file?.enabled == true)
        let bare = try LoggingConfigFile.parse(yaml: "logging:\n  handlers:\n    console:\n", file: "logging.yaml", environment: [:])
        #expect(bare.console == LoggingConfigFile.Console())
        #expect(self.errors("logging:\n  handlers:\n    file:\n").map(\.line) == [3])
    }

    @Test("levels in any case, WARN for WARNING", arguments: [
        ("TRACE", Logger.Level.trace), ("debug", .debug), ("Info", .info), ("NOTICE", .notice), ("warning", .warning),
        ("WARN", .warning), ("warn", .warning), ("ERROR", .error), ("critical", .critical),
    ])
    func levels(name: String, level: Logger.Level) throws {
        let config = try LoggingConfigFile.parse(yaml: "logging:\n  level: \(name)\n", file: "logging.yaml", environment: [:])
        #expect(config.level == level)
    }

    @Test("every handler setting")
    func allSettings() throws {
        let yaml = """
            logging:
              level: debug
              format: text
              handlers:
                console: {enabled: false}
                file:
                  path: ${LOG_DIR}/app.log
                  level: warn
                  format: json
                  rotation: size
                  max_size: 100MB
                  retention: 7d
                  max_files: 10
                elasticsearch:
                  hosts: https://es1:9200
                  index: logs-{date}
                  batch_size: 100
                  flush_interval: 2s
                  buffer_size: 5000
                  username: deerflow
                  password: ${ES_PASSWORD}
            """
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try LoggingConfigFile.parse(
            yaml: yaml, file: "logging.yaml", environment: ["LOG_DIR": directory.path, "ES_PASSWORD": "s3cret"])
        #expect(config.format == .text)
        #expect(config.console?.enabled == false)
        let file = try #require(config.file)
        #expect(file.path == directory.path + "/app.log")
        #expect(file.level == .warning)
        #expect(file.format == .json)
        #expect(file.rotation == .size(maxBytes: 100 * 1024 * 1024))
        #expect(file.retention == .seconds(7 * 86400))
        #expect(file.maxFiles == 10)
        let elasticsearch = try #require(config.elasticsearch)
        #expect(elasticsearch.hosts == [URL(string: "https://es1:9200")!])
        #expect(elasticsearch.batchSize == 100)
        #expect(elasticsearch.flushInterval == .seconds(2))
        #expect(elasticsearch.bufferSize == 5000)
        #expect(elasticsearch.username == "deerflow")
        #expect(elasticsearch.password == "s3cret")
        #expect(elasticsearch.apiKey == nil)
    }

    @Test("sizes", arguments: [("100MB", 104_857_600), ("512kb", 524_288), ("1GB", 1_073_741_824), ("4096", 4096), ("2MiB", 2_097_152), ("10 MB", 10_485_760)])
    func sizes(text: String, bytes: Int) {
        #expect(LoggingConfigFile.byteCount(text) == bytes)
    }

    @Test("an unknown handler names file, line and key")
    func unknownHandler() {
        let errors = errors("""
            logging:
              handlers:
                console: {enabled: true}
                syslog: {enabled: true}
            """)
        #expect(errors.count == 1)
        #expect(errors.first?.file == "logging.yaml")
        #expect(errors.first?.line == 4)
        #expect(errors.first?.key == "logging.handlers.syslog")
        #expect(errors.first?.message == "unknown handler 'syslog' (available: console, file, elasticsearch)")
        #expect(errors.first?.description.hasPrefix("logging.yaml:4:") == true)
        let typo = self.errors("logging:\n  handlers:\n    consol: {}\n")
        #expect(typo.first?.message == "unknown handler 'consol' (did you mean 'console'?)")
    }

    @Test("an unknown key names file, line and key")
    func unknownKey() {
        let errors = errors("""
            logging:
              level: INFO
              handlers:
                file:
                  path: /tmp/app.log
                  rotaton: daily
            """)
        #expect(errors.count == 1)
        #expect(errors.first?.line == 6)
        #expect(errors.first?.key == "logging.handlers.file.rotaton")
        #expect(errors.first?.message == "unknown key 'rotaton' (did you mean 'rotation'?)")
        let top = self.errors("logging:\n  levels: INFO\n")
        #expect(top.first?.line == 2)
        #expect(top.first?.message == "unknown key 'levels' (did you mean 'level'?)")
    }

    @Test("a bad level names file, line and key")
    func badLevel() {
        let errors = errors("logging:\n  level: VERBOSE\n  handlers:\n    console: {level: warnin}\n")
        #expect(errors.count == 2)
        #expect(errors[0].line == 2)
        #expect(errors[0].key == "logging.level")
        #expect(errors[0].message == "unknown log level 'VERBOSE' (expected one of: TRACE, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL)")
        #expect(errors[1].line == 4)
        #expect(errors[1].key == "logging.handlers.console.level")
        #expect(errors[1].message == "unknown log level 'warnin' (did you mean 'WARNING'?)")
    }

    @Test("a bad retention names file, line and key")
    func badRetention() {
        let errors = errors("""
            logging:
              handlers:
                file:
                  path: /tmp/app.log
                  retention: 30days
            """)
        #expect(errors.count == 1)
        #expect(errors.first?.line == 5)
        #expect(errors.first?.key == "logging.handlers.file.retention")
        #expect(errors.first?.message == "'30days' is not a duration (use e.g. 30s, 5m, 2h, 1d)")
        let zero = self.errors("logging:\n  handlers:\n    file: {path: /tmp/app.log, retention: 0}\n")
        #expect(zero.first?.message.hasPrefix("must be longer than 0") == true)
    }

    @Test("rotation, sizes and counts are checked")
    func badRotation() {
        let errors = errors("""
            logging:
              handlers:
                file:
                  path: /tmp/app.log
                  rotation: hourly
                  max_size: 100MB
                  max_files: 0
            """)
        #expect(errors.map(\.line) == [5, 6, 7])
        #expect(errors[0].message == "unknown rotation 'hourly' (expected one of: daily, size)")
        #expect(errors[1].message == "'max_size' applies only to 'rotation: size'")
        #expect(errors[2].message == "must be at least 1, got 0")
        let size = self.errors("logging:\n  handlers:\n    file: {path: /tmp/app.log, rotation: size, max_size: 100 parsecs}\n")
        #expect(size.first?.message == "'100 parsecs' is not a size (use e.g. 100MB, 512KB, 1GB)")
    }

    @Test("a bad URL names file, line and key")
    func badURL() {
        let errors = errors("""
            logging:
              handlers:
                elasticsearch:
                  hosts:
                    - http://elasticsearch:9200
                    - elasticsearch:9200
                    - ftp://es:21
            """)
        #expect(errors.count == 2)
        #expect(errors[0].line == 6)
        #expect(errors[0].key == "logging.handlers.elasticsearch.hosts[1]")
        #expect(errors[0].message == "'elasticsearch:9200' is not an http or https URL (write e.g. http://elasticsearch:9200)")
        #expect(errors[1].line == 7)
        #expect(errors[1].key == "logging.handlers.elasticsearch.hosts[2]")
    }

    @Test("Elasticsearch index names and credentials are checked")
    func badElasticsearch() {
        let errors = errors("""
            logging:
              handlers:
                elasticsearch:
                  hosts: [http://es:9200]
                  index: DeerFlow-{day}
                  username: deerflow
                  api_key: abc
            """)
        #expect(errors.map(\.line) == [5, 7])
        #expect(errors[0].message == "'DeerFlow-{day}': the only placeholder in an index name is {date}")
        #expect(errors[1].message == "use either username and password or api_key, not both")
        let missing = self.errors("logging:\n  handlers:\n    elasticsearch: {index: x}\n")
        #expect(missing.first?.message == "missing required key 'hosts'")
        #expect(missing.first?.line == 3)
    }

    @Test("an unwritable path names file, line and key")
    func unwritablePath() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        directory.write("not-a-directory")
        let yaml = """
            logging:
              handlers:
                file:
                  path: \(directory.path)/not-a-directory/deerflow/app.log
            """
        do {
            _ = try LoggingConfigFile.parse(yaml: yaml, file: "logging.yaml", environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.errors.count == 1)
            #expect(error.errors.first?.line == 4)
            #expect(error.errors.first?.key == "logging.handlers.file.path")
            #expect(error.errors.first?.message.contains("not-a-directory' is a file, not a directory") == true)
        }
        // A directory given as the path.
        let asDirectory = "logging:\n  handlers:\n    file: {path: \(directory.path)}\n"
        #expect(throws: FileErrors.self) { try LoggingConfigFile.parse(yaml: asDirectory, file: "logging.yaml", environment: [:]) }
        // A directory that does not exist yet under a writable one is fine: the sink creates it.
        let creatable = "logging:\n  handlers:\n    file: {path: \(directory.path)/a/b/app.log}\n"
        #expect(throws: Never.self) { try LoggingConfigFile.parse(yaml: creatable, file: "logging.yaml", environment: [:]) }
        // A disabled handler's path is not checked.
        let disabled = "logging:\n  handlers:\n    file: {enabled: false, path: \(directory.path)/not-a-directory/app.log}\n"
        #expect(throws: Never.self) { try LoggingConfigFile.parse(yaml: disabled, file: "logging.yaml", environment: [:]) }
        if geteuid() != 0 {
            let locked = directory.file("locked")
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o500])
            let yaml = "logging:\n  handlers:\n    file: {path: \(locked)/app.log}\n"
            #expect(throws: FileErrors.self) { try LoggingConfigFile.parse(yaml: yaml, file: "logging.yaml", environment: [:]) }
        }
    }

    @Test("${VAR} comes from the environment; a missing one is named")
    func environment() throws {
        let yaml = """
            logging:
              level: ${LOG_LEVEL:-info}
              handlers:
                elasticsearch:
                  hosts: ["${ES_URL}"]
                  username: deerflow
                  password: ${ES_PASSWORD}
            """
        let config = try LoggingConfigFile.parse(
            yaml: yaml, file: "logging.yaml", environment: ["ES_URL": "http://es.internal:9200", "ES_PASSWORD": "pw", "LOG_LEVEL": "error"])
        #expect(config.level == .error)
        #expect(config.elasticsearch?.hosts.first?.absoluteString == "http://es.internal:9200")
        #expect(config.elasticsearch?.password == "pw")
        let errors = errors(yaml, environment: ["ES_URL": "http://es:9200"])
        #expect(errors.count == 1)
        #expect(errors.first?.line == 7)
        #expect(errors.first?.key == "logging.handlers.elasticsearch.password")
        #expect(errors.first?.message == "environment variable 'ES_PASSWORD' is not set")
    }

    @Test("filters: action and patterns are checked")
    func badFilters() {
        let errors = errors("""
            logging:
              filters:
                - name: drop_debug
                  action: drop
                  patterns: [x]
                - name: bad_regex
                  action: redact
                  patterns: ["password", "/[unclosed/"]
                - name: nothing
                  action: redact
            """)
        #expect(errors.map(\.line) == [4, 8, 9])
        #expect(errors[0].message == "unknown filter action 'drop' (expected one of: redact)")
        #expect(errors[1].key == "logging.filters[1].patterns[1]")
        #expect(errors[1].message == "'/[unclosed/' is not a valid regular expression")
        #expect(errors[2].message == "missing required key 'patterns'")
    }

    @Test("several problems are reported together")
    func severalProblems() {
        let errors = errors("""
            logging:
              level: LOUD
              format: xml
              handlers:
                file:
                  retention: forever
            """)
        #expect(errors.map(\.line) == [2, 3, 5, 6])
        #expect(errors[1].message == "unknown log format 'xml' (expected one of: json, text)")
        #expect(errors[2].message == "missing required key 'path' (the log file, e.g. /var/log/deerflow/app.log)")
        #expect(errors[2].key == "logging.handlers.file.path")
        #expect(errors[3].message == "'forever' is not a duration (use e.g. 30s, 5m, 2h, 1d)")
    }

    @Test("load reads a file and names a missing one")
    func load() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        directory.write("logging.yaml", "logging:\n  level: ERROR\n")
        #expect(try LoggingConfigFile.load(path: directory.file("logging.yaml"), environment: [:]).level == .error)
        #expect(throws: FileErrors.self) { try LoggingConfigFile.load(path: directory.file("missing.yaml"), environment: [:]) }
    }
}
