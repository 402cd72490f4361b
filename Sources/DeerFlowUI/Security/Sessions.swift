import DeerFlowCore
import Foundation
import Hummingbird
import Synchronization

/// Browser sessions of the UI when API tokens are configured: a login with a token creates a
/// session, kept in this process's memory (a restart logs everyone out; behind a load balancer,
/// pin sessions to a process), and named by a random id in an HttpOnly, SameSite=Strict cookie.
/// The token itself never leaves the login form: not in a cookie, not in a URL.
final class Sessions: Sendable {
    static let cookieName = "deerflow_session"
    static let csrfCookieName = "deerflow_csrf"

    let tokens: [APIToken]
    let lifetime: Duration
    let secureCookies: Bool
    /// Each session's expiry and the role of the token it was opened with.
    private let sessions = Mutex<[String: (expires: Date, role: APIRole)]>([:])

    init(tokens: [APIToken], lifetime: Duration, secureCookies: Bool) {
        self.tokens = tokens
        self.lifetime = lifetime
        self.secureCookies = secureCookies
    }

    /// Whether the UI asks for a login at all (it is as open as the API without tokens).
    var required: Bool { !tokens.isEmpty }

    /// The API token `given` is (compared without stopping early); nil when none.
    func accepts(token given: String) -> APIToken? {
        APIToken.match(given, in: tokens)
    }

    /// Starts a session with the role of the token it was opened with; returns its cookie.
    func create(role: APIRole, now: Date = Date()) -> Cookie {
        let id = Self.randomToken()
        let expires = now.addingTimeInterval(Double(lifetime.components.seconds))
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expires > now }
            sessions[id] = (expires, role)
        }
        return cookie(Self.cookieName, id, maxAge: Int(lifetime.components.seconds))
    }

    /// The role of the request's live session; nil without one.
    func role(_ request: Request, now: Date = Date()) -> APIRole? {
        guard let id = request.cookies[Self.cookieName]?.value else { return nil }
        return sessions.withLock { sessions in
            guard let session = sessions[id] else { return nil }
            if session.expires <= now {
                sessions[id] = nil
                return nil
            }
            return session.role
        }
    }

    /// Whether the request carries a live session.
    func isValid(_ request: Request, now: Date = Date()) -> Bool {
        role(request, now: now) != nil
    }

    /// Ends the request's session; returns the cookie that clears it.
    func end(_ request: Request) -> Cookie {
        if let id = request.cookies[Self.cookieName]?.value { _ = sessions.withLock { $0.removeValue(forKey: id) } }
        return cookie(Self.cookieName, "", maxAge: 0)
    }

    /// The CSRF token of the request's browser (a double-submit cookie: every form carries it,
    /// and a POST is accepted only when the form's value equals the cookie's), and the cookie to
    /// set when the browser has none yet.
    func csrf(for request: Request) -> (token: String, cookie: Cookie?) {
        if let existing = request.cookies[Self.csrfCookieName]?.value, existing.count == 32, existing.allSatisfy(\.isHexDigit) {
            return (existing, nil)
        }
        let token = Self.randomToken()
        return (token, cookie(Self.csrfCookieName, token, maxAge: nil))
    }

    /// Whether a form's CSRF value matches the request's cookie.
    func checkCSRF(_ request: Request, formValue: String?) -> Bool {
        guard let cookie = request.cookies[Self.csrfCookieName]?.value, let formValue, cookie.count == 32 else { return false }
        return Array(cookie.utf8) == Array(formValue.utf8)
    }

    private func cookie(_ name: String, _ value: String, maxAge: Int?) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    /// 128 random bits as 32 hex digits.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next()
        let low: UInt64 = generator.next()
        return hex(high) + hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
