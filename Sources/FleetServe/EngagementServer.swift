import Hummingbird
import Logging
import NIOCore
import ProfileStore
import ServiceLifecycle

/// `fleet serve` as a `Service`: one Hummingbird application with ``EngagementRoutes``, ``HealthRoutes`` and the
/// ``AccessLog``, on the profile store it shares with every route.
public enum EngagementServer {
    /// The router of the engagement service.
    public static func router(settings: ServeSettings, store: ProfileStore, logger: Logger,
                              metrics: (@Sendable () -> [UInt8])?) -> Router<ServeContext> {
        let router = Router(context: ServeContext.self)
        router.add(middleware: AccessLog(logger: logger))
        HealthRoutes.register(on: router, metrics: metrics, ready: { (try? await store.open()) != nil })
        EngagementRoutes(settings: settings, store: store, logger: logger).register(on: router)
        return router
    }

    /// The application (a `Service`): listens on the settings' host and port; `onRunning` gets the bound port.
    public static func application(settings: ServeSettings, store: ProfileStore, logger: Logger,
                                   metrics: (@Sendable () -> [UInt8])?,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(settings: settings, store: store, logger: logger, metrics: metrics),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "fleet"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? settings.port) },
            logger: logger)
    }
}
