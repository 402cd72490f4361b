import DeerFlowCore
import Foundation
import OpenAPIRuntime

/// How the API's server and client encode values: compact JSON with sorted keys (the bytes the
/// API has always sent), times as RFC 3339 in UTC with milliseconds.
package enum APICoding {
    /// The generated server's and client's configuration.
    package static let configuration = Configuration(
        dateTranscoder: TimestampTranscoder(),
        jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes])
}

/// RFC 3339 times with milliseconds (`2024-06-01T12:00:00.123Z`) through ``Timestamp``, which
/// formats without Foundation's date formatters (and their lock).
package struct TimestampTranscoder: DateTranscoder {
    package init() {}

    package func encode(_ date: Date) throws -> String { Timestamp.rfc3339(date) }

    package func decode(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time"))
        }
        // A parsed `…00.123Z` can lie a hair below .123 and format back as `.122`; the API's times
        // are whole milliseconds, so snap to the millisecond when within a microsecond of one.
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        let snapped = Date(timeIntervalSince1970: milliseconds / 1000)
        return abs(snapped.timeIntervalSince(date)) < 0.000_001 ? snapped : date
    }
}
