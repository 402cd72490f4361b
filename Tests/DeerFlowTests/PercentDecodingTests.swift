@testable import DeerFlowHTTP
import Testing

/// The API's own percent decoding (response `Location` headers, query values in error messages)
/// agrees with Foundation's on what users send and refuses what Foundation refuses.
@Suite struct PercentDecodingTests {
    @Test func decodesWhatTheGeneratedSerializerEncodes() {
        #expect(RequestShapeMiddleware.percentDecoded("%2Fapi%2Fv1%2Fruns%2F01ABC") == "/api/v1/runs/01ABC")
        #expect(RequestShapeMiddleware.percentDecoded("%2fa%2Fb") == "/a/b")
        #expect(RequestShapeMiddleware.percentDecoded("caf%C3%A9%20ol%C3%A9") == "café olé")
    }

    @Test func leavesTextWithoutEscapesAlone() {
        #expect(RequestShapeMiddleware.percentDecoded("/api/v1/runs/01ABC") == nil)
        #expect(RequestShapeMiddleware.percentDecoded("") == nil)
    }

    @Test func refusesMalformedEscapesAndNonUTF8() {
        for text in ["%", "%2", "abc%zz", "%2G", "%FF", "%C3"] {
            #expect(RequestShapeMiddleware.percentDecoded(text) == nil, "\(text)")
        }
    }

    @Test func queryValuesAreDecoded() {
        let items = RequestDiagnosis.queryItems("/api/v1/runs?status=runn%69ng&limit=%zz&cursor=")
        #expect(items == ["status": "running", "limit": "%zz", "cursor": ""])
    }
}
