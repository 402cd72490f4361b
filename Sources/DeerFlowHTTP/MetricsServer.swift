public import DeerFlow
public import DeerFlowCore
import Foundation
public import Hummingbird
public import Logging

/// The Prometheus endpoint, on its own port (`metrics.port`, default 9090).
public enum MetricsServer {
    /// - Parameters:
    ///   - path: the scrape path (`metrics.path`, default `/metrics`).
    ///   - collector: updates gauges before each scrape.
    ///   - render: renders every series in the text format 0.0.4.
    ///   - connections: the timeouts and connection limit, the API's (`api:` of deerflow.yaml).
    public static func makeApplication(
        host: String,
        port: Int,
        path: String,
        collector: MetricsCollector,
        render: @escaping @Sendable () -> String,
        connections: ConnectionLimits = ConnectionLimits(),
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        // Errors as the API answers them: 404 and 405 (with `Allow`) with the JSON error.
        let known = KnownRoutes()
        known.add(.get, path)
        router.add(middleware: JSONErrorMiddleware(logger: logger, maxBodyBytes: 0, known: known))
        router.get(RouterPath(path)) { _, _ in
            await collector.collect()
            return JSONResponse.text(render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        return Application(
            router: router,
            server: HTTPListener.server(limits: connections, logger: logger),
            configuration: HTTPListener.configuration(host: host, port: port, serverName: "deerflow-metrics", limits: connections, logger: logger),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? port
                logger.info("metrics listening", metadata: ["url": "http://\(host):\(port)\(path)", "port": "\(port)"])
                await onListening(port)
            },
            eventLoopGroupProvider: .shared(HTTPListener.eventLoopGroup),
            logger: logger
        )
    }
}
