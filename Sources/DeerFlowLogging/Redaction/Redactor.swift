import Foundation
public import Logging
import Synchronization

/// Hides secrets in log records before any sink sees them.
///
/// **Which keys are sensitive.** A key matches a pattern written as
/// - a plain word (`password`, `api_key`, `secret`): when the key *contains* it, ignoring case.
///   This is substring matching on purpose (`db_password`, `X-API_KEY`, `clientSecret` all match), and
///   it means `secretary_count` matches `secret` and `passwords_changed` matches `password`. Characters
///   are compared as written: `api_key` does not match `X-Api-Key` (add `api-key`, or `/api[-_]?key/`);
/// - `^...` or `...$` (`^secret$`, `^token`): a regular expression, anchored as written, ignoring case.
///   `^secret$` matches the key `secret` (or `SECRET`) and nothing else, so write it to opt out of
///   substring matching;
/// - `/.../` (`/^(pass|pwd)$/`, `/token|bearer/`): a regular expression between the slashes,
///   ignoring case, matching anywhere in the key unless anchored.
///
/// **What is replaced by `[REDACTED]`.**
/// - In metadata, the value of every matching key, whatever its type (string, dictionary, list),
///   at any depth of nested dictionaries and of dictionaries inside lists.
/// - In the message and in every string metadata value (nested too), the value of `key=value`,
///   `key: value`, `"key": "value"` and `key="value"` fragments whose key matches: an unquoted value
///   ends at white space or `,;&)]}`; a quoted value at its closing quote; a `{...}` or `[...]` value
///   at its closing bracket. `password=hunter2` → `password=[REDACTED]`.
/// - Always, even without patterns: the password of URLs, `scheme://user:password@host` →
///   `scheme://user:[REDACTED]@host`.
///
/// Words that are not followed by `=` or `:` are left alone (`password reset requested` stays as is).
///
/// Cost: a string without `=` or `:` is checked in one pass over its bytes and not copied; keys are
/// compared byte-wise ignoring ASCII case, and regular expressions run only for `/.../` patterns (and
/// `^...$` patterns that are not plain words) on the keys found.
///
/// ```swift
/// let redactor = try Redactor(patterns: ["password", "api_key", "^secret$"])
/// redactor.redact("login password=hunter2")      // "login password=[REDACTED]"
/// redactor.redact(["db": ["password": "x"]])     // ["db": ["password": "[REDACTED]"]]
/// ```
public struct Redactor: Sendable {
    /// What replaces a hidden value.
    public static let mask = "[REDACTED]"

    /// A pattern that could not be compiled.
    public struct PatternError: Error, Sendable, CustomStringConvertible {
        public var pattern: String
        public var message: String
        public var description: String { message }
    }

    /// A redactor without patterns: it masks URL passwords only.
    public static let urlCredentialsOnly = Redactor(matchers: [])

    /// Plain ASCII words (`password`): lowercased, found anywhere in a key ignoring case.
    let words: [[UInt8]]
    /// The first bytes of ``words``, both cases, as a set of ASCII bytes (bit n of the 128):
    /// a key is compared with the words only where one of these bytes is.
    let wordStarts: (low: UInt64, high: UInt64)
    /// The other patterns compared byte-wise (prefix, suffix, whole key, non-ASCII words).
    let matchers: [KeyMatcher]
    /// Regular expressions, tried after the others, with their answers remembered per key.
    let regexMatchers: [KeyMatcher]
    let regexAnswers: RegexAnswers?

    /// - Parameter patterns: Key patterns, as described above.
    /// - Throws: ``PatternError`` for an empty pattern or a regular expression that does not compile.
    public init(patterns: [String]) throws(PatternError) {
        var matchers: [KeyMatcher] = []
        for pattern in patterns { matchers.append(try KeyMatcher(pattern: pattern)) }
        self.init(matchers: matchers)
    }

    init(matchers: [KeyMatcher]) {
        var words: [[UInt8]] = []
        var starts: (low: UInt64, high: UInt64) = (0, 0)
        for matcher in matchers {
            guard case .contains(let word) = matcher.kind, let first = word.first else { continue }
            words.append(word)
            for byte in [first, first &- 0x61 < 26 ? first & ~0x20 : first] {
                if byte < 64 { starts.low |= 1 << UInt64(byte) } else { starts.high |= 1 << UInt64(byte - 64) }
            }
        }
        self.words = words
        wordStarts = starts
        self.matchers = matchers.filter { matcher in
            if case .contains = matcher.kind { return false }
            return !matcher.isRegex
        }
        regexMatchers = matchers.filter(\.isRegex)
        regexAnswers = regexMatchers.isEmpty ? nil : RegexAnswers()
        var mask = 0
        for (rank, key) in LogRecord.taskKeys.enumerated() {
            var key = key
            if key.withUTF8({ bytes in matchers.contains { $0.matches(bytes) } }) { mask |= 1 << rank }
        }
        sensitiveTaskKeys = mask
    }

    /// What the regular expressions said about keys seen before: metadata keys repeat from record
    /// to record, and a regular expression costs far more than a dictionary look-up.
    final class RegexAnswers: Sendable {
        private let answers = Mutex<[String: Bool]>([:])
        /// Forgets everything beyond this many keys (keys made from data, such as ids, never repeat).
        private let limit = 4096

        func answer(for key: String, _ compute: () -> Bool) -> Bool {
            if let known = answers.withLock({ $0[key] }) { return known }
            let answer = compute()
            answers.withLock { answers in
                if answers.count >= limit { answers.removeAll(keepingCapacity: true) }
                answers[key] = answer
            }
            return answer
        }
    }

    /// Bit n set: ``LogRecord/taskKeys``[n] is sensitive (decided once, they are in every task record).
    let sensitiveTaskKeys: Int

    /// Whether a metadata key (or the key of a fragment) is sensitive.
    public func isSensitive(key: String) -> Bool {
        guard !words.isEmpty || !matchers.isEmpty || !regexMatchers.isEmpty else { return false }
        var key = key
        return key.withUTF8 { isSensitive(keyBytes: $0) }
    }

    /// The text with sensitive fragments and URL passwords replaced by `[REDACTED]`.
    public func redact(_ text: String) -> String {
        redactedText(text) ?? text
    }

    /// The metadata with values of sensitive keys, sensitive fragments in strings and URL passwords
    /// replaced by `[REDACTED]`. `.stringConvertible` values come back as `.string`.
    public func redact(_ metadata: Logger.Metadata) -> Logger.Metadata {
        redactedMetadata(metadata) ?? metadata
    }

    /// One metadata value (its nested keys, fragments in its strings).
    public func redact(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        redactedValue(value) ?? value
    }

    /// Redacts fields in place.
    func redact(_ fields: inout [LogRecord.Field]) {
        for index in fields.indices {
            let rank = fields[index].rank
            if rank < LogRecord.taskKeys.count ? sensitiveTaskKeys & (1 << rank) != 0 : isSensitive(key: fields[index].key) {
                fields[index].value = .string(Self.mask)
            } else if case .string(let text) = fields[index].value {
                // Most values: the text alone, without going through a copy of the enum.
                if let redacted = redactedText(text) { fields[index].value = .string(redacted) }
            } else if let replacement = redactedValue(fields[index].value) {
                fields[index].value = replacement
            }
        }
    }

    // MARK: Metadata

    /// nil when nothing changed.
    func redactedMetadata(_ metadata: Logger.Metadata) -> Logger.Metadata? {
        var result: Logger.Metadata?
        for (key, value) in metadata {
            let replacement: Logger.MetadataValue?
            if isSensitive(key: key) {
                if case .string(let text) = value, text == Self.mask { continue }
                replacement = .string(Self.mask)
            } else {
                replacement = redactedValue(value)
            }
            if let replacement {
                if result == nil { result = metadata }
                result![key] = replacement
            }
        }
        return result
    }

    /// nil when nothing changed.
    func redactedValue(_ value: Logger.MetadataValue) -> Logger.MetadataValue? {
        switch value {
        case .string(let text):
            return redactedText(text).map { .string($0) }
        case .stringConvertible(let convertible):
            let text = convertible.description
            return .string(redactedText(text) ?? text)
        case .dictionary(let dictionary):
            return redactedMetadata(dictionary).map { .dictionary($0) }
        case .array(let array):
            var result: [Logger.MetadataValue]?
            for (index, element) in array.enumerated() {
                if let replacement = redactedValue(element) {
                    if result == nil { result = array }
                    result![index] = replacement
                }
            }
            return result.map { .array($0) }
        }
    }

    // MARK: Text

    /// nil when nothing changed.
    func redactedText(_ text: String) -> String? {
        var text = text
        return text.withUTF8 { bytes -> String? in
            let ranges = sensitiveRanges(in: bytes)
            guard !ranges.isEmpty else { return nil }
            var output: [UInt8] = []
            output.reserveCapacity(bytes.count + ranges.count * 10)
            var position = 0
            for range in ranges {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<range.lowerBound]))
                output.append(contentsOf: Self.maskBytes)
                position = range.upperBound
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position...]))
            return String(decoding: output, as: UTF8.self)
        }
    }

    static let maskBytes = Array(mask.utf8)

    /// Byte ranges of values to hide, in order and not overlapping.
    func sensitiveRanges(in bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        let count = bytes.count
        // Prefilter: no separator, nothing to do. Eight bytes at a time while none is `:` or `=`.
        var first = 0
        if let base = UnsafeRawPointer(bytes.baseAddress) {
            while first + 8 <= count, !ASCII.hasColonOrEquals(base.loadUnaligned(fromByteOffset: first, as: UInt64.self)) { first += 8 }
        }
        while first < count, bytes[first] != ASCII.colon, bytes[first] != ASCII.equals { first += 1 }
        guard first < count else { return [] }

        var ranges: [Range<Int>] = []
        func add(_ range: Range<Int>) {
            guard !range.isEmpty else { return }
            if range.count == Self.maskBytes.count, Self.maskBytes.withUnsafeBufferPointer({ mask in
                mask.elementsEqual(UnsafeBufferPointer(rebasing: bytes[range]))
            }) { return }
            ranges.append(range)
        }

        var index = first
        while index < count {
            let byte = bytes[index]
            guard byte == ASCII.colon || byte == ASCII.equals else {
                index += 1
                continue
            }
            // scheme://user:password@host
            if byte == ASCII.colon, index + 2 < count, bytes[index + 1] == ASCII.slash, bytes[index + 2] == ASCII.slash {
                var schemeStart = index
                while schemeStart > 0, ASCII.isSchemeByte(bytes[schemeStart - 1]) { schemeStart -= 1 }
                if schemeStart < index {
                    let authorityStart = index + 3
                    var end = authorityStart
                    var lastAt = -1
                    while end < count, !ASCII.endsAuthority(bytes[end]) {
                        if bytes[end] == ASCII.at { lastAt = end }
                        end += 1
                    }
                    if lastAt > authorityStart {
                        var colon = authorityStart
                        while colon < lastAt, bytes[colon] != ASCII.colon { colon += 1 }
                        if colon < lastAt { add(colon + 1..<lastAt) }
                    }
                    index = end
                    continue
                }
            }
            guard !words.isEmpty || !matchers.isEmpty || !regexMatchers.isEmpty, let key = keyRange(before: index, in: bytes),
                  isSensitive(keyBytes: UnsafeBufferPointer(rebasing: bytes[key]))
            else {
                index += 1
                continue
            }
            let value = valueRange(after: index, in: bytes)
            add(value.inner)
            index = max(value.end, index + 1)
        }
        return ranges
    }

    /// The key of a fragment whose separator (`=` or `:`) is at `separator`: the word before it
    /// (letters, digits, `_`, `-`, `.`), or the text between quotes (`"api key": ...`).
    private func keyRange(before separator: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var end = separator
        while end > 0, bytes[end - 1] == ASCII.space || bytes[end - 1] == ASCII.tab { end -= 1 }
        guard end > 0 else { return nil }
        let last = bytes[end - 1]
        if last == ASCII.quote || last == ASCII.apostrophe {
            let closing = end - 1
            var open = closing - 1
            let limit = max(0, closing - 256)
            while open >= limit, bytes[open] != last, bytes[open] != ASCII.newline { open -= 1 }
            guard open >= limit, bytes[open] == last else { return nil }
            var keyEnd = closing
            if keyEnd > open + 1, bytes[keyEnd - 1] == ASCII.backslash { keyEnd -= 1 } // \"key\": in escaped JSON
            return open + 1 < keyEnd ? open + 1..<keyEnd : nil
        }
        var start = end
        while start > 0, ASCII.isKeyByte(bytes[start - 1]) { start -= 1 }
        return start < end ? start..<end : nil
    }

    /// The value after a separator: `inner` is what gets replaced, `end` where scanning goes on.
    private func valueRange(after separator: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (inner: Range<Int>, end: Int) {
        let count = bytes.count
        var start = separator + 1
        while start < count, bytes[start] == ASCII.space || bytes[start] == ASCII.tab { start += 1 }
        guard start < count else { return (start..<start, start) }
        let first = bytes[start]
        // \"value\" inside escaped JSON
        if first == ASCII.backslash, start + 1 < count, bytes[start + 1] == ASCII.quote {
            var end = start + 2
            while end + 1 < count, !(bytes[end] == ASCII.backslash && bytes[end + 1] == ASCII.quote) { end += 1 }
            if end + 1 >= count { return (start + 2..<count, count) }
            return (start + 2..<end, end + 2)
        }
        if first == ASCII.quote || first == ASCII.apostrophe {
            var end = start + 1
            while end < count, bytes[end] != first {
                end += bytes[end] == ASCII.backslash ? 2 : 1
            }
            end = min(end, count)
            return (start + 1..<end, min(end + 1, count))
        }
        if first == ASCII.openBrace || first == ASCII.openBracket {
            var depth = 0
            var end = start
            var inString = false
            while end < count {
                let byte = bytes[end]
                if inString {
                    if byte == ASCII.backslash { end += 1 } else if byte == ASCII.quote { inString = false }
                } else if byte == ASCII.quote {
                    inString = true
                } else if byte == ASCII.openBrace || byte == ASCII.openBracket {
                    depth += 1
                } else if byte == ASCII.closeBrace || byte == ASCII.closeBracket {
                    depth -= 1
                    if depth == 0 { break }
                }
                end += 1
            }
            end = min(end + 1, count)
            return (start..<end, end)
        }
        var end = start
        while end < count, !ASCII.endsValue(bytes[end]) { end += 1 }
        return (start..<end, end)
    }

    // MARK: Keys

    func isSensitive(keyBytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if !words.isEmpty {
            // One pass over the key: only where a word could start are the words compared (was:
            // one scan of the whole key per word, for every key of every statement).
            let count = keyBytes.count
            for index in 0..<count {
                let byte = keyBytes[index]
                let isStart = byte < 64 ? wordStarts.low & (1 << UInt64(byte)) != 0
                    : byte < 128 && wordStarts.high & (1 << UInt64(byte - 64)) != 0
                guard isStart else { continue }
                for word in words where word.count <= count - index && ASCII.equalIgnoringCase(keyBytes, word, at: index) {
                    return true
                }
            }
        }
        for matcher in matchers where matcher.matches(keyBytes) { return true }
        guard let regexAnswers else { return false }
        return regexAnswers.answer(for: String(decoding: keyBytes, as: UTF8.self)) {
            regexMatchers.contains { $0.matches(keyBytes) }
        }
    }
}

extension Redactor {
    /// One compiled pattern.
    struct KeyMatcher: Sendable {
        enum Kind: Sendable {
            /// Lowercased ASCII bytes found anywhere in the key.
            case contains([UInt8])
            case equals([UInt8])
            case hasPrefix([UInt8])
            case hasSuffix([UInt8])
            /// Non-ASCII plain words: compared on lowercased strings.
            case containsText(String)
            case regex(NSRegularExpression)
        }

        let pattern: String
        let kind: Kind

        var isRegex: Bool {
            if case .regex = kind { return true }
            return false
        }

        init(pattern: String) throws(PatternError) {
            self.pattern = pattern
            guard !pattern.isEmpty else { throw PatternError(pattern: pattern, message: "a pattern must not be empty") }
            if pattern.count >= 2, pattern.hasPrefix("/"), pattern.hasSuffix("/") {
                let body = String(pattern.dropFirst().dropLast())
                kind = try Self.compile(body, pattern: pattern)
            } else if pattern.hasPrefix("^") || pattern.hasSuffix("$") {
                let anchoredStart = pattern.hasPrefix("^")
                let anchoredEnd = pattern.hasSuffix("$") && !pattern.hasSuffix("\\$")
                var body = Substring(pattern)
                if anchoredStart { body = body.dropFirst() }
                if anchoredEnd { body = body.dropLast() }
                if !body.isEmpty, body.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
                    let bytes = Array(body.lowercased().utf8)
                    switch (anchoredStart, anchoredEnd) {
                    case (true, true): kind = .equals(bytes)
                    case (true, false): kind = .hasPrefix(bytes)
                    case (false, true): kind = .hasSuffix(bytes)
                    case (false, false): kind = .contains(bytes)
                    }
                } else {
                    kind = try Self.compile(pattern, pattern: pattern)
                }
            } else if pattern.utf8.allSatisfy({ $0 < 0x80 }) {
                kind = .contains(Array(pattern.lowercased().utf8))
            } else {
                kind = .containsText(pattern.lowercased())
            }
        }

        private static func compile(_ source: String, pattern: String) throws(PatternError) -> Kind {
            guard !source.isEmpty else { throw PatternError(pattern: pattern, message: "'\(pattern)': the regular expression is empty") }
            do {
                return .regex(try NSRegularExpression(pattern: source, options: [.caseInsensitive]))
            } catch {
                throw PatternError(pattern: pattern, message: "'\(pattern)' is not a valid regular expression")
            }
        }

        func matches(_ key: UnsafeBufferPointer<UInt8>) -> Bool {
            switch kind {
            case .contains(let needle): return ASCII.contains(key, needle)
            case .equals(let needle): return key.count == needle.count && ASCII.equalIgnoringCase(key, needle, at: 0)
            case .hasPrefix(let needle): return key.count >= needle.count && ASCII.equalIgnoringCase(key, needle, at: 0)
            case .hasSuffix(let needle): return key.count >= needle.count && ASCII.equalIgnoringCase(key, needle, at: key.count - needle.count)
            case .containsText(let needle): return String(decoding: key, as: UTF8.self).lowercased().contains(needle)
            case .regex(let regex):
                let text = String(decoding: key, as: UTF8.self)
                return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            }
        }
    }
}

/// Byte classes used by the scanner.
enum ASCII {
    static let tab: UInt8 = 0x09
    static let newline: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let apostrophe: UInt8 = 0x27
    static let slash: UInt8 = 0x2F
    static let colon: UInt8 = 0x3A
    static let equals: UInt8 = 0x3D
    static let at: UInt8 = 0x40
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D

    /// For checking text 8 bytes at a time: each byte of a word (read from the text) that is
    /// `byte` has its high bit set in the result, and no byte below the first such one does (the
    /// "has a zero byte" bit trick on the word XOR `byte`; exact as to whether there is one).
    @inline(__always) static func marks(_ byte: UInt8, in word: UInt64) -> UInt64 {
        let difference = word ^ (0x0101_0101_0101_0101 &* UInt64(byte))
        return (difference &- 0x0101_0101_0101_0101) & ~difference & 0x8080_8080_8080_8080
    }

    /// Whether one of the eight bytes of `word` is `:` or `=`.
    @inline(__always) static func hasColonOrEquals(_ word: UInt64) -> Bool {
        marks(colon, in: word) | marks(equals, in: word) != 0
    }

    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    @inline(__always) static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte | 0x20) &- 0x61 < 26 || byte &- 0x30 < 10
    }

    /// Letters, digits, `_ - .`, and any non-ASCII byte.
    @inline(__always) static func isKeyByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == 0x5F || byte == 0x2D || byte == 0x2E || byte >= 0x80
    }

    @inline(__always) static func isSchemeByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == 0x2B || byte == 0x2D || byte == 0x2E
    }

    /// Where the `user:password@host:port` part of a URL ends.
    @inline(__always) static func endsAuthority(_ byte: UInt8) -> Bool {
        byte <= space || byte == slash || byte == 0x3F || byte == 0x23 || byte == quote || byte == apostrophe
            || byte == 0x3C || byte == 0x3E || byte == 0x60
    }

    /// Where an unquoted value ends: white space or `,;&)]}` or a quote.
    @inline(__always) static func endsValue(_ byte: UInt8) -> Bool {
        byte <= space || byte == 0x2C || byte == 0x3B || byte == 0x26 || byte == 0x29 || byte == closeBracket
            || byte == closeBrace || byte == quote || byte == apostrophe
    }

    @inline(__always) static func equalIgnoringCase(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8], at offset: Int) -> Bool {
        for index in 0..<needle.count where lower(haystack[offset + index]) != needle[index] { return false }
        return true
    }

    /// Whether `needle` (lowercase) occurs in `haystack`, ignoring ASCII case.
    static func contains(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        let length = needle.count
        guard length > 0 else { return true }
        guard haystack.count >= length else { return false }
        let first = needle[0]
        var index = 0
        let last = haystack.count - length
        while index <= last {
            if lower(haystack[index]) == first, equalIgnoringCase(haystack, needle, at: index) { return true }
            index += 1
        }
        return false
    }
}
