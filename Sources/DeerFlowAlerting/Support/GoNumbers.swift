import Foundation

/// Number parsing with Go's rules, because Prometheus is written in Go and its label values and
/// exposition values follow `strconv`. Go's number formatting is ``GoFormat`` (DeerFlowCore),
/// shared with notifications.
package enum GoNumbers {
    /// `strconv.ParseFloat(s, 64)` for the forms found in expositions and `le` labels: decimal
    /// and hexadecimal floats, `Inf`/`+Inf`/`-Inf`/`Infinity` and `NaN` in any case.
    package static func parseFloat(_ text: some StringProtocol) -> Double? {
        var body = Substring(text)
        var negative = false
        if let first = body.first, first == "+" || first == "-" {
            negative = first == "-"
            body = body.dropFirst()
        }
        switch body.lowercased() {
        case "inf", "infinity": return negative ? -.infinity : .infinity
        case "nan": return .nan
        default: break
        }
        guard !body.isEmpty,
              body.utf8.allSatisfy({ byte in
                  LabelNames.isDigit(byte) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46)
                      || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "x") || byte == UInt8(ascii: "X")
                      || byte == UInt8(ascii: "p") || byte == UInt8(ascii: "P")
                      || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
              }),
              let value = Double(String(body))
        else { return nil }
        return negative ? -value : value
    }
}
