import Foundation
import Hummingbird
import Workflow

/// One route of the JSON API (`API.routes`): its method and path under /api/v1
/// (Hummingbird's form, `sets/:ref`), what it does, its query fields, the bodies it
/// takes, what it answers, and its handler.
struct APIRoute: Sendable {
    var method: HTTPRequest.Method
    var path: String
    var summary: String
    var query: [String]
    var body: [String]
    var answers: String
    var handler: @Sendable (API) -> @Sendable (Request, ServerContext) async throws -> Response

    init(
        _ method: HTTPRequest.Method, _ path: String, _ summary: String, query: [String] = [], body: [String] = [],
        answers: String = "application/json",
        handler: @escaping @Sendable (API) -> @Sendable (Request, ServerContext) async throws -> Response
    ) {
        (self.method, self.path, self.summary, self.query, self.body, self.answers, self.handler) =
            (method, path, summary, query, body, answers, handler)
    }
}

/// /api/v1/openapi.json: an OpenAPI 3.1 document made from `API.routes` (and /health,
/// served beside them), so every route is in it and nothing else.
enum OpenAPI {
    static let document: String = {
        var paths: [String: [String: Any]] = [
            "/health": [
                "get": [
                    "summary": "Whether the server is up, and its version (no token needed)", "security": [[String: [String]]](),
                    "responses": ["200": ["description": "ok", "content": ["application/json": [String: Any]()]]]
                ]
            ]
        ]
        for route in API.routes {
            let segments = route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            var operation: [String: Any] = [
                "summary": route.summary, "operationId": "\(route.method.rawValue.lowercased())_\(route.path)",
                "responses": [
                    "200": ["description": "done", "content": [route.answers: [String: Any]()]],
                    "default": [
                        "description": "refused: {\"error\": message, \"code\": ...}", "content": ["application/json": [String: Any]()]
                    ]
                ]
            ]
            let parameters: [[String: Any]] =
                segments.filter { $0.hasPrefix("{") }.map {
                    ["name": String($0.dropFirst().dropLast()), "in": "path", "required": true, "schema": ["type": "string"]]
                } + route.query.map { ["name": $0, "in": "query", "required": false, "schema": ["type": "string"]] }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if !route.body.isEmpty {
                operation["requestBody"] = [
                    "required": true, "content": Dictionary(uniqueKeysWithValues: route.body.map { ($0, [String: Any]()) })
                ]
            }
            if route.path == "openapi.json" { operation["security"] = [[String: [String]]]() }
            paths["/api/v1/" + segments.joined(separator: "/"), default: [:]][route.method.rawValue.lowercased()] = operation
        }
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "Suneung team server", "version": suneungVersion],
            "components": ["securitySchemes": ["token": ["type": "http", "scheme": "bearer"]]],
            "security": [["token": [String]()]],
            "paths": paths
        ]
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }()
}
