/// Prometheus durations (`model.ParseDuration` in prometheus/common): `5m`, `1h30m`, `100ms`,
/// `2w`, `1y`; units `y w d h m s ms`, each at most once, biggest first; `0` alone is allowed.
enum PrometheusDuration {
    private static let units: [(unit: String, milliseconds: Int64)] = [
        ("y", 365 * 24 * 3_600_000), ("w", 7 * 24 * 3_600_000), ("d", 24 * 3_600_000),
        ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1),
    ]

    /// Milliseconds, or nil when `text` is not a valid duration.
    static func parseMilliseconds(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var index = 0
        var total: Int64 = 0
        var lastUnitPosition = -1
        while index < bytes.count {
            let digitsStart = index
            while index < bytes.count, LabelNames.isDigit(bytes[index]) { index += 1 }
            guard index > digitsStart,
                  let number = Int64(String(decoding: bytes[digitsStart..<index], as: UTF8.self))
            else { return nil }
            let unitStart = index
            while index < bytes.count, !LabelNames.isDigit(bytes[index]) { index += 1 }
            let unit = String(decoding: bytes[unitStart..<index], as: UTF8.self)
            guard let position = units.firstIndex(where: { $0.unit == unit }), position > lastUnitPosition
            else { return nil }
            lastUnitPosition = position
            let (product, overflow) = number.multipliedReportingOverflow(by: units[position].milliseconds)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return total
    }
}
