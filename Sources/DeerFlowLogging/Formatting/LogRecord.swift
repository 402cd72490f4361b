public import Foundation
public import Logging

/// One log statement after redaction: what every sink receives next to its formatted line.
public struct LogRecord: Sendable {
    /// One metadata key and its value.
    public struct Field: Sendable, Equatable {
        public let key: String
        public var value: Logger.MetadataValue
        /// Position of the key among ``LogRecord/taskKeys``; `Int.max` for other keys.
        let rank: Int

        public init(key: String, value: Logger.MetadataValue) {
            self.key = key
            self.value = value
            rank = LogRecord.taskKeyRank(key)
        }

        public static func == (lhs: Field, rhs: Field) -> Bool {
            lhs.key == rhs.key && lhs.value == rhs.value
        }

        /// Whether this field goes before `other` in output order.
        @inline(__always) func precedes(_ other: Field) -> Bool {
            LogRecord.precedes(rank, key, other.rank, other.key)
        }
    }

    /// When the record was made.
    public var timestamp: Date
    public var level: Logger.Level
    /// The logger's label (`deerflow.worker`).
    public var label: String
    /// The message, redacted.
    public var message: String
    /// Every metadata key (the handler's, the metadata provider's, the statement's; one field per
    /// key), redacted, in output order: the task keys first in ``taskKeys`` order, then the others
    /// sorted by key.
    public var fields: [Field] {
        get { trailingFields.isEmpty ? leadingFields : leadingFields + trailingFields }
        set {
            leadingFields = newValue
            trailingFields = []
            leadingJSON = nil
        }
    }

    /// ``fields`` is `leadingFields` followed by `trailingFields`. The split lets the JSON of a
    /// logger's own metadata (`leadingJSON`: `,"key":value` per field) be made once, when the
    /// metadata is set, instead of at every statement.
    var leadingFields: [Field]
    var trailingFields: [Field] = []
    var leadingJSON: [UInt8]?

    /// The fields as metadata.
    public var metadata: Logger.Metadata {
        var metadata = Logger.Metadata(minimumCapacity: fields.count)
        for field in fields { metadata[field.key] = field.value }
        return metadata
    }

    /// A record with `metadata` put in output order (not redacted: the backend redacts).
    public init(timestamp: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata = [:]) {
        var fields = metadata.map { Field(key: $0.key, value: $0.value) }
        Self.order(&fields)
        self.init(timestamp: timestamp, level: level, label: label, message: message, orderedFields: fields)
    }

    init(
        timestamp: Date, level: Logger.Level, label: String, message: String, orderedFields: [Field],
        trailingFields: [Field] = [], leadingJSON: [UInt8]? = nil
    ) {
        self.timestamp = timestamp
        self.level = level
        self.label = label
        self.message = message
        leadingFields = orderedFields
        self.trailingFields = trailingFields
        self.leadingJSON = leadingJSON
    }

    /// Keys of task records, written first and in this order; other keys follow sorted.
    public static let taskKeys = ["workflow", "workflow_id", "run_id", "task_id", "execution_id", "attempt", "trace_id", "span_id"]

    /// Sorts fields into output order. Of fields with the same key, the last one stays: append the
    /// logger's metadata first and the statement's last.
    static func order(_ fields: inout [Field]) {
        guard fields.count > 1 else { return }
        // Through the buffer, fields are compared in place and swapped without being copied
        // (through the array, each comparison copied both fields: a third of this function's time).
        let count = fields.withUnsafeMutableBufferPointer { fields -> Int in
            // Insertion sort, stable: metadata has a handful of keys.
            for index in 1..<fields.count {
                var position = index
                while position > 0,
                      Self.precedes(fields[position].rank, fields[position].key, fields[position - 1].rank, fields[position - 1].key) {
                    fields.swapAt(position, position - 1)
                    position -= 1
                }
            }
            // Equal keys are adjacent now, in the order they were appended: keep the last.
            var write = 0
            for read in 0..<fields.count {
                if write > 0, fields[write - 1].rank == fields[read].rank, fields[write - 1].key == fields[read].key {
                    fields.swapAt(write - 1, read)
                } else {
                    if write != read { fields.swapAt(write, read) }
                    write += 1
                }
            }
            return write
        }
        if count < fields.count { fields.removeLast(fields.count - count) }
    }

    /// The output order: whether a field (its rank and key) goes before another. By rank, and by
    /// key for two keys outside ``taskKeys`` (only those compare strings).
    @inline(__always) static func precedes(_ rank: Int, _ key: String, _ otherRank: Int, _ otherKey: String) -> Bool {
        if rank != otherRank { return rank < otherRank }
        return rank == Int.max && key < otherKey
    }

    /// Two ordered, duplicate-free field lists as one; `overriding` wins for a key in both.
    static func merge(_ base: [Field], overriding: [Field]) -> [Field] {
        if overriding.isEmpty { return base }
        if base.isEmpty { return overriding }
        var result: [Field] = []
        result.reserveCapacity(base.count + overriding.count)
        var left = 0
        var right = 0
        while left < base.count, right < overriding.count {
            let baseField = base[left]
            let overridingField = overriding[right]
            if overridingField.precedes(baseField) {
                result.append(overridingField)
                right += 1
            } else if baseField.precedes(overridingField) {
                result.append(baseField)
                left += 1
            } else {
                result.append(overridingField)
                left += 1
                right += 1
            }
        }
        if left < base.count { result.append(contentsOf: base[left...]) }
        if right < overriding.count { result.append(contentsOf: overriding[right...]) }
        return result
    }

    /// Position of a task key in ``taskKeys``; `Int.max` for other keys. By length first: a key
    /// is compared with at most three names of its length instead of all eight (every field of
    /// every statement goes through here).
    @inline(__always) static func taskKeyRank(_ key: String) -> Int {
        switch key.utf8.count {
        case 6: return key == "run_id" ? 2 : .max
        case 7: return key == "task_id" ? 3 : key == "attempt" ? 5 : key == "span_id" ? 7 : .max
        case 8: return key == "workflow" ? 0 : key == "trace_id" ? 6 : .max
        case 11: return key == "workflow_id" ? 1 : .max
        case 12: return key == "execution_id" ? 4 : .max
        default: return .max
        }
    }
}
