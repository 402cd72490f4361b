// Generated from openapi.yaml by scripts/generate-openapi; a test checks the two agree.
enum OpenAPIDocument {
    static let yaml = ""
}
