import NIOCore

/// Decodes SMTP replies from the byte stream: lines ending in CRLF (or LF), `250-...` continuation lines
/// collected until the last `250 ...` line. Reads the code from the bytes; one `String` per line, for its text.
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
        let start = buffer.readerIndex
        var end = lf
        if end > start, buffer.getInteger(at: end - 1, as: UInt8.self) == 0x0D { end -= 1 }
        let length = end - start
        func digit(_ i: Int) -> Int? {
            guard let b = buffer.getInteger(at: start + i, as: UInt8.self), b >= 0x30, b <= 0x39 else { return nil }
            return Int(b - 0x30)
        }
        guard length >= 3, let d0 = digit(0), let d1 = digit(1), let d2 = digit(2) else {
            throw SMTPError(code: "smtp_protocol", message: "malformed reply line")
        }
        let code = d0 * 100 + d1 * 10 + d2
        let continued = length > 3 && buffer.getInteger(at: start + 3, as: UInt8.self) == UInt8(ascii: "-")
        lines.append(length > 4 ? buffer.getString(at: start + 4, length: length - 4) ?? "" : "")
        buffer.moveReaderIndex(to: lf + 1)
        if continued { return .continue }
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
