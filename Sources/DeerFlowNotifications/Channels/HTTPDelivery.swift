import AsyncHTTPClient
import DeerFlowCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// One JSON POST with the status classification every HTTP channel shares: 2xx is success, 429 and
/// 5xx are retryable (with `Retry-After`), other statuses are permanent, transport failures retryable.
struct HTTPDelivery: Sendable {
    let client: HTTPClient
    let channel: String
    let timeout: Duration
    let logger: Logger

    /// The answer to a successful request.
    struct Answer: Sendable {
        var status: Int
        var body: String
    }

    /// Largest response body read; longer ones are cut.
    static let maximumBody = 64 * 1024

    func postJSON(_ body: JSONValue, to url: String) async throws(DeliveryError) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "DeerFlow")
        request.body = .bytes(ByteBuffer(string: body.compactJSON))
        let status: Int
        let headers: HTTPHeaders
        var text = ""
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)), logger: logger)
            status = Int(response.status.code)
            headers = response.headers
            var collected = ByteBuffer()
            for try await var chunk in response.body {
                if collected.readableBytes < Self.maximumBody {
                    let room = Self.maximumBody - collected.readableBytes
                    if chunk.readableBytes > room { chunk = chunk.getSlice(at: chunk.readerIndex, length: room) ?? chunk }
                    collected.writeImmutableBuffer(chunk)
                }
            }
            text = String(buffer: collected)
        } catch {
            throw Self.transportError(error, channel: channel, url: url, timeout: timeout)
        }
        logger.debug("notification POST answered", metadata: ["channel": "\(channel)", "status": "\(status)"])
        let shown = Self.shorten(text)
        switch status {
        case 200..<300:
            return Answer(status: status, body: text)
        case 429:
            let retryAfter = headers.first(name: "Retry-After").flatMap { Self.parseRetryAfter($0) }
            throw DeliveryError(code: .rateLimited, channel: channel, message: "rate limited (HTTP 429)\(shown)", statusCode: status, retryAfter: retryAfter)
        case 500..<600:
            let retryAfter = headers.first(name: "Retry-After").flatMap { Self.parseRetryAfter($0) }
            throw DeliveryError(code: .serverError, channel: channel, message: "server error (HTTP \(status))\(shown)", statusCode: status, retryAfter: retryAfter)
        default:
            throw DeliveryError(code: .rejected, channel: channel, message: "rejected (HTTP \(status))\(shown)", statusCode: status)
        }
    }

    /// `: <body>` for messages, on one line and at most 300 characters; empty for an empty body.
    static func shorten(_ body: String) -> String {
        let line = body.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ")
        if line.isEmpty { return "" }
        return ": " + (line.count > 300 ? line.prefix(300) + "..." : line)
    }

    static func transportError(_ error: any Error, channel: String, url: String, timeout: Duration) -> DeliveryError {
        if let error = error as? HTTPClientError {
            let timeouts: [HTTPClientError] = [.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout]
            if timeouts.contains(error) {
                return DeliveryError(code: .timeout, channel: channel, message: "no answer from \(url) within \(DurationText.format(timeout))")
            }
            if [HTTPClientError.invalidURL, .emptyHost, .emptyScheme].contains(error) || "\(error)".contains("unsupportedScheme") {
                return DeliveryError(code: .invalidConfiguration, channel: channel, message: "cannot POST to '\(url)': \(error)")
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return DeliveryError(code: .timeout, channel: channel, message: "connecting to \(url) timed out")
        }
        return DeliveryError(code: .connectionFailed, channel: channel, message: "cannot reach \(url): \(error)")
    }

    /// `Retry-After` as a duration from `now`: delay-seconds (`120`) or an HTTP-date in any of the
    /// three formats of RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
    /// `Sun Nov  6 08:49:37 1994`). A date in the past gives zero; anything else nil.
    static func parseRetryAfter(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return Int64(text).map { .seconds($0) } ?? .seconds(Int64.max / 1_000_000_000_000)
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        let collapsed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: collapsed) {
                let seconds = date.timeIntervalSince(now)
                return seconds > 0 ? .milliseconds(Int64((seconds * 1000).rounded(.up))) : .zero
            }
        }
        return nil
    }
}
