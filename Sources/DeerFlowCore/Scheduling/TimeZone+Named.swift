public import Foundation

extension TimeZone {
    /// The zone an IANA name (`Europe/Berlin`, `UTC`) stands for; nil when there is none by that
    /// name. Every schedule's zone is read through here.
    ///
    /// `UTC` and `GMT`, the zone of every schedule that names none, are `TimeZone.gmt`, without a
    /// lookup: naming a zone through Foundation opens ICU's time zone data and code (with the YAML
    /// reader's patterns, 0.7 MiB of an idle server's resident memory; its description then
    /// says `GMT`).
    public static func named(_ identifier: String) -> TimeZone? {
        if identifier == "UTC" || identifier == "GMT" { return .gmt }
        return TimeZone(identifier: identifier)
    }
}
