import DeerFlow
@testable import DeerFlowPostgres
import Foundation
import NIOSSL
import PostgresNIO
import Testing

@Suite("PostgreSQL store: database URLs")
struct PostgresConfigurationTests {
    @Test("a URL gives host, port, user, password, database and pool settings")
    func parsesURL() throws {
        let configuration = try PostgresWorkflowStore.Configuration(url: "postgres://deer%40flow:p%3Ass@db.example:6543/orchestration?sslmode=require&pool_size=4&pool_timeout=2&connect_timeout=3&application_name=etl")
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "deer@flow")
        #expect(configuration.password == "p:ss")
        #expect(configuration.database == "orchestration")
        #expect(configuration.tls == .require)
        #expect(configuration.poolSize == 4)
        #expect(configuration.poolTimeout == .seconds(2))
        #expect(configuration.connectTimeout == .seconds(3))
        #expect(configuration.applicationName == "etl")
        #expect(configuration.redactedURL == "postgres://deer%40flow:***@db.example:6543/orchestration?sslmode=require&pool_size=4&pool_timeout=2&connect_timeout=3&application_name=etl")
    }

    @Test("defaults: port 5432, the user's name as database, sslmode prefer")
    func defaults() throws {
        let configuration = try PostgresWorkflowStore.Configuration(url: "postgresql://deerflow@localhost")
        #expect(configuration.port == 5432)
        #expect(configuration.database == "deerflow")
        #expect(configuration.password == nil)
        #expect(configuration.tls == .prefer)
        #expect(configuration.poolSize == 16)
        #expect(configuration.poolTimeout == .seconds(5))
    }

    @Test("the pool keeps two connections open and schedules no keep-alive query; PostgreSQL's TCP keepalives are on")
    func poolSettings() throws {
        let options = try PostgresWorkflowStore.Configuration(url: "postgres://u@db.example/d").clientConfiguration().options
        #expect(options.minimumConnections == 2)
        #expect(options.maximumConnections == 16)
        #expect(options.keepAliveBehavior == nil)
        let startup = Dictionary(options.additionalStartupParameters, uniquingKeysWith: { $1 })
        #expect(startup["tcp_keepalives_idle"] == "60")
        #expect(startup["tcp_keepalives_interval"] == "10")
        #expect(startup["tcp_keepalives_count"] == "6")
        let single = try PostgresWorkflowStore.Configuration(url: "postgres://u@db.example/d?pool_size=1").clientConfiguration().options
        #expect(single.minimumConnections == 1)
    }

    @Test("every sslmode maps to postgres-nio TLS settings", arguments: PostgresWorkflowStore.Configuration.TLSMode.allCases)
    func sslModes(_ mode: PostgresWorkflowStore.Configuration.TLSMode) throws {
        let configuration = try PostgresWorkflowStore.Configuration(url: "postgres://u:p@db.example/d?sslmode=\(mode.rawValue)")
        #expect(configuration.tls == mode)
        let tls = try configuration.tlsConfiguration()
        switch mode {
        case .disable: #expect(tls == nil)
        case .prefer, .require: #expect(tls?.certificateVerification == CertificateVerification.none)
        case .verifyCA: #expect(tls?.certificateVerification == .noHostnameVerification)
        case .verifyFull: #expect(tls?.certificateVerification == .fullVerification)
        }
        _ = try configuration.clientConfiguration()
        _ = try configuration.connectionConfiguration(purpose: "")
    }

    @Test("mistakes are named, and the password never appears in the message")
    func errors() {
        let cases = [
            ("postgres://u:hunter2@db/d?sslmode=sometimes", "sslmode 'sometimes' is not one of disable, prefer, require, verify-ca, verify-full"),
            ("postgres://u:hunter2@db/d?colour=blue", "unknown parameter 'colour'"),
            ("postgres://u:hunter2@db/d?pool_size=0", "pool_size '0' must be a whole number of at least 1"),
            ("postgres://u:hunter2@db/d?pool_timeout=0.5", "pool_timeout '0.5' must be a whole number of seconds, at least 1"),
            ("postgres://u:hunter2@db:99999/d", "out of range"),
            ("postgres://u:hunter2@db/d?sslrootcert=/ca.pem", "sslrootcert needs sslmode=verify-ca or sslmode=verify-full"),
        ]
        for (url, expected) in cases {
            do {
                _ = try PostgresWorkflowStore.Configuration(url: url)
                Issue.record("\(url) was accepted")
            } catch {
                let message = "\(error)"
                #expect(message.contains(expected), "\(message)")
                #expect(!message.contains("hunter2"), "\(message)")
                #expect(message.contains("u:***@"), "\(message)")
            }
        }
    }

    @Test("redaction masks the password of any URL, parsable or not")
    func redaction() {
        let redact = PostgresWorkflowStore.Configuration.redact
        #expect(redact("postgres://user:secret@host:5432/db") == "postgres://user:***@host:5432/db")
        #expect(redact("postgres://user:p@ss@host/db") == "postgres://user:***@host/db")
        #expect(redact("postgres://user@host/db") == "postgres://user@host/db")
        #expect(redact("postgres://host/db?password=x") == "postgres://host/db?password=x")
        #expect(redact("mysql://root:toor@h") == "mysql://root:***@h")
        #expect(redact("sqlite://./a.sqlite") == "sqlite://./a.sqlite")
    }
}
