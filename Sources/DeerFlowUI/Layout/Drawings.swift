import DeerFlow
import DeerFlowCore
import Foundation
import Synchronization

/// The pages' two big drawings, the DAG and the timeline, written as SVG text directly rather
/// than through a Mustache template: they have a node, an edge or a row per task (hundreds), and
/// a template's per-row dictionaries cost more than the page's whole store work. Repeated
/// geometry and styling are shared (one `<rect>` in `<defs>` every node uses, one path for all
/// edges, CSS for fills, anchors and sizes), so a 500-task run's page stays small.
///
/// Everything from users (task names, captions) goes through ``Format/escape(_:)``.
enum Drawings {
    /// A DAG's nodes and edges: `names` in order, a node links to `href(name)`. With `statuses`,
    /// each node is coloured by its state and carries its glyph (a run), with the state in words
    /// as its tooltip unless it succeeded; without, plain (a workflow's definition). A shortened
    /// name has its full name as tooltip. Past 1,500 tasks only the first 1,500 are drawn, and the drawing
    /// says so. `captions`: a node's text instead of its name (a mapped task's counts).
    static func dag(
        names: [String], statuses: [String]?, dependencies: [String: [String]], href: (String) -> String, label: String,
        captions: [String: String] = [:], layouts: LayoutCache
    ) -> String {
        let limit = 1500
        let shown = Array(names.prefix(limit))
        let index = Dictionary(shown.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })
        var edges: [(from: Int, to: Int)] = []
        for (offset, name) in shown.enumerated() {
            for dependency in dependencies[name] ?? [] { if let from = index[dependency] { edges.append((from, offset)) } }
        }
        let layout = layouts.layout(count: shown.count, edges: edges)
        let f = DAGLayout.format
        let width = f(layout.width)
        let height = f(layout.height)
        var svg = "<svg class=\"dag\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(Format.escape(label))\">\n"
        svg.reserveCapacity(shown.count * 140 + layout.edges.count * 40 + 256)
        svg += "<defs><rect id=\"node\" width=\"\(f(DAGLayout.nodeWidth))\" height=\"\(f(DAGLayout.nodeHeight))\" rx=\"5\"/></defs>\n"
        if !layout.edges.isEmpty {
            svg += "<path class=\"edge\" d=\""
            for edge in layout.edges { svg += edge.path }
            svg += "\"/>\n"
        }
        let textY = DAGLayout.nodeHeight / 2 + 4
        for node in layout.nodes {
            let name = shown[node.index]
            let text = captions[name] ?? name
            let room = captions[name] == nil ? 21 : 24
            let truncated = text.count > room
            let short = truncated ? String(text.prefix(room - 1)) + "…" : text
            svg += "<a"
            if let statuses {
                let status = node.index < statuses.count ? statuses[node.index] : "pending"
                svg += " class=\"n-\(status)\" href=\"\(Format.escape(href(name)))\">"
                // A successful node's tooltip would only repeat its name beside ✓ in green.
                if truncated || status != "success" {
                    svg += "<title>\(Format.escape(text)) — \(status.replacingOccurrences(of: "_", with: " "))</title>"
                }
                svg += "<use href=\"#node\" x=\"\(f(node.x))\" y=\"\(f(node.y))\"/><text x=\"\(f(node.x + 8))\" y=\"\(f(node.y + textY))\">"
                svg += "\(Format.glyphs[status] ?? "•") \(Format.escape(short))</text></a>"
            } else {
                svg += " href=\"\(Format.escape(href(name)))\">"
                if truncated { svg += "<title>\(Format.escape(text))</title>" }
                svg += "<use href=\"#node\" x=\"\(f(node.x))\" y=\"\(f(node.y))\"/><text x=\"\(f(node.x + 8))\" y=\"\(f(node.y + textY))\">\(Format.escape(short))</text></a>"
            }
        }
        svg += "\n</svg>"
        if names.count > limit { svg += "\n<p class=\"sub\">Showing the first \(limit) of \(names.count) tasks.</p>" }
        return svg
    }

    /// A run's timeline: one row per task in `rows` (indices into `timeline.rows`; all when nil),
    /// its segments as bars with their words and durations as tooltips, the critical path's rows
    /// highlighted and marked ★.
    static func timeline(_ timeline: Timeline, rows selected: [Int]? = nil) -> String {
        let labelWidth = 190.0
        let barsWidth = 860.0
        let rowHeight = 20.0
        let top = 18.0
        let span = max(timeline.end.timeIntervalSince(timeline.start), 0.001)
        let scale = barsWidth / span
        let f = DAGLayout.format
        let rows = selected ?? Array(timeline.rows.indices)
        let height = f(top + Double(rows.count) * rowHeight + 4)
        let width = f(labelWidth + barsWidth + 10)
        var svg = "<svg width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"Timeline of the run's tasks\">\n"
        svg.reserveCapacity(rows.count * 300 + 512)
        svg += "<g class=\"ticks\">"
        for offset in Timeline.ticks(span: span) {
            let x = f(labelWidth + offset * scale)
            svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"14\" y2=\"\(height)\"/><text x=\"\(x)\" y=\"11\">+\(DurationText.elapsed(seconds: offset, compact: true))</text>"
        }
        svg += "</g>\n"
        for (position, index) in rows.enumerated() {
            let row = timeline.rows[index]
            let y = top + Double(position) * rowHeight
            let name = Format.escape(row.task.id.count > 24 ? String(row.task.id.prefix(23)) + "…" : row.task.id)
            svg += "<g>"
            if row.critical {
                svg += "<rect class=\"critical-lane\" y=\"\(f(y))\" width=\"\(width)\" height=\"\(f(rowHeight))\"/>"
                svg += "<text class=\"label critical\" x=\"\(f(labelWidth - 8))\" y=\"\(f(y + rowHeight / 2 + 4))\">★ \(name)</text>"
            } else {
                svg += "<text class=\"label\" x=\"\(f(labelWidth - 8))\" y=\"\(f(y + rowHeight / 2 + 4))\">\(name)</text>"
            }
            let task = Format.escape(row.task.id)
            for segment in row.segments {
                let x = labelWidth + segment.start.timeIntervalSince(timeline.start) * scale
                let barWidth = max(1.5, segment.end.timeIntervalSince(segment.start) * scale)
                let kind = segment.kind == .running ? "ran-\(segment.status?.rawValue ?? "running")" : segment.kind.rawValue
                let words: String
                switch segment.kind {
                case .waiting: words = "waiting for dependencies"
                case .queued: words = "attempt \(segment.attempt) queued for a worker"
                case .running: words = "attempt \(segment.attempt) running (\(segment.status?.rawValue ?? "running"))"
                case .backoff: words = "retry back-off before attempt \(segment.attempt)"
                }
                svg += "<rect class=\"\(kind)\" x=\"\(f(x))\" y=\"\(f(y + 3))\" width=\"\(f(barWidth))\" height=\"\(f(rowHeight - 6))\">"
                svg += "<title>\(task): \(words), \(Format.duration(segment.end.timeIntervalSince(segment.start)))</title></rect>"
            }
            svg += "</g>"
        }
        svg += "\n</svg>"
        return svg
    }
}

/// DAG layouts by their graph (node count and edges): a workflow's page and its runs' pages draw
/// the same graph again and again, and its layout (crossing reduction) is the costly part. Up to
/// 32 graphs are kept; when full, all are dropped.
final class LayoutCache: Sendable {
    struct Key: Hashable {
        var count: Int
        var edges: [Int]
    }

    private let layouts = Mutex<[Key: DAGLayout]>([:])

    /// The layout of `count` nodes with `edges`, computed once per graph.
    func layout(count: Int, edges: [(from: Int, to: Int)]) -> DAGLayout {
        let key = Key(count: count, edges: edges.flatMap { [$0.from, $0.to] })
        if let kept = layouts.withLock({ $0[key] }) { return kept }
        let layout = DAGLayout.compute(count: count, edges: edges)
        layouts.withLock { layouts in
            if layouts.count >= 32 { layouts.removeAll() }
            layouts[key] = layout
        }
        return layout
    }
}
