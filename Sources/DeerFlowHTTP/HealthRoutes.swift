import DeerFlow
import DeerFlowCore
import Hummingbird

/// `/health` (all checks), `/health/live` (the process serves) and `/health/ready` (the store
/// answers and the process is not draining).
struct HealthRoutes: Sendable {
    let engine: DeerFlowEngine

    /// The route templates this registers; open without a token unless `api.protect_health`.
    static let paths: Set<String> = ["/health", "/health/live", "/health/ready"]

    func register(on router: some RouterMethods<BasicRequestContext>) {
        router.get("/health") { _, _ in
            let report = await engine.health.evaluate()
            return JSONResponse.make(JSONRepresentation.health(report), status: report.status == .unhealthy ? .serviceUnavailable : .ok)
        }
        router.get("/health/live") { _, _ in
            JSONResponse.make(["status": "alive"])
        }
        router.get("/health/ready") { _, _ in
            if engine.isDraining {
                return JSONResponse.make(["status": "draining", "reason": "the worker is shutting down"], status: .serviceUnavailable)
            }
            let report = await engine.health.evaluate(only: ["database"])
            let database = report.checks["database"]
            if let database, database.status == .unhealthy {
                var body = database.details
                body["status"] = "not_ready"
                body["reason"] = "the store does not answer"
                return JSONResponse.make(.object(body), status: .serviceUnavailable)
            }
            return JSONResponse.make(["status": "ready"])
        }
    }
}
