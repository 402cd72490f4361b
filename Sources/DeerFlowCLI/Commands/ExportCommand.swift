import ArgumentParser
import DeerFlow
import DeerFlowCore
import DeerFlowNotifications
import DeerFlowObservability
import DeerFlowServer
import Foundation

/// `deerflow export`: the shipped dashboards, alert rules and scrape config, for this
/// deployment's `metrics.yaml`.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write Grafana dashboards, Prometheus alert rules (with promtool tests), a Prometheus scrape config or an Alertmanager config.",
        discussion: """
            dashboards, alerts and prometheus-config honour metrics.yaml in --config (and read no other file of \
            it): its constant labels are matched by every selector, its path and scrape_interval go into the scrape \
            config. The files in deploy/ are their output for the default configuration (scripts/export-deploy \
            regenerates them; a test checks they match):

              dashboards:          deploy/grafana/deerflow-overview.json
              alerts:              deploy/prometheus/alerts.yaml, alerts_test.yaml
              prometheus-config:   deploy/prometheus/prometheus.yml

            alertmanager-config translates notifications.yaml of --config (channels, routing, repeat_interval) into \
            alertmanager.yml for teams that run Alertmanager. It contains the channels' secrets, so it is written \
            readable by its owner only and none is committed in deploy/: write it where your Alertmanager reads it.
            """
    )

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case dashboards, alerts
        case prometheusConfig = "prometheus-config"
        case alertmanagerConfig = "alertmanager-config"
    }

    @Argument(help: ArgumentHelp("What to write: dashboards, alerts, prometheus-config or alertmanager-config.", valueName: "kind"))
    var kind: Kind

    @Option(help: ArgumentHelp("Directory to write into (created when missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Config directory: its metrics.yaml (notifications.yaml for alertmanager-config) is read, no other file.", valueName: "dir"))
    var config: String?

    @Option(name: .customLong("target"), help: ArgumentHelp("host:port of a DeerFlow metrics endpoint for prometheus-config; repeat for several. Default localhost:<metrics port>.", valueName: "host:port"))
    var targets: [String] = []

    func run() async throws {
        // Each kind reads only the file it needs: metrics.yaml, or notifications.yaml.
        let environment = ProcessInfo.processInfo.environment
        var metrics = MetricsConfigFile()
        var notifications: NotificationsConfigFile?
        do {
            let directory = try config.map(ConfigDirectory.init)
            if kind == .alertmanagerConfig {
                notifications = try directory?.notifications(environment: environment)
            } else if let file = try directory?.metrics(environment: environment) {
                metrics = file
            }
        } catch {
            throw CLIError(Launcher.describe(error))
        }
        let contract = MonitoringContract(constantLabels: metrics.labels, metricsPath: metrics.path, scrapeInterval: metrics.scrapeInterval)
        let files: [(String, String)]
        switch kind {
        case .dashboards:
            files = [("deerflow-overview.json", contract.dashboardJSON())]
        case .alerts:
            files = [("alerts.yaml", contract.alertsYAML()), ("alerts_test.yaml", contract.alertsTestYAML())]
        case .prometheusConfig:
            let scrapeTargets = targets.isEmpty ? ["localhost:\(metrics.port)"] : targets
            files = [("prometheus.yml", contract.prometheusConfig(targets: scrapeTargets))]
        case .alertmanagerConfig:
            guard let notifications else {
                throw CLIError("alertmanager-config translates notifications.yaml: pass --config DIR with a notifications.yaml in it")
            }
            files = [("alertmanager.yml", notifications.alertmanagerYAML())]
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for (name, text) in files {
            let path = (out as NSString).appendingPathComponent(name)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            if kind == .alertmanagerConfig { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
            print("wrote \(path)")
        }
    }
}
