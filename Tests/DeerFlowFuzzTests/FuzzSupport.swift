import Foundation
import Synchronization
import Testing

/// The fuzzing harness: seed inputs from `Corpus/`, mutations driven by a seed that
/// swift-property-based generates (so a failure names the seed that reproduces it), a time
/// budget per input, and the count of inputs per parser.
///
/// - `DEERFLOW_FUZZ_COUNT`: inputs per parser (default: a bounded count for the normal test run).
/// - `DEERFLOW_FUZZ_OUT`: a directory; each input is written to `<parser>.current` before it is
///   parsed (so a crash leaves the input that caused it) and each failing input to
///   `<parser>-<n>.txt`, ready to be added to the corpus as a regression case.
enum Fuzz {
    /// Inputs per parser: `DEERFLOW_FUZZ_COUNT` when set, else `normal`.
    static func count(_ normal: Int) -> Int {
        ProcessInfo.processInfo.environment["DEERFLOW_FUZZ_COUNT"].flatMap(Int.init) ?? normal
    }

    /// Longest one input may take to be parsed before it counts as a hang (debug build, shared
    /// machine: generous; a real hang never ends).
    static let budget: Duration = .seconds(2)

    static let outputDirectory = ProcessInfo.processInfo.environment["DEERFLOW_FUZZ_OUT"]

    /// The seed files of `Corpus/<folder>`, by file name order. Files named `*.lines` hold one
    /// input per line (short inputs: cron expressions, durations, PromQL, templates).
    static func corpus(_ folder: String) -> [String] {
        guard let root = Bundle.module.resourceURL?.appendingPathComponent("Corpus").appendingPathComponent(folder),
              let names = try? FileManager.default.contentsOfDirectory(atPath: root.path)
        else { return [] }
        var inputs: [String] = []
        for name in names.sorted() {
            guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(name).path) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            if name.hasSuffix(".lines") {
                inputs += text.split(separator: "\n", omittingEmptySubsequences: true).map { unescape(String($0)) }
            } else {
                inputs.append(text)
            }
        }
        return inputs
    }

    /// `\n`, `\t`, `\0` and `\\` in a `.lines` file, so one line can hold any input.
    static func unescape(_ line: String) -> String {
        var result = ""
        var escaped = false
        for character in line {
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "t": result.append("\t")
                case "0": result.append("\u{0}")
                default: result.append(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return escaped ? result + "\\" : result
    }

    /// Inputs, acceptances, rejections and the slowest input per parser, printed by ``summary(_:)``.
    struct Tally {
        var inputs = 0
        var accepted = 0
        var rejected = 0
        var slowest: Duration = .zero
    }

    static let tallies = Synchronization.Mutex<[String: Tally]>([:])

    /// `fuzz workflows: 10000 inputs, 1234 accepted, 8766 rejected, slowest 0.12 s`.
    static func summary(_ parser: String) -> String {
        let tally = tallies.withLock { $0[parser] } ?? Tally()
        return "fuzz \(parser): \(tally.inputs) inputs, \(tally.accepted) accepted, \(tally.rejected) rejected, slowest \(tally.slowest)"
    }

    /// Runs `parse` on `input` under the time budget; `parse` judges the outcome (accepted,
    /// rejected with a location, or a problem such as an unlocated rejection). Records an issue,
    /// and the input in `DEERFLOW_FUZZ_OUT`, when something is wrong.
    static func check(_ parser: String, _ input: String, sourceLocation: SourceLocation = #_sourceLocation, _ parse: (String) -> Verdict) {
        if let directory = outputDirectory {
            try? input.write(toFile: "\(directory)/\(parser).current", atomically: false, encoding: .utf8)
        }
        let start = ContinuousClock.now
        let verdict = parse(input)
        let elapsed = ContinuousClock.now - start
        tallies.withLock { tallies in
            var tally = tallies[parser] ?? Tally()
            tally.inputs += 1
            if case .accepted = verdict { tally.accepted += 1 }
            if case .rejected = verdict { tally.rejected += 1 }
            tally.slowest = max(tally.slowest, elapsed)
            tallies[parser] = tally
        }
        var problems: [String] = []
        if case .problem(let problem) = verdict { problems.append(problem) }
        if elapsed > budget { problems.append("took \(elapsed) (budget \(budget))") }
        guard !problems.isEmpty else { return }
        if let directory = outputDirectory {
            let name = "\(directory)/\(parser)-\(UInt32.random(in: 0...UInt32.max)).txt"
            try? input.write(toFile: name, atomically: true, encoding: .utf8)
        }
        Issue.record("\(parser): \(problems.joined(separator: "; ")) for input \(String(reflecting: input.prefix(2_000)))", sourceLocation: sourceLocation)
    }
}

/// What a parser did with one input, as a fuzz property judges it; a string is a problem.
enum Verdict: ExpressibleByStringInterpolation {
    case accepted
    /// Rejected with an error that says where.
    case rejected
    case problem(String)

    init(stringLiteral value: String) {
        self = .problem(value)
    }
}

/// Deterministic mutations of a seed input (xorshift from the generated seed).
struct Mutator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed | 1
    }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func int(_ bound: Int) -> Int {
        bound <= 0 ? 0 : Int(next() % UInt64(bound))
    }

    mutating func element<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[int(items.count)]
    }

    /// YAML's structure and the values that stress a reader: indicators, anchors and aliases,
    /// tags, block scalars, documents, special numbers, NUL, a byte-order mark, templates.
    static let yamlTokens = [
        ":", ": ", "- ", "-", "{", "}", "[", "]", ",", "\n", "\n  ", "\n    - ", "  ", "\t", "&a ", "*a", "<<: *a", "!!str ", "!!int ",
        "!!binary ", "!!map ", "!!seq ", "!custom ", "|", "|-", ">", "'", "\"", "#", "---\n", "...\n", "? ", "~", "null", "true", "no",
        "0x1F", "0o17", "1e999", "-.inf", ".nan", "9223372036854775808", "-9223372036854775809", "99999999999999999999d", "-1", "0",
        "1h1h", "%YAML 1.2\n", "\u{0}", "\u{FEFF}", "\u{7F}", "é", "\u{1F98C}", "\\", "\"\\0\"", "{{", "}}", "{{ params.x }}",
        "{{ tasks.a.output.x }}", "{{ secrets.X }}", "{{ item }}", "${HOME}", "${", "$", "*/0", "0 0 30 2 *", "..", "--help",
        "\r\n", "\r",
    ]

    /// Applies `times` mutations to `input`; `keys` and `values` are the file's own vocabulary, so
    /// mutations often stay past the YAML syntax and reach the schema checks.
    mutating func mutate(_ input: String, times: Int, tokens: [String] = Mutator.yamlTokens, keys: [String] = [], values: [String] = []) -> String {
        var text = input
        for _ in 0..<times { text = mutateOnce(text, tokens: tokens, keys: keys, values: values) }
        return text
    }

    private mutating func mutateOnce(_ text: String, tokens: [String], keys: [String], values: [String]) -> String {
        var scalars = Array(text.unicodeScalars)
        let position = int(scalars.count + 1)
        switch int(11) {
        case 0: // flip a byte of the UTF-8 text (repaired to valid UTF-8, as the loaders get a String)
            var bytes = Array(text.utf8)
            guard !bytes.isEmpty else { return text }
            bytes[int(bytes.count)] ^= UInt8(truncatingIfNeeded: 1 << int(8))
            return String(decoding: bytes, as: UTF8.self)
        case 1: // truncate
            return String(String.UnicodeScalarView(scalars.prefix(position)))
        case 2, 3: // insert a token
            scalars.insert(contentsOf: (element(tokens) ?? "").unicodeScalars, at: position)
        case 4: // delete a run
            let length = min(int(16) + 1, scalars.count - min(position, scalars.count))
            if position < scalars.count { scalars.removeSubrange(position..<position + length) }
        case 5, 6: // a line with a known or random key and a value
            var lines = text.components(separatedBy: "\n")
            let indent = String(repeating: " ", count: 2 * int(4))
            let key = int(3) == 0 ? randomWord() : (element(keys) ?? randomWord())
            let value = int(3) == 0 ? (element(tokens) ?? "") : (element(values) ?? randomWord())
            lines.insert("\(indent)\(key): \(value)", at: int(lines.count + 1))
            return lines.joined(separator: "\n")
        case 7: // replace a value after ': '
            var lines = text.components(separatedBy: "\n")
            guard !lines.isEmpty else { return text }
            let index = int(lines.count)
            if let colon = lines[index].range(of: ": ") {
                lines[index] = String(lines[index][..<colon.upperBound]) + (element(values + tokens) ?? "")
            }
            return lines.joined(separator: "\n")
        case 8: // duplicate, drop or swap lines
            var lines = text.components(separatedBy: "\n")
            guard lines.count > 1 else { return text }
            let (first, second) = (int(lines.count), int(lines.count))
            switch int(3) {
            case 0: lines.insert(lines[first], at: second)
            case 1: lines.remove(at: first)
            default: lines.swapAt(first, second)
            }
            return lines.joined(separator: "\n")
        case 9: // deep nesting, just inside and past what libyaml accepts
            let depth = [10, 100, 990, 1_000, 5_000][int(5)] // libyaml refuses nesting past 1,000
            let (open, close) = element([("[", "]"), ("{a: ", "}"), ("(", ")"), ("{{", "}}"), ("- ", "")]) ?? ("[", "]")
            let nested = String(repeating: open, count: depth) + "x" + String(repeating: close, count: int(2) == 0 ? depth : int(depth + 1))
            scalars.insert(contentsOf: nested.unicodeScalars, at: position)
        default: // a long run of one character
            let character = element(["a", "9", " ", "\n", "-", "{", "\"", "'", "\\"]) ?? "a"
            scalars.insert(contentsOf: String(repeating: character, count: [64, 1_000, 20_000][int(3)]).unicodeScalars, at: position)
        }
        return String(String.UnicodeScalarView(scalars))
    }

    private mutating func randomWord() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz_-.0123456789")
        return String((0..<(int(12) + 1)).map { _ in letters[int(letters.count)] })
    }
}

extension Duration {
    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
