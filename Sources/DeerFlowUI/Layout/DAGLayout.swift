/// A layered drawing of a DAG, left to right (Sugiyama's method, as dagre and ELK implement it):
/// 1. layers by longest path from the roots;
/// 2. a virtual node wherever an edge spans several layers, so edges route between nodes;
/// 3. the order within each layer by barycentre sweeps, down and up, to reduce crossings;
/// 4. coordinates: layers as columns, each column's nodes stacked and centred;
/// 5. edges as cubic curves through their virtual nodes.
///
/// Hand-written: no maintained Swift library lays out graphs (SwiftGraph has none), and a
/// JavaScript one would contradict the UI's server-side, script-optional design.
struct DAGLayout: Sendable {
    struct Node: Sendable {
        /// Index into the input nodes.
        var index: Int
        var layer: Int
        var x: Double
        var y: Double
    }

    struct Edge: Sendable {
        var from: Int
        var to: Int
        /// An SVG path (`M … C …`).
        var path: String
    }

    static let nodeWidth = 168.0
    static let nodeHeight = 30.0
    static let layerGap = 56.0
    static let rowGap = 12.0
    /// The vertical room a virtual node takes: edges pass close together.
    static let virtualHeight = 8.0
    static let margin = 8.0

    var nodes: [Node]
    var edges: [Edge]
    var width: Double
    var height: Double

    /// Lays out `count` nodes with edges `from → to` (indices; edges that would close a cycle or
    /// point out of range are ignored).
    static func compute(count: Int, edges input: [(from: Int, to: Int)], sweeps: Int = 4) -> DAGLayout {
        guard count > 0 else { return DAGLayout(nodes: [], edges: [], width: 0, height: 0) }
        var successors = Array(repeating: [Int](), count: count)
        var indegree = Array(repeating: 0, count: count)
        var seen = Set<Int>()
        for edge in input where edge.from != edge.to && (0..<count).contains(edge.from) && (0..<count).contains(edge.to) {
            guard seen.insert(edge.from * count + edge.to).inserted else { continue }
            successors[edge.from].append(edge.to)
            indegree[edge.to] += 1
        }
        // 1. Longest-path layers in topological order (Kahn); nodes left over are on a cycle and
        // are put after everything else rather than dropped.
        var layer = Array(repeating: 0, count: count)
        var queue = (0..<count).filter { indegree[$0] == 0 }
        var remaining = indegree
        var head = 0
        var ordered: [Int] = []
        ordered.reserveCapacity(count)
        while head < queue.count {
            let node = queue[head]
            head += 1
            ordered.append(node)
            for next in successors[node] {
                layer[next] = max(layer[next], layer[node] + 1)
                remaining[next] -= 1
                if remaining[next] == 0 { queue.append(next) }
            }
        }
        var placed = Array(repeating: false, count: count)
        for node in ordered { placed[node] = true }
        let deepest = layer.max() ?? 0
        for node in 0..<count where !placed[node] { layer[node] = deepest + 1 }
        var realEdges: [(Int, Int)] = []
        for from in 0..<count {
            for to in successors[from] where layer[to] > layer[from] { realEdges.append((from, to)) }
        }

        // 2. Virtual nodes: ids count..<total; each long edge becomes a chain.
        var nodeLayer = layer
        var chains: [[Int]] = []  // per real edge: the node ids along it
        var up = Array(repeating: [Int](), count: count)
        var down = Array(repeating: [Int](), count: count)
        for (from, to) in realEdges {
            var chain = [from]
            var previous = from
            for step in (layer[from] + 1)..<max(layer[from] + 1, layer[to]) {
                let id = nodeLayer.count
                nodeLayer.append(step)
                up.append([])
                down.append([])
                down[previous].append(id)
                up[id].append(previous)
                chain.append(id)
                previous = id
            }
            down[previous].append(to)
            up[to].append(previous)
            chain.append(to)
            chains.append(chain)
        }
        let total = nodeLayer.count
        let layerCount = (nodeLayer.max() ?? 0) + 1
        var layers = Array(repeating: [Int](), count: layerCount)
        for node in 0..<total { layers[nodeLayer[node]].append(node) }

        // 3. Barycentre sweeps.
        var position = Array(repeating: 0.0, count: total)
        func number(_ nodes: [Int]) { for (offset, node) in nodes.enumerated() { position[node] = Double(offset) } }
        for nodes in layers { number(nodes) }
        func reorder(_ index: Int, by neighbours: [[Int]]) {
            let keyed = layers[index].map { node -> (Int, Double) in
                let around = neighbours[node]
                guard !around.isEmpty else { return (node, position[node]) }
                return (node, around.reduce(0.0) { $0 + position[$1] } / Double(around.count))
            }
            // Stable: ties keep the current order.
            layers[index] = keyed.enumerated().sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.map(\.element.0)
            number(layers[index])
        }
        for _ in 0..<sweeps {
            if layerCount > 1 {
                for index in 1..<layerCount { reorder(index, by: up) }
                for index in stride(from: layerCount - 2, through: 0, by: -1) { reorder(index, by: down) }
            }
        }

        // 4. Coordinates: columns left to right, each column's nodes stacked and centred.
        var x = Array(repeating: 0.0, count: total)
        var y = Array(repeating: 0.0, count: total)
        var columnHeights = Array(repeating: 0.0, count: layerCount)
        for (index, nodes) in layers.enumerated() {
            var offset = 0.0
            for node in nodes {
                let height = node < count ? nodeHeight : virtualHeight
                y[node] = offset + height / 2
                offset += height + (node < count ? rowGap : rowGap / 2)
            }
            columnHeights[index] = max(0, offset - rowGap)
        }
        let tallest = columnHeights.max() ?? 0
        for (index, nodes) in layers.enumerated() {
            let shift = (tallest - columnHeights[index]) / 2 + margin
            for node in nodes {
                y[node] += shift
                x[node] = margin + Double(index) * (nodeWidth + layerGap)
            }
        }

        // 5. Edges: from a node's right side to the next one's left side; a virtual node is
        // crossed by a straight line as wide as a real node, so edges stay between columns.
        var edges: [Edge] = []
        edges.reserveCapacity(chains.count)
        for chain in chains {
            guard let first = chain.first, let last = chain.last else { continue }
            var path = "M\(format(x[first] + nodeWidth)),\(format(y[first]))"
            var currentX = x[first] + nodeWidth
            var currentY = y[first]
            for node in chain.dropFirst() {
                let targetX = x[node]
                let targetY = y[node]
                let bend = (targetX - currentX) / 2
                // The same curve in absolute or relative coordinates, whichever is shorter.
                let absolute = "C\(format(currentX + bend)),\(format(currentY)) \(format(targetX - bend)),\(format(targetY)) \(format(targetX)),\(format(targetY))"
                let dy = format(targetY - currentY)
                let relative = "c\(format(bend)),0 \(format(bend)),\(dy) \(format(targetX - currentX)),\(dy)"
                path += relative.utf8.count < absolute.utf8.count ? relative : absolute
                currentX = targetX
                currentY = targetY
                if node >= count {
                    currentX += nodeWidth
                    path += "h\(format(nodeWidth))"
                }
            }
            edges.append(Edge(from: first, to: last, path: path))
        }
        let nodes = (0..<count).map { Node(index: $0, layer: nodeLayer[$0], x: x[$0], y: y[$0] - nodeHeight / 2) }
        let width = 2 * margin + Double(layerCount) * nodeWidth + Double(layerCount - 1) * layerGap
        return DAGLayout(nodes: nodes, edges: edges, width: width, height: tallest + 2 * margin)
    }

    /// One decimal is enough for pixels, and keeps pages small.
    static func format(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        let whole = tenths / 10
        let fraction = abs(tenths % 10)
        if fraction == 0 { return String(whole) }
        return (tenths < 0 && whole == 0 ? "-" : "") + "\(whole).\(fraction)"
    }
}
