import DeerFlow
import Foundation
import Logging
import Metrics

/// The chapter's instrumented workflow in Swift: custom metrics with labels, `time { }`,
/// and structured log lines that carry the run's ids.
let instrumented: Workflow = {
    let workflow = Workflow(
        name: "instrumented_workflow",
        description: "Processes records and reports custom metrics",
        params: [.init("batch", type: .int, default: 100, description: "Records per batch")]
    )

    workflow.task(id: "fetch_records", retries: 2, retryDelay: .milliseconds(200), timeout: .seconds(30)) { context in
        let batch: Int = try context.param("batch")
        context.logger.info("Starting task processing", metadata: [
            "batch": "\(batch)",
            "params": .dictionary(context.params.mapValues { .string($0.plainText) }),
        ])
        return (0..<batch).map { "record-\($0)" }
    }

    workflow.task(id: "process_records", dependsOn: ["fetch_records"]) { context in
        // Declared once per process; declaring again returns the same metric.
        let recordsProcessed = try context.metrics.counter(
            "deerflow_records_processed_total", help: "Total records processed",
            labels: ["workflow", "task", "status"])
        let processingTime = try context.metrics.histogram(
            "deerflow_processing_time_seconds", help: "Time to process records",
            labels: ["workflow", "task"], buckets: [0.1, 0.5, 1, 5, 10, 30])

        let records: [String] = try await context.output(of: "fetch_records")
        let timer = try processingTime.labels(context.workflow.name, context.task.id)
        let failures = timer.time { () -> Int in
            var failures = 0
            for record in records {
                let ok = !record.hasSuffix("7")
                if !ok { failures += 1 }
                let outcome = try? recordsProcessed.labels(context.workflow.name, context.task.id, ok ? "success" : "error")
                outcome?.inc()
            }
            return failures
        }
        context.logger.info("Task completed successfully", metadata: [
            "result_count": "\(records.count)",
            "failures": "\(failures)",
            "duration_ms": "\(context.elapsedMilliseconds)",
        ])
        return ["processed": records.count, "failed": failures]
    }

    workflow.task(id: "report", type: "report", dependsOn: ["process_records"]) { context in
        let summary: [String: Int] = try await context.output(of: "process_records")
        // Code written against swift-metrics (a library's, or this one) reaches /metrics too.
        Counter(label: "instrumented_reports_total", dimensions: [("source", "swift-metrics")]).increment()
        context.logger.notice("batch done", metadata: ["processed": "\(summary["processed"] ?? 0)"])
    }
    return workflow
}()
