@testable import DeerFlowUI
import Foundation
import Testing

/// The DAG drawn as SVG text in Swift (not through a template): what it escapes and what it shares.
@Suite("UI drawings")
struct UIDrawingTests {
    @Test("names, captions, links and labels are escaped in the DAG's SVG")
    func escaping() {
        let svg = Drawings.dag(
            names: ["a<b", "c\"d", "e'f"], statuses: ["success", "failed", "pending"], dependencies: ["c\"d": ["a<b"], "e'f": ["c\"d"]],
            href: { "?task=\($0)&x=1" }, label: "graph <of> \"tasks\"", captions: ["e'f": "x&y"], layouts: LayoutCache())
        #expect(!svg.contains("a<b") && !svg.contains("c\"d") && !svg.contains("e'f") && !svg.contains("x&y"))
        #expect(svg.contains("a&lt;b") && svg.contains("c&quot;d — failed") && svg.contains("x&amp;y"))
        #expect(svg.contains("href=\"?task=a&lt;b&amp;x=1\"") && svg.contains("aria-label=\"graph &lt;of&gt; &quot;tasks&quot;\""))
        #expect(Format.escape("<script>alert('1') & \"2\"</script>") == "&lt;script&gt;alert(&#39;1&#39;) &amp; &quot;2&quot;&lt;/script&gt;")
    }

    @Test("every node uses the one box in <defs>, all edges are one path, a succeeded node has no tooltip unless its name is cut")
    func sharedMarkup() {
        let long = String(repeating: "n", count: 30)
        let svg = Drawings.dag(
            names: ["a", "b", "c", long], statuses: ["success", "success", "failed", "success"], dependencies: ["b": ["a"], "c": ["a"], long: ["b", "c"]],
            href: { "#\($0)" }, label: "g", layouts: LayoutCache())
        #expect(svg.components(separatedBy: "<use href=\"#node\"").count - 1 == 4)
        #expect(svg.components(separatedBy: "<rect").count - 1 == 1)
        #expect(svg.components(separatedBy: "<path class=\"edge\"").count - 1 == 1)
        #expect(svg.components(separatedBy: "<title>").count - 1 == 2, "c failed, and the cut name: \(svg)")
        #expect(svg.contains("<title>c — failed</title>") && svg.contains("<title>\(long) — success</title>"))
    }

    @Test("a graph is laid out once: the cache answers the same layout for the same nodes and edges, another for other edges")
    func layoutCache() {
        let cache = LayoutCache()
        let first = cache.layout(count: 3, edges: [(0, 1), (1, 2)])
        let again = cache.layout(count: 3, edges: [(0, 1), (1, 2)])
        let other = cache.layout(count: 3, edges: [(0, 1), (0, 2)])
        #expect(first.edges.map(\.path) == again.edges.map(\.path) && first.width == again.width)
        #expect(other.width != first.width)
    }
}
