/// A piece of broker topology: an exchange, a queue or a binding. Declarations are idempotent while
/// their arguments stay the same; a connection re-declares the ones it was given after each reconnect.
public enum AMQPDeclaration: Sendable, Hashable {
    case exchange(Exchange)
    case queue(Queue)
    case binding(Binding)

    /// An exchange declaration.
    public struct Exchange: Sendable, Hashable {
        public var name: String
        /// `direct`, `topic`, `fanout` or `headers`.
        public var type: String
        public var durable: Bool
        public var autoDelete: Bool
        public var isInternal: Bool
        public var arguments: [String: AMQPFieldValue]

        public init(name: String, type: String, durable: Bool = true, autoDelete: Bool = false,
                    isInternal: Bool = false, arguments: [String: AMQPFieldValue] = [:]) {
            self.name = name
            self.type = type
            self.durable = durable
            self.autoDelete = autoDelete
            self.isInternal = isInternal
            self.arguments = arguments
        }
    }

    /// A queue declaration.
    public struct Queue: Sendable, Hashable {
        public var name: String
        public var durable: Bool
        public var exclusive: Bool
        public var autoDelete: Bool
        /// `x-queue-type`, `x-message-ttl`, `x-dead-letter-exchange`, `x-delivery-limit`, ...
        public var arguments: [String: AMQPFieldValue]

        public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                    arguments: [String: AMQPFieldValue] = [:]) {
            self.name = name
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.arguments = arguments
        }
    }

    /// A queue-to-exchange binding.
    public struct Binding: Sendable, Hashable {
        public var queue: String
        public var exchange: String
        public var routingKey: String
        public var arguments: [String: AMQPFieldValue]

        public init(queue: String, exchange: String, routingKey: String, arguments: [String: AMQPFieldValue] = [:]) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
            self.arguments = arguments
        }
    }
}
