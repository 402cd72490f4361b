/// An error with a code the HTTP API and CLI map to a status and an exit code, and a message that
/// says what to do.
public struct DeerFlowError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The `Retry-After` (seconds) of an `.unavailable` answer, API and UI alike: a store that
    /// does not answer (PostgreSQL down) usually comes back within seconds.
    package static let retryAfterSeconds = 5

    /// What kind of error; stable strings used in API error bodies.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Malformed input (400).
        public static let badRequest = Code("bad_request")
        /// Missing or wrong bearer token (401).
        public static let unauthorized = Code("unauthorized")
        /// A valid token whose role does not allow the request (403).
        public static let forbidden = Code("forbidden")
        /// Unknown workflow, run or task (404).
        public static let notFound = Code("not_found")
        /// The request conflicts with the current state, e.g. cancelling a finished run (409).
        public static let conflict = Code("conflict")
        /// Body too large (413).
        public static let payloadTooLarge = Code("payload_too_large")
        /// Parameters that do not match the workflow's declaration (422).
        public static let invalidParams = Code("invalid_params")
        /// A well-formed request the server will not carry out as asked, e.g. a backfill range over
        /// a limit (422); the message names the limit.
        public static let invalidRequest = Code("invalid_request")
        /// A retry naming unknown tasks, or a task whose failed dependency is left out (422).
        public static let invalidTasks = Code("invalid_tasks")
        /// The store or another dependency failed (503).
        public static let unavailable = Code("unavailable")
        /// A bug or an unexpected failure (500).
        public static let `internal` = Code("internal")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
