import Foundation
import NIOCore

/// One line waiting to be shipped: its `_bulk` action line (which names the index of the line's
/// UTC day) and the line itself, the document.
struct BulkEntry: Sendable {
    var action: String
    var document: String
}

/// The body of a `_bulk` request: for every line an action line and the document line, each ended
/// by `\n` (the body ends with a newline, as the API requires).
///
/// ```
/// {"index":{"_index":"deerflow-logs-2024.06.01"}}
/// {"timestamp":"2024-06-01T12:00:00.123Z","level":"info","logger":"deerflow","message":"task started"}
/// ```
enum BulkRequest {
    /// `{"index":{"_index":"<index>"}}`.
    static func actionLine(index: String) -> String {
        var line = #"{"index":{"_index":""#
        for scalar in index.unicodeScalars {
            switch scalar {
            case "\"": line += #"\""#
            case "\\": line += #"\\"#
            case _ where scalar.value < 0x20: line += String(format: "\\u%04x", scalar.value)
            default: line.unicodeScalars.append(scalar)
            }
        }
        line += #""}}"#
        return line
    }

    static func body(_ entries: [BulkEntry]) -> ByteBuffer {
        var size = 0
        for entry in entries { size += entry.action.utf8.count + entry.document.utf8.count + 2 }
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        for entry in entries {
            buffer.writeString(entry.action)
            buffer.writeInteger(UInt8(ascii: "\n"))
            buffer.writeString(entry.document)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }

    /// The line with any raw line break replaced by a space, so that it stays one NDJSON line.
    /// (JSON lines from ``LogLineFormatter`` never contain one; a line passed by other code might.)
    static func singleLine(_ line: String) -> String {
        guard line.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) else { return line }
        return String(line.map { $0 == "\n" || $0 == "\r" || $0 == "\r\n" ? " " : $0 })
    }
}

/// What a `_bulk` answer with status 2xx says about the lines of the request.
enum BulkResponse: Equatable {
    /// What happened to one line, from its entry in `items`.
    enum Item: Equatable {
        case shipped
        /// 429 or 5xx for this line (`es_rejected_execution_exception`): send it again.
        case retry(kind: String, reason: String)
        /// Any other status (a mapping error, 400): sending it again would fail again.
        case rejected(kind: String, reason: String)
    }

    /// `"errors": false`: every line was indexed.
    case allShipped
    /// `"errors": true`: one entry per line of the request, in order.
    case items([Item])
    /// Not the JSON of a `_bulk` answer.
    case unreadable(String)

    static func parse(_ body: ByteBuffer) -> BulkResponse {
        // Elasticsearch writes `"errors"` near the start: skip decoding the items of a clean answer.
        let head = body.getString(at: body.readerIndex, length: min(body.readableBytes, 256)) ?? ""
        let compact = head.filter { !$0.isWhitespace }
        if compact.hasPrefix("{"), let clean = compact.range(of: #""errors":false"#) {
            let items = compact.range(of: #""items":"#)
            if items.map({ $0.lowerBound > clean.lowerBound }) ?? true { return .allShipped }
        }
        let decoded: Answer
        do {
            decoded = try JSONDecoder().decode(Answer.self, from: Data(body.readableBytesView))
        } catch {
            return .unreadable(head.isEmpty ? "empty body" : "not a _bulk answer: \(head.prefix(120))")
        }
        guard decoded.errors else { return .allShipped }
        let items = (decoded.items ?? []).map { entry -> Item in
            guard let result = entry.values.first else { return .rejected(kind: "malformed_response", reason: "empty item") }
            let kind = result.error?.type ?? "HTTP \(result.status)"
            let reason = result.error?.reason ?? ""
            switch result.status {
            case 200..<300: return .shipped
            case 429, 500...: return .retry(kind: kind, reason: reason)
            default: return .rejected(kind: kind, reason: reason)
            }
        }
        return .items(items)
    }

    private struct Answer: Decodable {
        var errors: Bool
        var items: [[String: ItemResult]]?
    }

    private struct ItemResult: Decodable {
        var status: Int
        var error: ItemError?
    }

    /// `{"type": "mapper_parsing_exception", "reason": "..."}`; very old versions send a string.
    private struct ItemError: Decodable {
        var type: String?
        var reason: String?

        private enum Keys: String, CodingKey { case type, reason }

        init(from decoder: any Decoder) throws {
            if let container = try? decoder.container(keyedBy: Keys.self) {
                type = try? container.decode(String.self, forKey: .type)
                reason = try? container.decode(String.self, forKey: .reason)
            } else {
                type = nil
                reason = try? decoder.singleValueContainer().decode(String.self)
            }
        }
    }
}

/// Exponential backoff with jitter between failed `_bulk` requests.
struct Backoff: Sendable {
    /// Delay after the first failure (before jitter). Default 100 ms.
    var initial: Duration = .milliseconds(100)
    /// Longest delay. Default 30 s.
    var maximum: Duration = .seconds(30)

    /// After `failures` failures in a row (1 for the first): `initial × 2^(failures − 1)`, at most
    /// `maximum`, then a random point between half of it and all of it ("equal jitter"), so that
    /// many processes do not retry in step.
    ///
    /// - Parameter random: A number in 0...1; default a random one.
    func delay(afterFailures failures: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let exponent = Double(min(max(failures - 1, 0), 60))
        let initialSeconds = Self.seconds(initial)
        let base = min(Self.seconds(maximum), initialSeconds * pow(2, exponent))
        let seconds = base / 2 + base / 2 * min(max(random, 0), 1)
        return .nanoseconds(Int64(seconds * 1e9))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
