/// The text and the actions of a Go `text/template` source, as Prometheus alert templates and
/// DeerFlow's notification templates write them: `{{ ... }}` actions (quoted strings inside them
/// may hold `}}`), `{{- ` and ` -}}` trimming the white space next to them. What an action means
/// is up to each template language.
public enum GoTemplateText {
    /// A piece of a template.
    public enum Piece: Sendable, Equatable {
        /// Text copied as is (already trimmed where a marker asked for it).
        case text(String)
        /// The inside of `{{ ... }}` without trim markers, and the offset (in Unicode scalars,
        /// from 0) of its `{{`.
        case action(String, offset: Int)
    }

    /// A `{{` without its `}}`, at this scalar offset.
    public struct UnclosedAction: Error, Sendable, Equatable {
        public let offset: Int
    }

    /// Splits `source` into text and actions.
    public static func split(_ source: String) throws(UnclosedAction) -> [Piece] {
        let scalars = Array(source.unicodeScalars)
        var pieces: [Piece] = []
        var text = String.UnicodeScalarView()
        var index = 0
        func matches(_ a: Unicode.Scalar, _ b: Unicode.Scalar, at position: Int) -> Bool {
            position + 1 < scalars.count && scalars[position] == a && scalars[position + 1] == b
        }
        while index < scalars.count {
            guard matches("{", "{", at: index) else {
                text.append(scalars[index])
                index += 1
                continue
            }
            let actionStart = index
            var contentStart = index + 2
            // `{{- ` trims white space before the action (Go requires the space).
            if contentStart + 1 < scalars.count, scalars[contentStart] == "-", isSpace(scalars[contentStart + 1]) {
                while let last = text.last, isSpace(last) { text.removeLast() }
                contentStart += 2
            }
            // The closing `}}`, past quoted strings.
            var cursor = contentStart
            var quote: Unicode.Scalar?
            while cursor < scalars.count {
                let scalar = scalars[cursor]
                if let open = quote {
                    if scalar == "\\" && open == "\"" { cursor += 2; continue }
                    if scalar == open { quote = nil }
                } else if scalar == "\"" || scalar == "`" {
                    quote = scalar
                } else if matches("}", "}", at: cursor) {
                    break
                }
                cursor += 1
            }
            guard cursor < scalars.count else { throw UnclosedAction(offset: actionStart) }
            var contentEnd = cursor
            var trimAfter = false
            if contentEnd - 2 >= contentStart, scalars[contentEnd - 1] == "-", isSpace(scalars[contentEnd - 2]) {
                trimAfter = true
                contentEnd -= 2
            } else if contentEnd - 1 == contentStart, scalars[contentStart] == "-" {
                // `{{-}}`: an empty action that trims on the left.
                contentEnd -= 1
            }
            if !text.isEmpty {
                pieces.append(.text(String(text)))
                text = String.UnicodeScalarView()
            }
            pieces.append(.action(String(String.UnicodeScalarView(scalars[contentStart..<contentEnd])), offset: actionStart))
            index = cursor + 2
            if trimAfter {
                while index < scalars.count, isSpace(scalars[index]) { index += 1 }
            }
        }
        if !text.isEmpty { pieces.append(.text(String(text))) }
        return pieces
    }

    /// Go's white space in templates.
    public static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r"
    }

    /// The 1-based line and column of a scalar offset in `source`, for error messages.
    public static func position(of offset: Int, in source: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for scalar in source.unicodeScalars.prefix(offset) {
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
