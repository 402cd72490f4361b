import DeerFlow
public import DeerFlowCore
import Foundation
import Hummingbird
import NIOCore

/// What the alert endpoints serve; the process's alerting (rule evaluation and notifications)
/// implements it.
public protocol AlertsEndpoint: Sendable {
    /// `GET /api/v1/alerts`: pending and firing alerts of DeerFlow's own rule evaluation, with
    /// the rules and the size of the sampled history.
    func alertsDocument() async -> JSONValue
    /// `POST /api/v1/alertmanager/webhook`: an Alertmanager webhook payload (version 4), routed
    /// like DeerFlow's own alerts. Returns the number of notifications queued.
    /// - Throws: ``DeerFlowError`` with `.badRequest` for a payload that is not one.
    func receiveAlertmanagerWebhook(_ payload: JSONValue) async throws -> Int
}

/// `/api/v1/alerts` and `/api/v1/alertmanager/webhook`.
struct AlertRoutes: Sendable {
    let alerts: any AlertsEndpoint
    let maxBodyBytes: Int

    func register(on router: some RouterMethods<BasicRequestContext>) {
        router.get("/api/v1/alerts") { _, _ in
            JSONResponse.make(await alerts.alertsDocument())
        }
        router.post("/api/v1/alertmanager/webhook") { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: maxBodyBytes)
            let payload: JSONValue
            do {
                payload = try JSONValue(parsing: String(buffer: body))
            } catch {
                throw DeerFlowError(.badRequest, "the request body is not valid JSON; send Alertmanager's webhook payload (version 4)")
            }
            let queued = try await alerts.receiveAlertmanagerWebhook(payload)
            return JSONResponse.make(["queued": .int(queued)], status: .accepted)
        }
    }
}
