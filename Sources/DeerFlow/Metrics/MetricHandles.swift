import DeerFlowCore

extension MetricsRegistry {
    /// A counter: a value that only goes up. Get a series with `labels(...)` (or use it directly
    /// when it has no labels).
    public struct Counter: Sendable {
        let family: Family

        /// The series for label values given in declaration order.
        public func labels(_ values: String...) throws(MetricsError) -> Child {
            try labels(values: values)
        }

        /// The series for label values given as an array, in the order of the label names.
        func labels(values: [String]) throws(MetricsError) -> Child {
            Child(series: try family.series(values))
        }

        /// The series for label values given by name: `labels(["workflow": "etl", "task": "load"])`.
        public func labels(_ pairs: [String: String]) throws(MetricsError) -> Child {
            Child(series: try family.series(pairs))
        }

        /// Increments a counter without labels.
        public func inc(_ amount: Double = 1) throws(MetricsError) {
            try Child(series: family.series([String]())).inc(amount)
        }

        /// The exposed name (with `_total`).
        public var name: String { family.descriptor.name }

        /// One series of a counter.
        public struct Child: Sendable {
            let series: Family.Series

            /// Adds `amount` (must not be negative; negative amounts are ignored).
            public func inc(_ amount: Double = 1) {
                guard amount >= 0 else { return }
                series.counter?.increment(by: amount)
            }
        }
    }

    /// A gauge: a value that goes up and down.
    public struct Gauge: Sendable {
        let family: Family

        public func labels(_ values: String...) throws(MetricsError) -> Child {
            try labels(values: values)
        }

        /// The series for label values given as an array, in the order of the label names.
        func labels(values: [String]) throws(MetricsError) -> Child {
            Child(series: try family.series(values))
        }

        public func labels(_ pairs: [String: String]) throws(MetricsError) -> Child {
            Child(series: try family.series(pairs))
        }

        /// Sets a gauge without labels.
        public func set(_ value: Double) throws(MetricsError) {
            try Child(series: family.series([String]())).set(value)
        }

        public var name: String { family.descriptor.name }

        /// One series of a gauge.
        public struct Child: Sendable {
            let series: Family.Series

            public func set(_ value: Double) { series.gauge?.set(value) }
            public func inc(_ amount: Double = 1) { series.gauge?.increment(by: amount) }
            public func dec(_ amount: Double = 1) { series.gauge?.increment(by: -amount) }
        }
    }

    /// A histogram: observations counted into buckets, with their sum and count.
    public struct Histogram: Sendable {
        let family: Family

        /// Prometheus client libraries' default buckets, in seconds.
        public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

        public func labels(_ values: String...) throws(MetricsError) -> Child {
            try labels(values: values)
        }

        /// The series for label values given as an array, in the order of the label names.
        func labels(values: [String]) throws(MetricsError) -> Child {
            Child(series: try family.series(values))
        }

        public func labels(_ pairs: [String: String]) throws(MetricsError) -> Child {
            Child(series: try family.series(pairs))
        }

        /// Observes a value on a histogram without labels.
        public func observe(_ value: Double) throws(MetricsError) {
            try Child(series: family.series([String]())).observe(value)
        }

        /// Times `body` on a histogram without labels.
        public func time<T>(_ body: () throws -> T) throws -> T {
            try Child(series: family.series([String]())).time(body)
        }

        /// Times async `body` on a histogram without labels.
        public func time<T>(_ body: () async throws -> T) async throws -> T {
            try await Child(series: family.series([String]())).time(body)
        }

        public var name: String { family.descriptor.name }

        /// One series of a histogram.
        public struct Child: Sendable {
            let series: Family.Series

            public func observe(_ value: Double) { series.histogram?.observe(value) }

            /// Runs `body` and observes how long it took, in seconds (also when it throws).
            public func time<T>(_ body: () throws -> T) rethrows -> T {
                let clock = ContinuousClock()
                let start = clock.now
                defer { observe((clock.now - start).seconds) }
                return try body()
            }

            /// Runs async `body` and observes how long it took, in seconds (also when it throws).
            public func time<T>(_ body: () async throws -> T) async rethrows -> T {
                let clock = ContinuousClock()
                let start = clock.now
                defer { observe((clock.now - start).seconds) }
                return try await body()
            }
        }
    }
}
