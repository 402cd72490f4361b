import Foundation

/// Go's formatting of a `float64`, so that values print as Prometheus prints them: `fmt.Sprint`
/// in alert templates (`{{ $value }}`), notifications (`{{ .Value }}`) and PromQL results, and
/// `%.4g` in the alert templates' `humanize` functions.
public enum GoFormat {
    /// `fmt.Sprintf("%.<precision>g", v)`: C's `%g` and Go's agree for finite values (both drop
    /// trailing zeros and use a two-digit minimum exponent); only NaN and infinities differ.
    /// Example: `g(1234.5678, precision: 4)` → "1235".
    public static func g(_ value: Double, precision: Int) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        return String(format: "%.\(precision)g", value)
    }

    /// `fmt.Sprint(v)` for a `float64`, i.e. `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest
    /// digits that round-trip, in `%e` form when the decimal exponent is < -4 or >= 6 (Go's
    /// `strconv` uses precision 6 for that decision when the precision is "shortest").
    /// Examples: `1500` → "1500", `1e6` → "1e+06", `0.00001` → "1e-05", `0.1` → "0.1".
    public static func shortest(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0" }
        let (digits, pointPosition) = shortestDigits(abs(value))
        let exponent = pointPosition - 1
        if exponent < -4 || exponent >= 6 {
            return sign + exponentForm(digits: digits, exponent: exponent)
        }
        return sign + fixedForm(digits: digits, pointPosition: pointPosition)
    }

    /// Decimal digits (no leading or trailing zeros) and the position of the decimal point
    /// relative to the first digit, for a finite positive value, from Swift's shortest
    /// round-trip representation (the same digits Go's shortest formatting chooses).
    private static func shortestDigits(_ value: Double) -> (digits: [Character], pointPosition: Int) {
        let text = value.description  // e.g. "1234.5", "1e-05", "1.2345e+16"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        let integerCount = mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) }
            ?? mantissa.count
        var digits = Array(mantissa.filter { $0 != "." })
        var pointPosition = integerCount + exponent
        while let first = digits.first, first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while let last = digits.last, last == "0" { digits.removeLast() }
        if digits.isEmpty { digits = ["0"]; pointPosition = 1 }
        return (digits, pointPosition)
    }

    private static func exponentForm(digits: [Character], exponent: Int) -> String {
        var out = String(digits[0])
        if digits.count > 1 { out += "." + String(digits[1...]) }
        let magnitude = abs(exponent)
        out += exponent < 0 ? "e-" : "e+"
        out += magnitude < 10 ? "0\(magnitude)" : "\(magnitude)"
        return out
    }

    private static func fixedForm(digits: [Character], pointPosition: Int) -> String {
        if pointPosition <= 0 {
            return "0." + String(repeating: "0", count: -pointPosition) + String(digits)
        }
        if pointPosition >= digits.count {
            return String(digits) + String(repeating: "0", count: pointPosition - digits.count)
        }
        return String(digits[..<pointPosition]) + "." + String(digits[pointPosition...])
    }

}
