import ArgumentParser
import FleetServe
import Foundation
import Logging
import Metrics
import Prometheus
import ProfileStore
import ServiceLifecycle

/// `fleet serve`: the engagement service (one-click unsubscribe, preference centre, opens, clicks, campaign report
/// pages, /metrics, /healthz, /readyz) on Hummingbird, until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the mails' links: one-click unsubscribe, preference centre, opens, clicks; and campaign report pages.",
        discussion: """
            Reads FLEET_STORE (profiles, ledger), FLEET_LINK_KEYS or FLEET_EMAIL_SECRET (the keys the email worker signs \
            with), FLEET_PUBLIC_URL, FLEET_TEMPLATES (the subscription groups), FLEET_SERVE_* and FLEET_CONVERSION_*. \
            Stops gracefully on SIGTERM or SIGINT. Exit 64 for a bad setting, 1 when it cannot listen.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "host:port to listen on (env FLEET_SERVE_LISTEN; default 127.0.0.1:8080).") var listen: String?
    @Option(help: "The templates directory, whose email templates' subscription groups the preference centre lists (else FLEET_EMAIL_TEMPLATES, FLEET_TEMPLATES, ./Templates).") var templates: String?

    func run() async throws {
        let logger = try global.bootstrapLogging(defaultLevel: "info")
        let env = ProcessInfo.processInfo.environment
        let settings: ServeSettings
        do {
            settings = try ServeSettings.fromEnvironment(
                env, storePath: try global.storePath(),
                templatesDirectory: templates ?? env["FLEET_EMAIL_TEMPLATES"].flatMap { $0.isEmpty ? nil : $0 } ?? global.templatesDirectory(nil),
                listen: listen)
        } catch let error as ServeError {
            throw CLIError.usage(error.message)
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let store = ProfileStore(path: settings.storePath, logger: logger)
        do {
            try await store.open()
        } catch {
            throw CLIError("cannot open the store \(settings.storePath): \(error)")
        }
        defer { store.close() }
        let app = EngagementServer.application(
            settings: settings, store: store, logger: logger,
            metrics: { var out: [UInt8] = []; registry.emit(into: &out); return out },
            onRunning: { port in logger.info("serving", metadata: ["serve.address": "\(settings.host):\(port)", "serve.public_url": "\(settings.links.publicURL)"]) })
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: app, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        do {
            try await group.run()
        } catch {
            throw CLIError("fleet serve stopped: \(error)")
        }
    }
}
