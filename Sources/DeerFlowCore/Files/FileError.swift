/// One problem in a file a user wrote (a workflow file, a config file), located at a line and column
/// and naming the offending key, so the message says exactly what to fix.
///
/// ```
/// workflows/etl.yaml:12:14: tasks[1].retries: expected an integer, got 'three'
/// ```
public struct FileError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Path of the file, as given to the loader.
    public var file: String
    /// 1-based line; 0 when the problem concerns the file as a whole (missing, unreadable).
    public var line: Int
    /// 1-based column; 0 when the problem concerns the file as a whole.
    public var column: Int
    /// Path of the offending key inside the document (`tasks[1].retries`); empty for the whole document.
    public var key: String
    /// What is wrong, and where possible what to write instead.
    public var message: String

    public init(file: String, line: Int, column: Int, key: String = "", message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    /// `<file>:<line>:<column>: <key>: <message>`, without `<key>: ` when the key is empty.
    public var description: String {
        key.isEmpty ? "\(file):\(line):\(column): \(message)" : "\(file):\(line):\(column): \(key): \(message)"
    }
}

/// Every problem found in one or more files; loaders collect them all instead of stopping at the first.
public struct FileErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [FileError]

    public init(errors: [FileError]) {
        self.errors = errors
    }

    /// One error per line, in the order they were found.
    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
