import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// gzip for the UI's pages, stylesheet and script when the browser accepts it (every browser
/// does): HTML of DAGs and tables shrinks about tenfold, so a 500-task run page travels as a
/// small fraction of its size. The API's JSON, task logs and the live stream are sent as they are.
///
/// The compression is CompressNIO's (zlib); only the choice of what to compress and when is here.
/// Level 1: most of the gain at a fraction of the default level's CPU time, so live pages that
/// fetch again on every change stay cheap.
enum Compression {
    /// Bodies smaller than this go as they are: the gzip header and a round of zlib cost more.
    static let minimumBytes = 1024

    static let algorithm = CompressionAlgorithm.gzip(configuration: .init(compressionLevel: .fastestCompression))

    /// Whether the request's `Accept-Encoding` names gzip (or `*`) without `q=0` (RFC 9110 §12.5.3).
    static func acceptsGzip(_ request: Request) -> Bool {
        guard let header = request.headers[.acceptEncoding] else { return false }
        for entry in header.split(separator: ",") {
            let parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first, coding == "gzip" || coding == "*" else { continue }
            let refused = parts.dropFirst().contains { parameter in
                guard parameter.hasPrefix("q=") else { return false }
                return (Double(parameter.dropFirst(2)) ?? 1) == 0
            }
            if !refused { return true }
        }
        return false
    }

    /// The body of `text` for `request`: gzip-compressed, with `Content-Encoding` set in
    /// `headers`, when the request accepts it and the text is worth it; the text as it is otherwise.
    /// `Vary: Accept-Encoding` is set either way, so a cache keeps the two apart.
    static func body(_ text: String, for request: Request, headers: inout HTTPFields) -> ResponseBody {
        headers[.vary] = "Accept-Encoding"
        let plain = ByteBuffer(string: text)
        // Compressing reads (moves the reader index of) a copy; `plain` stays whole for the fallback.
        var input = plain
        guard plain.readableBytes >= minimumBytes, acceptsGzip(request), let compressed = try? input.compress(with: algorithm) else {
            return .init(byteBuffer: plain)
        }
        headers[.contentEncoding] = "gzip"
        return .init(byteBuffer: compressed)
    }
}
