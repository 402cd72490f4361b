public import Foundation

extension URL {
    /// `text` as an `http` or `https` URL (any case) with a host; nil otherwise. The check of every
    /// URL a DeerFlow file or a rendered template gives (http tasks, health checks, links).
    public static func http(_ text: String) -> URL? {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else { return nil }
        return url
    }
}
