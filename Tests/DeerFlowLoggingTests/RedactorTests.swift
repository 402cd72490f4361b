import Foundation
import Logging
import Testing

@testable import DeerFlowLogging

@Suite("Redaction")
struct RedactorTests {
    let redactor = try! Redactor(patterns: ["password", "api_key", "secret"])

    // MARK: Metadata keys

    @Test("a key containing a pattern, in any case, has its value hidden")
    func plainKeys() {
        let redacted = redactor.redact([
            "password": "hunter2", "DB_PASSWORD": "x", "X-Api_Key": "k", "clientSecret": "s", "user": "bob", "run_id": "r1",
        ])
        #expect(redacted["password"] == "[REDACTED]")
        #expect(redacted["DB_PASSWORD"] == "[REDACTED]")
        #expect(redacted["X-Api_Key"] == "[REDACTED]")
        #expect(redacted["clientSecret"] == "[REDACTED]")
        #expect(redacted["user"] == "bob")
        #expect(redacted["run_id"] == "r1")
    }

    @Test("the value of a matching key is hidden whatever its type")
    func wholeValues() {
        let redacted = redactor.redact([
            "secret": ["token": "a", "nested": ["x": "y"]],
            "api_keys": ["k1", "k2"],
            "password_length": .stringConvertible(12),
        ])
        #expect(redacted["secret"] == "[REDACTED]")
        #expect(redacted["api_keys"] == "[REDACTED]")
        #expect(redacted["password_length"] == "[REDACTED]")
    }

    @Test("nested dictionaries are redacted at any depth")
    func nested() {
        let redacted = redactor.redact([
            "params": ["database": ["host": "db", "password": "p", "options": ["api_key": "k", "timeout": "5"]], "date": "2024-06-01"]
        ])
        #expect(redacted["params"] == ["database": ["host": "db", "password": "[REDACTED]", "options": ["api_key": "[REDACTED]", "timeout": "5"]], "date": "2024-06-01"])
    }

    @Test("arrays: dictionaries and strings inside lists are redacted")
    func arrays() {
        let redacted = redactor.redact([
            "connections": [["name": "warehouse", "password": "p1"], ["name": "lake", "secret": "s1"]],
            "args": ["--user=bob", "--password=p2", "plain"],
            "matrix": [[["api_key": "k"]]],
        ])
        #expect(redacted["connections"] == [["name": "warehouse", "password": "[REDACTED]"], ["name": "lake", "secret": "[REDACTED]"]])
        #expect(redacted["args"] == ["--user=bob", "--password=[REDACTED]", "plain"])
        #expect(redacted["matrix"] == [[["api_key": "[REDACTED]"]]])
    }

    @Test("substring rule: secretary_count matches secret")
    func substringRule() {
        #expect(redactor.isSensitive(key: "secretary_count"))
        #expect(redactor.redact(["secretary_count": "3"])["secretary_count"] == "[REDACTED]")
        #expect(redactor.redact("secretary_count=3") == "secretary_count=[REDACTED]")
    }

    @Test("^secret$ matches the key secret only, in any case")
    func anchoredPattern() throws {
        let exact = try Redactor(patterns: ["^secret$"])
        #expect(exact.isSensitive(key: "secret"))
        #expect(exact.isSensitive(key: "SECRET"))
        #expect(!exact.isSensitive(key: "secretary_count"))
        #expect(!exact.isSensitive(key: "client_secret"))
        let redacted = exact.redact(["secret": "s", "secretary_count": "3"])
        #expect(redacted["secret"] == "[REDACTED]")
        #expect(redacted["secretary_count"] == "3")
        #expect(exact.redact("secret=s secretary_count=3") == "secret=[REDACTED] secretary_count=3")
        let prefix = try Redactor(patterns: ["^token", "key$"])
        #expect(prefix.isSensitive(key: "token_id"))
        #expect(!prefix.isSensitive(key: "auth_token"))
        #expect(prefix.isSensitive(key: "API_KEY"))
        #expect(!prefix.isSensitive(key: "keyboard"))
    }

    @Test("/regex/ patterns")
    func regexPatterns() throws {
        let regex = try Redactor(patterns: ["/^(pass|pwd)$/", "/secret(_key)?$/"])
        #expect(regex.isSensitive(key: "pass"))
        #expect(regex.isSensitive(key: "PWD"))
        #expect(!regex.isSensitive(key: "password"))
        #expect(!regex.isSensitive(key: "passenger"))
        #expect(regex.isSensitive(key: "client_secret_key"))
        #expect(regex.isSensitive(key: "secret"))
        #expect(!regex.isSensitive(key: "secretary_count"))
        #expect(regex.redact("pwd=x passenger=y") == "pwd=[REDACTED] passenger=y")
        // An anchored pattern that is not a plain word is a regular expression too.
        let anchored = try Redactor(patterns: ["^api[-_]?key$"])
        #expect(anchored.isSensitive(key: "apikey"))
        #expect(anchored.isSensitive(key: "Api-Key"))
        #expect(!anchored.isSensitive(key: "api_key_id"))
    }

    @Test("regular expression answers are remembered per key, and forgotten past a limit")
    func regexAnswers() throws {
        let regex = try Redactor(patterns: ["/^k1$/", "token"])
        for round in 0..<2 {
            for index in 0..<5000 {
                #expect(regex.isSensitive(key: "k\(index)") == (index == 1), "round \(round)")
            }
        }
        #expect(regex.isSensitive(key: "my_token"))
        #expect(regex.redact("k1=a k2=b") == "k1=[REDACTED] k2=b")
    }

    @Test("invalid and empty patterns are refused")
    func invalidPatterns() {
        #expect(throws: Redactor.PatternError.self) { try Redactor(patterns: ["/[a-/"]) }
        #expect(throws: Redactor.PatternError.self) { try Redactor(patterns: [""]) }
        #expect(throws: Redactor.PatternError.self) { try Redactor(patterns: ["//"]) }
    }

    // MARK: Fragments in text

    @Test("key=value fragments", arguments: [
        ("login password=hunter2 user=bob", "login password=[REDACTED] user=bob"),
        ("password = hunter2", "password = [REDACTED]"),
        ("PASSWORD=hunter2", "PASSWORD=[REDACTED]"),
        ("db_password=hunter2,retries=3", "db_password=[REDACTED],retries=3"),
        ("GET /items?api_key=abc123&page=2", "GET /items?api_key=[REDACTED]&page=2"),
        ("api_key=\"two words\" next", "api_key=\"[REDACTED]\" next"),
        ("secret='x y' next", "secret='[REDACTED]' next"),
        ("password=a=b=c end", "password=[REDACTED] end"),
        ("(password=abc)", "(password=[REDACTED])"),
    ])
    func equalsFragments(input: String, expected: String) {
        #expect(redactor.redact(input) == expected)
    }

    @Test("key: value fragments", arguments: [
        ("password: hunter2", "password: [REDACTED]"),
        ("connecting, password: hunter2, host: db", "connecting, password: [REDACTED], host: db"),
        ("Error: secret:abc rejected", "Error: secret:[REDACTED] rejected"),
        ("headers: {X-Api_Key: abc}", "headers: {X-Api_Key: [REDACTED]}"),
        ("headers: {X-Api-Key: abc}", "headers: {X-Api-Key: abc}"), // '-' is not '_': add api-key or /api[-_]key/
    ])
    func colonFragments(input: String, expected: String) {
        #expect(redactor.redact(input) == expected)
    }

    @Test("\"key\": \"value\" fragments (JSON in a message)", arguments: [
        (#"{"user": "bob", "password": "hunter2"}"#, #"{"user": "bob", "password": "[REDACTED]"}"#),
        (#"{"user":"bob","password":"hun\"ter2","n":1}"#, #"{"user":"bob","password":"[REDACTED]","n":1}"#),
        (#"{"api_key": 12345, "n": 1}"#, #"{"api_key": [REDACTED], "n": 1}"#),
        (#"{"secret": {"a": "b", "c": [1, 2]}, "n": 1}"#, #"{"secret": [REDACTED], "n": 1}"#),
        (#"{"tokens": ["a"], "secret": ["x", "y"]}"#, #"{"tokens": ["a"], "secret": [REDACTED]}"#),
        (#"body={\"password\": \"hunter2\"}"#, #"body={\"password\": \"[REDACTED]\"}"#),
        (#"{"db password": "x"}"#, #"{"db password": "[REDACTED]"}"#),
    ])
    func jsonFragments(input: String, expected: String) {
        #expect(redactor.redact(input) == expected)
    }

    @Test("fragments in string metadata values, nested too")
    func fragmentsInMetadata() {
        let redacted = redactor.redact(["command": "psql --password=hunter2", "env": ["line": "API_KEY=abc"]])
        #expect(redacted["command"] == "psql --password=[REDACTED]")
        #expect(redacted["env"] == ["line": "API_KEY=[REDACTED]"])
    }

    // MARK: URLs

    @Test("URL passwords are always hidden, even without patterns", arguments: [
        ("postgres://deerflow:hunter2@db:5432/deerflow", "postgres://deerflow:[REDACTED]@db:5432/deerflow"),
        ("connecting to redis://:pw@cache:6379 now", "connecting to redis://:[REDACTED]@cache:6379 now"),
        ("https://user:p%40ss@example.com/path?q=1", "https://user:[REDACTED]@example.com/path?q=1"),
        ("amqp://u:p@ss@rabbit/vhost", "amqp://u:[REDACTED]@rabbit/vhost"),
        (#"{"url": "mysql://root:toor@localhost/db"}"#, #"{"url": "mysql://root:[REDACTED]@localhost/db"}"#),
        ("a=postgres://u:p@h b=http://x:y@z", "a=postgres://u:[REDACTED]@h b=http://x:[REDACTED]@z"),
    ])
    func urls(input: String, expected: String) {
        #expect(Redactor.urlCredentialsOnly.redact(input) == expected)
        #expect(redactor.redact(input) == expected)
    }

    @Test("URLs without a password are left alone", arguments: [
        "https://example.com/path?page=1",
        "ssh://git@github.com/org/repo.git",
        "mailto:bob@example.com",
        "http://host:8080/x@y",
        "see http://[::1]:9090/metrics",
    ])
    func urlsWithoutPassword(input: String) {
        #expect(Redactor.urlCredentialsOnly.redact(input) == input)
    }

    @Test("URL passwords in metadata values, including .stringConvertible")
    func urlsInMetadata() {
        let url = URL(string: "postgres://u:pw@db/x")!
        let redacted = Redactor.urlCredentialsOnly.redact(["database": .stringConvertible(url), "list": ["http://a:b@c"]])
        #expect(redacted["database"] == "postgres://u:[REDACTED]@db/x")
        #expect(redacted["list"] == ["http://a:[REDACTED]@c"])
    }

    // MARK: No false positives

    @Test("unrelated text is left alone", arguments: [
        "password reset requested for bob",
        "the secret garden has 3 api keys",
        "Task completed successfully",
        "time 12:30:45 user=bob host: db",
        "ratio=3:4 key=value token: abc",
        "Error: connection refused",
        "",
        "password",
        "password=",
        "secret: ",
        "naïve café ☕️ =",
    ])
    func noFalsePositives(input: String) {
        #expect(redactor.redact(input) == input)
    }

    @Test("redacting twice changes nothing more")
    func idempotent() {
        let once = redactor.redact("password=x url=postgres://u:p@h {\"secret\": \"y\"}")
        #expect(redactor.redact(once) == once)
        let metadata = redactor.redact(["secret": "s", "note": "api_key=k"])
        #expect(redactor.redact(metadata) == metadata)
    }

    @Test("a word is found wherever it starts in a key, in any case, whatever its first character")
    func wordsAnywhere() throws {
        let redactor = try Redactor(patterns: ["secret", "_id", "2fa", "-token"])
        for key in ["ssecret", "SSECRET", "xxSecReT", "my_secret_value", "user_id", "USER_ID", "code2FA", "x-token", "X-TOKEN-2"] {
            #expect(redactor.isSensitive(key: key), "\(key)")
        }
        for key in ["secre", "ecret", "userid", "fa2", "token", "s_e_c_r_e_t", ""] {
            #expect(!redactor.isSensitive(key: key), "\(key)")
        }
    }

    @Test("a fragment is found wherever its separator stands (text is checked 8 bytes at a time)")
    func fragmentsAtEveryPosition() {
        for prefix in 0...17 {
            for separator in ["=", ":"] {
                let padding = String(repeating: "x", count: prefix)
                #expect(redactor.redact("\(padding) password\(separator)hunter2 end") == "\(padding) password\(separator)[REDACTED] end")
                #expect(redactor.redactedText("\(padding) nothing here") == nil)
            }
        }
    }

    @Test("unchanged text is returned without a copy being made")
    func unchangedIsNil() {
        #expect(redactor.redactedText("nothing to see here") == nil)
        #expect(redactor.redactedText("user=bob") == nil)
        #expect(redactor.redactedMetadata(["user": "bob", "nested": ["a": ["b"]]]) == nil)
    }
}
