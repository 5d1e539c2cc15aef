import NIOCore

/// Decodes SMTP replies from the byte stream: lines ending in CRLF (or LF), `250-...` continuation lines
/// collected until the last `250 ...` line.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    /// Whether the decoder holds part of a reply: shared with ``SMTPClientHandler``, which must see nothing
    /// pending when it starts TLS (RFC 3207 §4.2: bytes that came in clear after the STARTTLS reply could
    /// otherwise pass for replies under TLS). Used on the channel's event loop only.
    final class Progress {
        var isIdle = true
    }

    private var lines: [String] = []
    private let progress: Progress
    static let maxLine = 4096

    init(progress: Progress = Progress()) {
        self.progress = progress
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        defer { progress.isIdle = buffer.readableBytes == 0 && lines.isEmpty }
        guard let lf = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maxLine { throw SMTPError(code: "smtp_protocol", message: "reply line too long") }
            return .needMoreData
        }
        let length = lf - buffer.readerIndex
        var line = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 1)
        if line.hasSuffix("\r") { line.removeLast() }
        let u = Array(line.utf8)
        guard u.count >= 3, let code = Int(String(decoding: u[0..<3], as: UTF8.self)) else {
            throw SMTPError(code: "smtp_protocol", message: "malformed reply line")
        }
        let text = u.count > 4 ? String(decoding: u[4...], as: UTF8.self) : ""
        lines.append(text)
        if u.count > 3, u[3] == UInt8(ascii: "-") { return .continue }
        let reply = SMTPReply(code: code, lines: lines)
        lines = []
        context.fireChannelRead(wrapInboundOut(reply))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        return .needMoreData
    }
}
