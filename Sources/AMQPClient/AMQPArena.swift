import CRabbitMQ

#if canImport(Glibc)
import Glibc
#endif

/// C memory for one rabbitmq-c call: strings, tables and properties are copied here, handed to the
/// library, and freed together by ``release()`` once the call returned. Used on the I/O thread only.
final class AMQPArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func release() {
        for pointer in allocations { free(pointer) }
        allocations.removeAll(keepingCapacity: true)
    }

    deinit { release() }

    private func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let pointer = malloc(max(size, 1))!
        allocations.append(pointer)
        return pointer
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
    }

    func bytes(_ array: [UInt8]) -> amqp_bytes_t {
        array.withUnsafeBytes { copy($0) }
    }

    private func copy(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        let pointer = allocate(buffer.count)
        if let base = buffer.baseAddress, buffer.count > 0 { pointer.copyMemory(from: base, byteCount: buffer.count) }
        return amqp_bytes_t(len: buffer.count, bytes: pointer)
    }

    func table(_ fields: [String: AMQPFieldValue]) -> amqp_table_t {
        guard !fields.isEmpty else { return fleet_amqp_empty_table() }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * fields.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: fields.count)
        // Sorted keys: the same arguments always encode the same way.
        for (index, key) in fields.keys.sorted().enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: value(fields[key]!))
        }
        return amqp_table_t(num_entries: Int32(fields.count), entries: entries)
    }

    func value(_ field: AMQPFieldValue) -> amqp_field_value_t {
        var result = amqp_field_value_t()
        switch field {
        case .string(let s):
            result.kind = kind(AMQP_FIELD_KIND_UTF8)
            result.value.bytes = bytes(s)
        case .int(let i):
            result.kind = kind(AMQP_FIELD_KIND_I64)
            result.value.i64 = i
        case .double(let d):
            result.kind = kind(AMQP_FIELD_KIND_F64)
            result.value.f64 = d
        case .bool(let b):
            result.kind = kind(AMQP_FIELD_KIND_BOOLEAN)
            result.value.boolean = b ? 1 : 0
        case .bytes(let b):
            result.kind = kind(AMQP_FIELD_KIND_BYTES)
            result.value.bytes = bytes(b)
        case .timestamp(let t):
            result.kind = kind(AMQP_FIELD_KIND_TIMESTAMP)
            result.value.u64 = t
        case .table(let t):
            result.kind = kind(AMQP_FIELD_KIND_TABLE)
            result.value.table = table(t)
        case .array(let values):
            result.kind = kind(AMQP_FIELD_KIND_ARRAY)
            let entries = allocate(MemoryLayout<amqp_field_value_t>.stride * max(values.count, 1))
                .bindMemory(to: amqp_field_value_t.self, capacity: max(values.count, 1))
            for (index, element) in values.enumerated() { entries[index] = value(element) }
            result.value.array = amqp_array_t(num_entries: Int32(values.count), entries: entries)
        case .void:
            result.kind = kind(AMQP_FIELD_KIND_VOID)
        }
        return result
    }

    func properties(_ p: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: amqp_flags_t = 0
        if let v = p.contentType { c.content_type = bytes(v); flags |= fleet_flag_content_type }
        if let v = p.contentEncoding { c.content_encoding = bytes(v); flags |= fleet_flag_content_encoding }
        if !p.headers.isEmpty { c.headers = table(p.headers); flags |= fleet_flag_headers }
        if let v = p.deliveryMode { c.delivery_mode = v; flags |= fleet_flag_delivery_mode }
        if let v = p.priority { c.priority = v; flags |= fleet_flag_priority }
        if let v = p.correlationID { c.correlation_id = bytes(v); flags |= fleet_flag_correlation_id }
        if let v = p.replyTo { c.reply_to = bytes(v); flags |= fleet_flag_reply_to }
        if let v = p.expiration { c.expiration = bytes(v); flags |= fleet_flag_expiration }
        if let v = p.messageID { c.message_id = bytes(v); flags |= fleet_flag_message_id }
        if let v = p.timestamp { c.timestamp = v; flags |= fleet_flag_timestamp }
        if let v = p.type { c.type = bytes(v); flags |= fleet_flag_type }
        if let v = p.appID { c.app_id = bytes(v); flags |= fleet_flag_app_id }
        c._flags = flags
        return c
    }
}

@inline(__always)
func kind(_ k: amqp_field_value_kind_t) -> UInt8 { UInt8(truncatingIfNeeded: k.rawValue) }

// MARK: - Reading C values into Swift

extension amqp_bytes_t {
    /// The bytes as a Swift string (invalid UTF-8 is repaired with replacement characters).
    var string: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }

    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }
}

extension AMQPFieldValue {
    init(_ v: amqp_field_value_t) {
        switch Int(v.kind) {
        case Int(kind(AMQP_FIELD_KIND_BOOLEAN)): self = .bool(v.value.boolean != 0)
        case Int(kind(AMQP_FIELD_KIND_I8)): self = .int(Int64(v.value.i8))
        case Int(kind(AMQP_FIELD_KIND_U8)): self = .int(Int64(v.value.u8))
        case Int(kind(AMQP_FIELD_KIND_I16)): self = .int(Int64(v.value.i16))
        case Int(kind(AMQP_FIELD_KIND_U16)): self = .int(Int64(v.value.u16))
        case Int(kind(AMQP_FIELD_KIND_I32)): self = .int(Int64(v.value.i32))
        case Int(kind(AMQP_FIELD_KIND_U32)): self = .int(Int64(v.value.u32))
        case Int(kind(AMQP_FIELD_KIND_I64)): self = .int(v.value.i64)
        case Int(kind(AMQP_FIELD_KIND_U64)): self = .int(Int64(clamping: v.value.u64))
        case Int(kind(AMQP_FIELD_KIND_F32)): self = .double(Double(v.value.f32))
        case Int(kind(AMQP_FIELD_KIND_F64)): self = .double(v.value.f64)
        case Int(kind(AMQP_FIELD_KIND_DECIMAL)):
            let d = v.value.decimal
            var scale = 1.0
            for _ in 0..<Int(d.decimals) { scale *= 10 }
            self = .double(Double(Int32(bitPattern: d.value)) / scale)
        case Int(kind(AMQP_FIELD_KIND_UTF8)): self = .string(v.value.bytes.string)
        case Int(kind(AMQP_FIELD_KIND_BYTES)): self = .bytes(v.value.bytes.array)
        case Int(kind(AMQP_FIELD_KIND_TIMESTAMP)): self = .timestamp(v.value.u64)
        case Int(kind(AMQP_FIELD_KIND_TABLE)): self = .table(Self.fields(of: v.value.table))
        case Int(kind(AMQP_FIELD_KIND_ARRAY)):
            let a = v.value.array
            var values: [AMQPFieldValue] = []
            if let entries = a.entries {
                for i in 0..<Int(a.num_entries) { values.append(AMQPFieldValue(entries[i])) }
            }
            self = .array(values)
        default: self = .void
        }
    }

    static func fields(of table: amqp_table_t) -> [String: AMQPFieldValue] {
        guard table.num_entries > 0, let entries = table.entries else { return [:] }
        var result: [String: AMQPFieldValue] = [:]
        result.reserveCapacity(Int(table.num_entries))
        for i in 0..<Int(table.num_entries) {
            result[entries[i].key.string] = AMQPFieldValue(entries[i].value)
        }
        return result
    }
}

extension AMQPProperties {
    init(_ c: amqp_basic_properties_t) {
        let f = c._flags
        self.init()
        if f & fleet_flag_content_type != 0 { contentType = c.content_type.string }
        if f & fleet_flag_content_encoding != 0 { contentEncoding = c.content_encoding.string }
        if f & fleet_flag_headers != 0 { headers = AMQPFieldValue.fields(of: c.headers) }
        if f & fleet_flag_delivery_mode != 0 { deliveryMode = c.delivery_mode }
        if f & fleet_flag_priority != 0 { priority = c.priority }
        if f & fleet_flag_correlation_id != 0 { correlationID = c.correlation_id.string }
        if f & fleet_flag_reply_to != 0 { replyTo = c.reply_to.string }
        if f & fleet_flag_expiration != 0 { expiration = c.expiration.string }
        if f & fleet_flag_message_id != 0 { messageID = c.message_id.string }
        if f & fleet_flag_timestamp != 0 { timestamp = c.timestamp }
        if f & fleet_flag_type != 0 { type = c.type.string }
        if f & fleet_flag_app_id != 0 { appID = c.app_id.string }
    }
}
