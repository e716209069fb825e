import Hummingbird
import NIOCore

/// The request context of the daemon's API: the core storage Hummingbird
/// needs, plus whether the peer presented the owner's token.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The owner's token came with the request (header or dashboard cookie).
    public var isOwner = false
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Uploads stream to disk with their own cap (`--max-upload`); nothing else decodes large bodies.
    public var maxUploadSize: Int { 1 << 20 }
}
