import Foundation

/// `rate()` and `increase()`.
enum RateFunctions {
    /// Port of `extrapolatedRate` (prometheus/promql/functions.go) for float samples.
    ///
    /// - At least two samples are needed, otherwise no result.
    /// - Counter resets: whenever a sample is lower than the one before, the earlier value is
    ///   added back (the counter restarted from zero).
    /// - Extrapolation: the increase between the first and last sample is extrapolated towards
    ///   the range boundaries. A gap to a boundary is extrapolated fully when it is shorter than
    ///   1.1 × the average interval between samples, otherwise by half an average interval (the
    ///   series is assumed to start or end inside the range).
    /// - Counters are not extrapolated below zero: the gap at the start is capped at the time
    ///   the counter would need to reach zero at the observed slope.
    /// - `rate` divides by the range in seconds; `increase` does not.
    static func extrapolatedRate(
        timestamps: [Int64], values: [Double], rangeStart: Int64, rangeEnd: Int64, isCounter: Bool, isRate: Bool,
        prometheus2: Bool = false
    ) -> Double? {
        let count = timestamps.count
        guard count >= 2 else { return nil }
        let firstT = timestamps[0]
        let lastT = timestamps[count - 1]
        var result = values[count - 1] - values[0]
        if isCounter {
            for index in 1..<count where values[index] < values[index - 1] {
                result += values[index - 1]
            }
        }
        var durationToStart = Double(firstT - rangeStart) / 1_000
        var durationToEnd = Double(rangeEnd - lastT) / 1_000
        let sampledInterval = Double(lastT - firstT) / 1_000
        let averageDurationBetweenSamples = sampledInterval / Double(count - 1)

        let extrapolationThreshold = averageDurationBetweenSamples * 1.1
        // A counter is not extrapolated below zero. Prometheus 3 caps at half an interval first
        // and then at the zero point; Prometheus 2 did it the other way round.
        func capAtZero() {
            guard isCounter, result > 0, values[0] >= 0 else { return }
            let durationToZero = sampledInterval * (values[0] / result)
            if durationToZero < durationToStart { durationToStart = durationToZero }
        }
        if prometheus2 { capAtZero() }
        if durationToStart >= extrapolationThreshold {
            durationToStart = averageDurationBetweenSamples / 2
        }
        if !prometheus2 { capAtZero() }
        if durationToEnd >= extrapolationThreshold {
            durationToEnd = averageDurationBetweenSamples / 2
        }
        var factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval
        if isRate {
            factor /= Double(rangeEnd - rangeStart) / 1_000
        }
        return result * factor
    }

    static func pow(_ x: Double, _ y: Double) -> Double {
        Foundation.pow(x, y)
    }
}

/// `histogram_quantile()` over classic histograms (series with an `le` label).
package enum HistogramQuantile {
    package struct Bucket {
        package var upperBound: Double
        package var count: Double

        package init(upperBound: Double, count: Double) {
            self.upperBound = upperBound
            self.count = count
        }
    }

    /// Groups the input by its label set without `le` (as `funcHistogramQuantile` does), parses
    /// `le` with Go's `ParseFloat` (series without a parseable `le` are ignored, Prometheus warns)
    /// and computes ``bucketQuantile(_:_:)`` per group. Output labels drop `le` and `__name__`.
    static func evaluate(quantile: Double, _ elements: [VectorElement]) -> [VectorElement] {
        var groups: [LabelSet: (labels: LabelSet, buckets: [Bucket])] = [:]
        var order: [LabelSet] = []
        for element in elements {
            guard let upperBound = GoNumbers.parseFloat(element.labels["le"]) else { continue }
            let key = element.labels.dropping("le")
            if groups[key] == nil { order.append(key) }
            groups[key, default: (key.dropping(LabelSet.metricName), [])].buckets.append(Bucket(upperBound: upperBound, count: element.value))
        }
        return order.compactMap { key in
            groups[key].map { VectorElement(labels: $0.labels, value: bucketQuantile(quantile, $0.buckets)) }
        }
    }

    /// Port of `BucketQuantile` (prometheus/promql/quantile.go):
    /// - q is NaN → NaN; q < 0 → -Inf; q > 1 → +Inf;
    /// - buckets are sorted by upper bound; without a `+Inf` bucket → NaN;
    /// - buckets with the same upper bound are merged; differences below a relative 1e-12 are
    ///   treated as float noise, and decreasing counts are raised to the previous count
    ///   (`ensureMonotonicAndIgnoreSmallDeltas`);
    /// - fewer than 2 buckets (e.g. only `+Inf`) or 0 observations → NaN;
    /// - the rank q × count is located by binary search; in the `+Inf` bucket the upper bound of
    ///   the second-highest bucket is returned; in the lowest bucket with an upper bound ≤ 0 that
    ///   bound is returned; otherwise the value is interpolated linearly inside the bucket, with
    ///   0 as the lower bound of the lowest bucket.
    package static func bucketQuantile(_ q: Double, _ input: [Bucket]) -> Double {
        if q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        guard !input.isEmpty else { return .nan }
        var buckets = input.sorted { $0.upperBound < $1.upperBound }
        guard buckets[buckets.count - 1].upperBound == .infinity else { return .nan }
        buckets = coalesce(buckets)
        ensureMonotonicAndIgnoreSmallDeltas(&buckets, tolerance: 1e-12)
        guard buckets.count >= 2 else { return .nan }
        let observations = buckets[buckets.count - 1].count
        guard observations != 0 else { return .nan }
        var rank = q * observations
        let b = search(buckets.count - 1) { buckets[$0].count >= rank }
        if b == buckets.count - 1 { return buckets[buckets.count - 2].upperBound }
        if b == 0 && buckets[0].upperBound <= 0 { return buckets[0].upperBound }
        var bucketStart = 0.0
        let bucketEnd = buckets[b].upperBound
        var count = buckets[b].count
        if b > 0 {
            bucketStart = buckets[b - 1].upperBound
            count -= buckets[b - 1].count
            rank -= buckets[b - 1].count
        }
        return bucketStart + (bucketEnd - bucketStart) * (rank / count)
    }

    /// Go's `sort.Search`: the smallest index in `0..<n` for which `predicate` is true, or `n`.
    static func search(_ n: Int, _ predicate: (Int) -> Bool) -> Int {
        var low = 0
        var high = n
        while low < high {
            let mid = Int(UInt(low + high) >> 1)
            if !predicate(mid) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    static func coalesce(_ buckets: [Bucket]) -> [Bucket] {
        var out: [Bucket] = []
        for bucket in buckets {
            if let last = out.last, last.upperBound == bucket.upperBound {
                out[out.count - 1].count += bucket.count
            } else {
                out.append(bucket)
            }
        }
        return out
    }

    static func ensureMonotonicAndIgnoreSmallDeltas(_ buckets: inout [Bucket], tolerance: Double) {
        var previous = buckets[0].count
        for index in 1..<buckets.count {
            let current = buckets[index].count
            if current == previous { continue }
            if almostEqual(previous, current, tolerance) || current < previous {
                buckets[index].count = previous
                continue
            }
            previous = current
        }
    }

    /// `util/almost.Equal`.
    static func almostEqual(_ a: Double, _ b: Double, _ epsilon: Double) -> Bool {
        if a.isNaN && b.isNaN { return true }
        if a == b { return true }
        let minNormal = Double.leastNormalMagnitude
        let absSum = abs(a) + abs(b)
        let diff = abs(a - b)
        if a == 0 || b == 0 || absSum < minNormal {
            return diff < epsilon * minNormal
        }
        return diff / min(absSum, Double.greatestFiniteMagnitude) < epsilon
    }
}
