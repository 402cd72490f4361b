import DeerFlowCore
import DeerFlowHTTP
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// GitHub's signature check, and webhooks end to end through a real `deerflow server` on SQLite.
@Suite("Webhooks")
struct WebhookTests {
    /// GitHub's documented example ("Validating webhook deliveries").
    static let githubSecret = "It's a Secret to Everybody"
    static let githubPayload = Array("Hello, World!".utf8)
    static let githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    @Test func signsLikeGitHub() {
        #expect(WebhookSignature.sign(Self.githubPayload, secret: Self.githubSecret) == Self.githubSignature)
    }

    @Test func acceptsOnlyTheRightSignature() {
        let secret = Array(Self.githubSecret.utf8)
        #expect(WebhookSignature.isValid(Self.githubSignature, body: Self.githubPayload, secret: secret))
        // Upper-case hex and prefix are the same code.
        #expect(WebhookSignature.isValid("SHA256=" + Self.githubSignature.dropFirst(7).uppercased(), body: Self.githubPayload, secret: secret))
        let refused: [String?] = [
            nil, "", "sha256=", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d", String(Self.githubSignature.dropLast()),
            Self.githubSignature + "0", String(Self.githubSignature.dropLast()) + "8", "sha256=" + String(repeating: "zz", count: 32),
            Self.githubSignature.replacingOccurrences(of: "sha256=", with: "sha512="),
        ]
        for header in refused {
            #expect(!WebhookSignature.isValid(header, body: Self.githubPayload, secret: secret), "\(header ?? "nil")")
        }
        #expect(!WebhookSignature.isValid(Self.githubSignature, body: Self.githubPayload + [0x0A], secret: secret))
        #expect(!WebhookSignature.isValid(Self.githubSignature, body: Self.githubPayload, secret: Array("another".utf8)))
    }

    @Test func aHookWithoutItsSecretIsReportedAndRefused() {
        let workflow = WorkflowDefinition(
            name: "w", tasks: [TaskDefinition(id: "a", action: .noop)],
            triggers: [.webhook(WebhookTrigger(name: "push", secretEnvironmentVariable: "GH_SECRET"))])
        let missing = Webhooks(workflows: [workflow], environment: ["GH_SECRET": ""])
        #expect(missing.problems.count == 1)
        #expect(missing.problems.first?.contains("GH_SECRET") == true)
        let present = Webhooks(workflows: [workflow], environment: ["GH_SECRET": "x"])
        #expect(present.problems.isEmpty)
        #expect(present.names == ["push"])
    }

    @Test("a signed delivery starts one run with the mapped params; repeats, bad signatures and unmapped payloads start none; the dedupe survives a restart")
    func endToEndOnSQLite() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (name, text) in WebhookScenario.workflows { try directory.write("workflows/\(name)", text) }
        let database = "sqlite://" + directory.file("deerflow.sqlite")
        let server = try ServerProcess.server(database: database, workflows: directory.file("workflows"), workers: true, environment: WebhookScenario.environment)
        defer { server.stop() }
        let id = try await WebhookScenario.check(api: try await server.apiPort(), metrics: try await server.metricsPort(), server: server)
        server.signal(SIGTERM)
        try await server.waitForExit()

        let restarted = try ServerProcess.server(database: database, workflows: directory.file("workflows"), environment: WebhookScenario.environment)
        defer { restarted.stop() }
        try await WebhookScenario.checkRepeatAnswersTheSameRun(api: try await restarted.apiPort(), id: id)
    }
}
