import DeerFlowCore
import Logging

/// Formats records as single lines (without the newline).
///
/// JSON: one object with `timestamp` (RFC 3339, UTC, milliseconds), `level` (swift-log's lowercase
/// name: `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`), `logger` (the label),
/// `message`, then every metadata key at the top level: task keys first (``LogRecord/taskKeys``),
/// the others sorted. Nested dictionaries and lists are JSON objects and arrays; strings and
/// `.stringConvertible` values are strings. A metadata key named like one of the four fixed fields
/// is written as `metadata.<key>`.
///
/// ```
/// {"timestamp":"2024-06-01T12:00:00.123Z","level":"info","logger":"deerflow","message":"task started","run_id":"r1","attempt":"1"}
/// ```
///
/// Text, for terminals: `2024-06-01T12:00:00.123Z INFO [deerflow] task started run_id=r1 note="two words"`;
/// values with spaces, quotes or `=` are quoted, nested values are JSON, control characters in the
/// message are escaped so a record stays on one line.
public enum LogLineFormatter {
    /// The record as a line in `format`.
    public static func format(_ record: LogRecord, as format: LogFormat) -> String {
        switch format {
        case .json: return json(record)
        case .text: return text(record)
        }
    }

    /// The record as one JSON object.
    public static func json(_ record: LogRecord) -> String {
        var writer = LineWriter(capacity: 192 + record.message.utf8.count + (record.leadingJSON?.count ?? 0) + record.leadingFields.count * 40 + record.trailingFields.count * 40)
        writer.raw(#"{"timestamp":""#)
        Timestamp.appendRFC3339(record.timestamp, to: &writer.bytes)
        writer.raw(#"","level":""#)
        writer.raw(record.level.rawValue)
        writer.raw(#"","logger":"#)
        writer.jsonString(record.label)
        writer.raw(#","message":"#)
        writer.jsonString(record.message)
        if let leadingJSON = record.leadingJSON {
            writer.bytes.append(contentsOf: leadingJSON)
        } else {
            for field in record.leadingFields { writer.jsonField(field) }
        }
        for field in record.trailingFields { writer.jsonField(field) }
        writer.byte(ASCII.closeBrace)
        return writer.string
    }

    /// The record as a line for people.
    public static func text(_ record: LogRecord) -> String {
        var writer = LineWriter(capacity: 64 + record.label.utf8.count + record.message.utf8.count + (record.leadingFields.count + record.trailingFields.count) * 32)
        Timestamp.appendRFC3339(record.timestamp, to: &writer.bytes)
        writer.byte(ASCII.space)
        writer.raw(upperLevelNames[record.level] ?? record.level.rawValue.uppercased())
        writer.raw(" [")
        writer.escaped(record.label, quotes: false)
        writer.raw("] ")
        writer.escaped(record.message, quotes: false)
        for field in [record.leadingFields, record.trailingFields].joined() {
            writer.byte(ASCII.space)
            writer.escaped(field.key, quotes: false)
            writer.byte(ASCII.equals)
            switch field.value {
            case .string(let value): writer.textValue(value)
            case .stringConvertible(let value): writer.textValue(value.description)
            case let value: writer.jsonValue(value)
            }
        }
        return writer.string
    }

    /// Keys of the fixed fields.
    @inline(__always) static func isReserved(_ key: String) -> Bool {
        switch key {
        case "timestamp", "level", "logger", "message": return true
        default: return false
        }
    }
    static let upperLevelNames: [Logger.Level: String] = Dictionary(
        uniqueKeysWithValues: Logger.Level.allCases.map { ($0, $0.rawValue.uppercased()) })
}

/// A line being built as UTF-8 bytes.
struct LineWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    @inline(__always) mutating func byte(_ byte: UInt8) {
        bytes.append(byte)
    }

    mutating func raw(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// A JSON string literal, quotes included.
    mutating func jsonString(_ text: String) {
        bytes.append(ASCII.quote)
        escaped(text, quotes: true)
        bytes.append(ASCII.quote)
    }

    /// A text-format value: bare when it is a plain word, else a JSON string literal.
    mutating func textValue(_ text: String) {
        var text = text
        let bare = text.withUTF8 { utf8 in
            !utf8.isEmpty && !utf8.contains { $0 <= ASCII.space || $0 == ASCII.quote || $0 == ASCII.equals || $0 == 0x7F }
        }
        if bare { raw(text) } else { jsonString(text) }
    }

    /// `,"key":value`; a key named like a fixed field is written `metadata.<key>`.
    mutating func jsonField(_ field: LogRecord.Field) {
        bytes.append(0x2C) // ,
        if LogLineFormatter.isReserved(field.key) {
            jsonString("metadata." + field.key)
        } else {
            jsonString(field.key)
        }
        bytes.append(ASCII.colon)
        jsonValue(field.value)
    }

    mutating func jsonValue(_ value: Logger.MetadataValue) {
        switch value {
        case .string(let text):
            jsonString(text)
        case .stringConvertible(let convertible):
            jsonString(convertible.description)
        case .array(let array):
            bytes.append(ASCII.openBracket)
            for (index, element) in array.enumerated() {
                if index > 0 { bytes.append(0x2C) }
                jsonValue(element)
            }
            bytes.append(ASCII.closeBracket)
        case .dictionary(let dictionary):
            bytes.append(ASCII.openBrace)
            for (index, entry) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(0x2C) }
                jsonString(entry.key)
                bytes.append(ASCII.colon)
                jsonValue(entry.value)
            }
            bytes.append(ASCII.closeBrace)
        }
    }

    /// The text with JSON escapes: control characters always, `"` and `\` when `quotes`;
    /// U+2028 and U+2029 are escaped too, for JavaScript consumers.
    mutating func escaped(_ text: String, quotes: Bool) {
        var text = text
        text.withUTF8 { utf8 in
            let count = utf8.count
            var runStart = 0
            var index = 0
            while index < count {
                let byte = utf8[index]
                let escape: Bool
                if byte < 0x20 {
                    escape = true
                } else if byte == ASCII.quote || byte == ASCII.backslash {
                    escape = quotes
                } else if byte == 0xE2, index + 2 < count, utf8[index + 1] == 0x80, utf8[index + 2] & 0xFE == 0xA8 {
                    escape = true
                } else {
                    index += 1
                    continue
                }
                guard escape else {
                    index += 1
                    continue
                }
                if runStart < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                switch byte {
                case ASCII.quote: bytes.append(contentsOf: [ASCII.backslash, ASCII.quote])
                case ASCII.backslash: bytes.append(contentsOf: [ASCII.backslash, ASCII.backslash])
                case 0x0A: bytes.append(contentsOf: [ASCII.backslash, 0x6E]) // \n
                case 0x0D: bytes.append(contentsOf: [ASCII.backslash, 0x72]) // \r
                case 0x09: bytes.append(contentsOf: [ASCII.backslash, 0x74]) // \t
                case 0x08: bytes.append(contentsOf: [ASCII.backslash, 0x62]) // \b
                case 0x0C: bytes.append(contentsOf: [ASCII.backslash, 0x66]) // \f
                case 0xE2:
                    bytes.append(contentsOf: Array(#"\u202"#.utf8))
                    bytes.append(utf8[index + 2] == 0xA8 ? 0x38 : 0x39)
                    index += 2
                default:
                    bytes.append(contentsOf: [ASCII.backslash, 0x75, 0x30, 0x30]) // \u00
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0x0F)])
                }
                index += 1
                runStart = index
            }
            if runStart < count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count])) }
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
