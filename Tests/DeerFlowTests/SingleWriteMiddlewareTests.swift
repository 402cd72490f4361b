@testable import DeerFlowHTTP
import Hummingbird
import Logging
import NIOCore
import Testing

/// Bounded answers leave as one buffer (Hummingbird then writes head and body in one `writev`);
/// streamed and large answers still stream, and nothing is lost on the way.
@Suite struct SingleWriteMiddlewareTests {
    struct Source: RequestContextSource {
        var logger = Logger(label: "test")
    }

    struct Context: RequestContext {
        typealias Source = SingleWriteMiddlewareTests.Source
        var coreContext: CoreRequestContextStorage
        init(source: Source) { coreContext = .init(source: source) }
    }

    /// The parts a response body is written in, and its trailing headers.
    final class Recorder: @unchecked Sendable {
        var parts: [String] = []
        var trailers: HTTPFields?
        var finished = false
    }

    struct RecordingWriter: ResponseBodyWriter {
        let recorder: Recorder
        mutating func write(_ buffer: ByteBuffer) async throws { recorder.parts.append(String(buffer: buffer)) }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            recorder.trailers = trailingHeaders
            recorder.finished = true
        }
    }

    /// The response `body` gets through the middleware, and how its body is then written.
    func pass(_ body: ResponseBody, limit: Int = 1 << 20) async throws -> (Response, Recorder) {
        let middleware = SingleWriteMiddleware<Context>(limit: limit)
        let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/t"), body: RequestBody(buffer: ByteBuffer()))
        let response = try await middleware.handle(request, context: Context(source: Source())) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: body)
        }
        let recorder = Recorder()
        try await response.body.write(RecordingWriter(recorder: recorder))
        return (response, recorder)
    }

    static func parts(_ parts: [String], length: Int?, trailers: HTTPFields? = nil) -> ResponseBody {
        ResponseBody(contentLength: length) { writer in
            for part in parts { try await writer.write(ByteBuffer(string: part)) }
            try await writer.finish(trailers)
        }
    }

    @Test func aBoundedBodyWrittenInPartsLeavesAsOneBuffer() async throws {
        let (response, written) = try await pass(Self.parts([#"{"status":"#, #""alive"}"#, "\n"], length: 19))
        #expect(written.parts == [#"{"status":"alive"}"# + "\n"])
        #expect(written.finished)
        #expect(response.body.contentLength == 19)
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == "application/json")
    }

    @Test func anEmptyBodyStaysEmpty() async throws {
        let (response, written) = try await pass(Self.parts([], length: 0))
        #expect(written.parts.joined() == "")
        #expect(written.finished)
        #expect(response.body.contentLength == 0)
    }

    @Test func aStreamOfUnknownLengthStillStreams() async throws {
        // A followed log: its parts must reach the client as they come.
        let (response, written) = try await pass(Self.parts(["=== attempt 1 ===\n", "line\n"], length: nil))
        #expect(written.parts == ["=== attempt 1 ===\n", "line\n"])
        #expect(response.body.contentLength == nil)
    }

    @Test func aBodyOverTheLimitIsNotBuffered() async throws {
        let (_, written) = try await pass(Self.parts(["abc", "def"], length: 6), limit: 5)
        #expect(written.parts == ["abc", "def"])
    }

    static let checksum = HTTPFields.Element.Name("x-checksum")!

    @Test func trailingHeadersAreKept() async throws {
        let (_, written) = try await pass(Self.parts(["a", "b"], length: 2, trailers: [Self.checksum: "x"]))
        #expect(written.parts == ["ab"])
        #expect(written.trailers?[Self.checksum] == "x")
    }
}
