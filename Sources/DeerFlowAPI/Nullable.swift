/// A value or JSON `null`, always encoded: the type of openapi.yaml's `Nullable…` schemas.
///
/// A required property that may be null must be sent as `"key": null`. Swift's synthesized
/// `Encodable` leaves out every property of an `Optional` type, so the generator's configuration
/// maps those schemas to this wrapper, which is not an `Optional` and encodes `nil` as `null`.
package struct Nullable<Wrapped: Codable & Hashable & Sendable>: Codable, Hashable, Sendable, ExpressibleByNilLiteral {
    /// The value; nil for JSON `null`.
    package var value: Wrapped?

    package init(_ value: Wrapped?) { self.value = value }

    package init(nilLiteral: ()) { self.value = nil }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        value = container.decodeNil() ? nil : try container.decode(Wrapped.self)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}
