import Foundation

/// `openapi.yaml`, the API's description, as the resource this target ships
/// (`Sources/DeerFlowAPI/openapi.yaml`, a copy of the repository's `openapi.yaml` that
/// `scripts/generate-openapi` writes and `--check` compares).
package enum OpenAPIDocument {
    /// Why the document cannot be read, with what to do.
    package struct Missing: Error, CustomStringConvertible {
        package let description: String
    }

    /// The document's text.
    ///
    /// SwiftPM puts the resource in a folder `<package>_DeerFlowAPI.resources` (`.bundle` on
    /// macOS) beside the executable. This looks for it there without `Bundle.module`, whose
    /// accessor stops the process when the folder is missing (a binary copied on its own).
    /// - Throws: ``Missing`` naming the places searched when the folder or file is not there.
    package static func text() throws -> String {
        var searched: [String] = []
        for directory in candidateDirectories() {
            searched.append(directory.path)
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { continue }
            for entry in entries.sorted() where entry.hasSuffix("_DeerFlowAPI.resources") || entry.hasSuffix("_DeerFlowAPI.bundle") {
                let bundle = directory.appendingPathComponent(entry)
                for file in [bundle.appendingPathComponent("openapi.yaml"), bundle.appendingPathComponent("Contents/Resources/openapi.yaml")] {
                    if let data = FileManager.default.contents(atPath: file.path) {
                        return String(decoding: data, as: UTF8.self)
                    }
                }
            }
        }
        throw Missing(description: """
            the OpenAPI document is not installed: no folder *_DeerFlowAPI.resources with openapi.yaml in \
            \(searched.joined(separator: ", ")); copy that folder from the build directory (.build/release) \
            beside the deerflow executable
            """)
    }

    /// The executable's folder (also through symbolic links) and the main bundle's.
    private static func candidateDirectories() -> [URL] {
        var directories: [URL] = []
        func add(_ url: URL?) {
            guard let url else { return }
            let standardized = url.standardizedFileURL
            if !directories.contains(standardized) { directories.append(standardized) }
        }
        add(Bundle.main.bundleURL)
        add(Bundle.main.resourceURL)
        if let executable = Bundle.main.executableURL {
            add(executable.deletingLastPathComponent())
            add(executable.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        return directories
    }
}
