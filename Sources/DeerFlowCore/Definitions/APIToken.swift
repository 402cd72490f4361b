/// What a token may do through the API and the UI.
public enum APIRole: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Reads: every GET.
    case viewer
    /// Reads, and operates runs and schedules: trigger, cancel, retry, rerun, pause, unpause, backfill.
    case `operator`
    /// Everything, including maintenance (purge) and the Alertmanager receiver.
    case admin

    private var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: APIRole, rhs: APIRole) -> Bool { lhs.rank < rhs.rank }
}

/// A bearer token of `api.tokens` with its role. A token written as a plain string is `admin`
/// (what every token could do before roles existed).
public struct APIToken: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var value: String
    public var role: APIRole

    public init(_ value: String, role: APIRole = .admin) {
        self.value = value
        self.role = role
    }

    public init(stringLiteral value: String) {
        self.init(value)
    }

    /// Never the token itself: descriptions end up in logs.
    public var description: String { "APIToken(\(role.rawValue))" }

    /// The token `given` equals, compared with every token without stopping early, so the time
    /// taken tells nothing about how much of a token matched; nil when none.
    public static func match(_ given: some StringProtocol, in tokens: [APIToken]) -> APIToken? {
        let given = Array(given.utf8)
        var found: APIToken?
        for token in tokens {
            let expected = Array(token.value.utf8)
            var difference = UInt8(expected.count == given.count ? 0 : 1)
            for index in 0..<min(expected.count, given.count) { difference |= expected[index] ^ given[index] }
            if difference == 0 && !given.isEmpty && found == nil { found = token }
        }
        return found
    }
}
