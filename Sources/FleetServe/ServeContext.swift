import Hummingbird
import NIOCore

/// The request context of `fleet serve`: Hummingbird's core context, the peer's address (rate limits, machine
/// opens) and a body limit of ``ServeSettings/maxBodyBytes``.
public struct ServeContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    public var maxUploadSize: Int { ServeSettings.maxBodyBytes }
}
