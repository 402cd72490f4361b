import Foundation

/// E-mail addresses as written in `notifications.yaml`: `name@example.com` or `Name <name@example.com>`.
enum EmailAddress {
    /// The display name (nil when none) and the address, or nil when `text` is not an address.
    /// Addresses are ASCII (no SMTPUTF8); display names may be any text.
    static func parse(_ text: String) -> (displayName: String?, address: String)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            var name = trimmed[..<open].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
            guard isAddrSpec(address), !name.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "<" || $0 == ">" }) else { return nil }
            return (name.isEmpty ? nil : name, address)
        }
        return isAddrSpec(trimmed) ? (nil, trimmed) : nil
    }

    /// The bare address of `text` (which ``parse(_:)`` accepted), else `text`.
    static func addrSpec(of text: String) -> String {
        parse(text)?.address ?? text
    }

    /// `local@domain` with a dot-atom local part (RFC 5322 atext) and a host name or `[address literal]`.
    static func isAddrSpec(_ text: String) -> Bool {
        guard let at = text.lastIndex(of: "@") else { return false }
        let local = text[..<at]
        let domain = text[text.index(after: at)...]
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
        guard !local.isEmpty, local.count <= 64, !local.hasPrefix("."), !local.hasSuffix("."), !local.contains(".."),
              local.allSatisfy({ atext.contains($0) || $0 == "." })
        else { return false }
        if domain.hasPrefix("["), domain.hasSuffix("]") {
            return domain.count > 2 && domain.dropFirst().dropLast().allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == "." || $0 == ":" || $0.isLetter) }
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return !domain.isEmpty && domain.count <= 253
            && labels.allSatisfy { label in
                !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }
}

/// A plain-text MIME message (RFC 5322 / RFC 2045) ready for SMTP `DATA`.
struct MIMEMessage: Sendable {
    enum TransferEncoding: String, Sendable {
        case eightBit = "8bit"
        case quotedPrintable = "quoted-printable"
    }

    var from: String
    var to: [String]
    var subject: String
    var body: String
    var date: Date
    var messageID: String

    /// The body's encoding: `8bit` when the server takes 8-bit data (`8BITMIME`) and no line is
    /// longer than SMTP allows (998 octets), else `quoted-printable`.
    static func transferEncoding(for body: String, serverAccepts8Bit: Bool) -> TransferEncoding {
        let longLine = body.split(separator: "\n", omittingEmptySubsequences: false).contains { $0.utf8.count > 998 }
        return serverAccepts8Bit && !longLine ? .eightBit : .quotedPrintable
    }

    /// The message with CRLF line endings, not yet dot-stuffed.
    func render(encoding: TransferEncoding) -> String {
        let headers: [String] = [
            "Date: " + Self.rfc5322Date(date),
            Self.fold("From: " + Self.formatAddress(from)),
            Self.fold("To: " + to.map(Self.formatAddress).joined(separator: ", ")),
            Self.headerLine("Subject", subject),
            "Message-ID: " + messageID,
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: " + encoding.rawValue,
            "Auto-Submitted: auto-generated",
            "X-Mailer: DeerFlow",
        ]
        let lines = Self.normalizedLines(body)
        let encodedBody: String
        switch encoding {
        case .eightBit: encodedBody = lines.joined(separator: "\r\n")
        case .quotedPrintable: encodedBody = lines.map(Self.quotedPrintable).joined(separator: "\r\n")
        }
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + encodedBody + "\r\n"
    }

    /// The bytes after `DATA`: lines starting with `.` get another `.` (RFC 5321 §4.5.2), and the
    /// `CRLF.CRLF` terminator is added.
    static func dotStuffed(_ message: String) -> String {
        var lines = message.components(separatedBy: "\r\n")
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n") + "\r\n.\r\n"
    }

    /// Lines of `text` without any CR or LF (bare CR and LF become line breaks).
    static func normalizedLines(_ text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// `Date:` format of RFC 5322: `Tue, 25 Nov 2025 17:28:00 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// An address for a header: `name@example.com`, or `"Name" <name@example.com>` with the name
    /// RFC 2047-encoded when it is not ASCII.
    static func formatAddress(_ text: String) -> String {
        guard let (name, address) = EmailAddress.parse(text) else { return text }
        guard let name else { return address }
        if name.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 32 && $0 != "\"" && $0 != "\\" }) {
            return "\"\(name)\" <\(address)>"
        }
        return encodedWords(name, firstLineRoom: 70).joined(separator: " ") + " <\(address)>"
    }

    /// A header with free text: as is when the text is printable ASCII (folded at spaces to lines of
    /// about 78 characters), else RFC 2047 `=?UTF-8?B?...?=` words on folded lines of at most 76
    /// characters. CR and LF become spaces, so data cannot add headers.
    static func headerLine(_ name: String, _ text: String) -> String {
        let flat = text.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : String($0) }.joined()
        let printable = flat.unicodeScalars.allSatisfy { ($0.value >= 32 && $0.value < 127) || $0 == "\t" }
        // Text that looks like an encoded word is encoded too, or readers would decode it.
        if printable && !flat.contains("=?") { return fold(name + ": " + flat) }
        return name + ": " + encodedWords(flat, firstLineRoom: 76 - name.count - 2).joined(separator: "\r\n ")
    }

    /// `=?UTF-8?B?...?=` words that fit lines of 76 characters (the first in `firstLineRoom`,
    /// the others after a folding space), never splitting a character.
    static func encodedWords(_ text: String, firstLineRoom: Int) -> [String] {
        // "=?UTF-8?B?" and "?=" take 12 characters; 4 base64 characters carry 3 bytes.
        var maximumBytes = max(3, (firstLineRoom - 12) / 4 * 3)
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > maximumBytes, !chunk.isEmpty {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
                maximumBytes = (76 - 1 - 12) / 4 * 3
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words
    }

    /// Folds a header line at spaces so lines stay near 78 characters (never splitting a word).
    static func fold(_ line: String) -> String {
        guard line.count > 78 else { return line }
        var output = ""
        var current = ""
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count > 78 {
                output += current + "\r\n"
                current = " " + word
            } else {
                current += " " + word
            }
        }
        return output + current
    }

    /// One line in quoted-printable (RFC 2045 §6.7): `=XX` for `=`, bytes outside printable ASCII
    /// and white space at the end of the line, soft line breaks (`=` CRLF) to keep lines ≤ 76.
    static func quotedPrintable(_ line: String) -> String {
        let bytes = Array(line.utf8)
        var tokens: [String] = []
        for (index, byte) in bytes.enumerated() {
            let isLast = index == bytes.count - 1
            if (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 32 || byte == 9) && !isLast) {
                tokens.append(String(UnicodeScalar(byte)))
            } else {
                tokens.append(String(format: "=%02X", byte))
            }
        }
        var output = ""
        var length = 0
        for token in tokens {
            if length + token.count > 75 {
                output += "=\r\n"
                length = 0
            }
            output += token
            length += token.count
        }
        return output
    }
}
