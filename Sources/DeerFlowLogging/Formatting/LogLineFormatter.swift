import DeerFlowCore
import Foundation
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
        writer.raw(#"{"timestamp":""# as StaticString)
        writer.timestamp(record.timestamp)
        writer.raw(#"","level":""# as StaticString)
        writer.raw(record.level.rawValue)
        writer.raw(#"","logger":"# as StaticString)
        writer.jsonString(record.label)
        writer.raw(#","message":"# as StaticString)
        writer.jsonString(record.message)
        if let leadingJSON = record.leadingJSON {
            writer.append(leadingJSON)
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
        writer.timestamp(record.timestamp)
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
        // By length first, like ``LogRecord/taskKeyRank(_:)``.
        switch key.utf8.count {
        case 5: return key == "level"
        case 6: return key == "logger"
        case 7: return key == "message"
        case 9: return key == "timestamp"
        default: return false
        }
    }
    static let upperLevelNames: [Logger.Level: String] = Dictionary(
        uniqueKeysWithValues: Logger.Level.allCases.map { ($0, $0.rawValue.uppercased()) })
}

/// A line being built as UTF-8 bytes, in memory managed here rather than in an `[UInt8]`: a
/// JSON line is some twenty appends, and each `Array.append(contentsOf:)` went through a generic
/// path checking uniqueness and capacity (~100 instructions each, a sixth of a line's formatting).
struct LineWriter: ~Copyable {
    private var start: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 32)
        start = .allocate(capacity: self.capacity)
    }

    deinit {
        start.deallocate()
    }

    /// The line as a string (one copy, validated as UTF-8).
    var string: String {
        String(unsafeUninitializedCapacity: count) { buffer in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: start, count: count))
            return count
        }
    }

    /// The line as bytes.
    var bytes: [UInt8] { Array(UnsafeBufferPointer(start: start, count: count)) }

    /// Room for `extra` more bytes; where they go.
    @inline(__always) private mutating func reserve(_ extra: Int) -> UnsafeMutablePointer<UInt8> {
        if count + extra > capacity { grow(to: count + extra) }
        return start + count
    }

    private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newStart = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newStart.initialize(from: start, count: count)
        start.deallocate()
        start = newStart
        capacity = newCapacity
    }

    @inline(__always) mutating func byte(_ byte: UInt8) {
        reserve(1).initialize(to: byte)
        count += 1
    }

    @inline(__always) mutating func append(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let base = buffer.baseAddress else { return }
        reserve(buffer.count).initialize(from: base, count: buffer.count)
        count += buffer.count
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    mutating func raw(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    /// A literal, without going through a `String`.
    @inline(__always) mutating func raw(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// The date as ``Timestamp/rfc3339(_:)`` writes it.
    mutating func timestamp(_ date: Date) {
        Timestamp.withRFC3339(date) { append($0) }
    }

    /// A backslash and `letter` (`\n`).
    @inline(__always) mutating func backslashed(_ letter: UInt8) {
        byte(ASCII.backslash)
        byte(letter)
    }

    /// A JSON string literal, quotes included.
    mutating func jsonString(_ text: String) {
        byte(ASCII.quote)
        escaped(text, quotes: true)
        byte(ASCII.quote)
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
        if field.rank < Self.taskKeyPrefixes.count {
            append(Self.taskKeyPrefixes[field.rank])
            jsonValue(field.value)
            return
        }
        byte(0x2C) // ,
        if LogLineFormatter.isReserved(field.key) {
            jsonString("metadata." + field.key)
        } else {
            jsonString(field.key)
        }
        byte(ASCII.colon)
        jsonValue(field.value)
    }

    mutating func jsonValue(_ value: Logger.MetadataValue) {
        switch value {
        case .string(let text):
            jsonString(text)
        case .stringConvertible(let convertible):
            jsonString(convertible.description)
        case .array(let array):
            byte(ASCII.openBracket)
            for (index, element) in array.enumerated() {
                if index > 0 { byte(0x2C) }
                jsonValue(element)
            }
            byte(ASCII.closeBracket)
        case .dictionary(let dictionary):
            byte(ASCII.openBrace)
            for (index, entry) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { byte(0x2C) }
                jsonString(entry.key)
                byte(ASCII.colon)
                jsonValue(entry.value)
            }
            byte(ASCII.closeBrace)
        }
    }

    /// The text with JSON escapes: control characters always, `"` and `\` when `quotes`;
    /// U+2028 and U+2029 are escaped too, for JavaScript consumers.
    mutating func escaped(_ text: String, quotes: Bool) {
        var text = text
        text.withUTF8 { utf8 in
            guard let base = UnsafeRawPointer(utf8.baseAddress) else { return }
            let count = utf8.count
            var runStart = 0
            var index = 0
            while index < count {
                // A word at a time while no byte can need an escape; the bytes of a word that
                // may, one at a time.
                let chunkEnd: Int
                if index + 8 <= count {
                    guard Self.mayNeedEscape(base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) else {
                        index += 8
                        continue
                    }
                    chunkEnd = index + 8
                } else {
                    chunkEnd = count
                }
                while index < chunkEnd {
                    let code = utf8[index]
                    let escape: Bool
                    if code < 0x20 {
                        escape = true
                    } else if code == ASCII.quote || code == ASCII.backslash {
                        escape = quotes
                    } else if code == 0xE2, index + 2 < count, utf8[index + 1] == 0x80, utf8[index + 2] & 0xFE == 0xA8 {
                        escape = true
                    } else {
                        escape = false
                    }
                    guard escape else {
                        index += 1
                        continue
                    }
                    if runStart < index { append(UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                    switch code {
                    case ASCII.quote: backslashed(ASCII.quote)
                    case ASCII.backslash: backslashed(ASCII.backslash)
                    case 0x0A: backslashed(0x6E) // \n
                    case 0x0D: backslashed(0x72) // \r
                    case 0x09: backslashed(0x74) // \t
                    case 0x08: backslashed(0x62) // \b
                    case 0x0C: backslashed(0x66) // \f
                    case 0xE2:
                        raw(#"\u202"# as StaticString)
                        byte(utf8[index + 2] == 0xA8 ? 0x38 : 0x39)
                        index += 2
                    default:
                        raw(#"\u00"# as StaticString)
                        byte(Self.hexDigits[Int(code >> 4)])
                        byte(Self.hexDigits[Int(code & 0x0F)])
                    }
                    index += 1
                    runStart = index
                }
            }
            if runStart < count { append(UnsafeBufferPointer(rebasing: utf8[runStart..<count])) }
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `,"workflow":` and so on for each of ``LogRecord/taskKeys`` (in every task record; none
    /// needs escaping).
    static let taskKeyPrefixes: [[UInt8]] = LogRecord.taskKeys.map { Array(",\"\($0)\":".utf8) }

    /// Whether any of the eight bytes of `word` may need attention in ``escaped(_:quotes:)``: a
    /// control character, `"`, `\`, or a non-ASCII byte (U+2028 and U+2029 start with one). The
    /// usual text has none, and is then checked a word at a time instead of byte by byte (each
    /// test is the classic "has a byte below n" / "has a zero byte" bit trick; a false positive
    /// only sends the word through the byte loop).
    @inline(__always) static func mayNeedEscape(_ word: UInt64) -> Bool {
        let highBits: UInt64 = 0x8080_8080_8080_8080
        let control = (word &- 0x2020_2020_2020_2020) & ~word & highBits
        return control | ASCII.marks(ASCII.quote, in: word) | ASCII.marks(ASCII.backslash, in: word) | word & highBits != 0
    }
}
