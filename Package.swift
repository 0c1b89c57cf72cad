// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Suneung",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "suneung", targets: ["suneung"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/JohnSundell/Plot", from: "0.14.0"),
        // The team server; no traits: swift-configuration is not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1")
    ],
    targets: [
        // Everything about the competition's files and prompts; no dependencies.
        .target(name: "Exam"),
        // The SQLite store: datasets, prediction sets, scores, submissions.
        .target(
            name: "Store",
            dependencies: [
                "Exam",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto")
            ]),
        // GGUF files (memory-mapped) and ggml's quantisation formats.
        .target(name: "GGUF"),
        // SentencePiece and byte-level BPE tokenizers from GGUF metadata; chat templates.
        .target(name: "Tokenizer", dependencies: ["GGUF", .product(name: "HeapModule", package: "swift-collections")]),
        // OpenBLAS's CBLAS, from the system (libopenblas-dev).
        .systemLibrary(name: "CBLAS"),
        // The AVX-512 product over weights packed once and the integer products over
        // codes (C: Swift cannot target AVX-512 per function); Tensor chooses a path at
        // run time. Also the allocator's one setting (mallopt is not in Swift's Glibc).
        .target(name: "PackedKernel"),
        // Row-major Float32 kernels: BLAS products, norms, RoPE, activations, attention.
        .target(name: "Tensor", dependencies: ["CBLAS", "PackedKernel"]),
        // Model families as data plus one forward pass; the multiple-choice scorer.
        .target(name: "Engine", dependencies: ["GGUF", "Tokenizer", "Tensor"]),
        // LoRA training: the backward pass over Engine's layers, AdamW, PEFT folders.
        // (Ensemble only for its seeded generator.)
        .target(name: "Training", dependencies: ["Engine", "Ensemble", "GGUF", "Tensor", "Tokenizer", "Exam", "CBLAS"]),
        // The pipeline's report: a self-contained HTML page and SVG figures, from data.
        .target(name: "Report", dependencies: ["Ensemble", .product(name: "Plot", package: "Plot")]),
        // Pure ensemble maths over prediction matrices; no I/O.
        .target(name: "Ensemble"),
        // What the commands and the server do, as functions over typed requests that
        // report typed events: import, predict, train, ensemble, the pipeline and its
        // report, member selection, the competition's settings.
        .target(
            name: "Workflow",
            dependencies: [
                "Exam", "Store", "Ensemble", "Engine", "Training", "Tokenizer", "GGUF", "Tensor", "Report", "Serving",
                .product(name: "Yams", package: "Yams")
            ]),
        // One HTTP request, bounded in bytes and seconds: what both clients send through.
        .target(
            name: "Transport",
            dependencies: [
                "Exam", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio")
            ]),
        // The team's serving engines (vLLM, llama.cpp's server, any OpenAI-compatible
        // API): what a server offers, and each choice's log-probability from it.
        .target(name: "Serving", dependencies: ["Exam", "Transport"]),
        // The client of a team server: remotes and their tokens, push, pull and --remote,
        // and the JSON bodies of /api/v1 that both sides read.
        .target(
            name: "TeamClient",
            dependencies: ["Exam", "Store", "Workflow", "Transport", .product(name: "Yams", package: "Yams")]),
        // The team's store over HTTP: the JSON API and the dashboard.
        .target(
            name: "Server",
            dependencies: [
                "Exam", "Store", "Ensemble", "Workflow", "Report", "TeamClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Plot", package: "Plot"), .product(name: "MultipartKit", package: "multipart-kit")
            ]),
        .executableTarget(
            name: "suneung",
            dependencies: [
                "Exam", "Store", "Ensemble", "Workflow", "Server", "TeamClient", "GGUF", "Tokenizer", "Engine", "Tensor", "Training",
                "Report",
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        .executableTarget(
            name: "suneung-bench", dependencies: ["Exam", "Store", "Ensemble", "GGUF", "Tokenizer", "Engine", "Tensor", "Training"]),
        // Test helpers shared by the test targets (where the default models are).
        .target(name: "TestSupport", dependencies: ["GGUF", .product(name: "Crypto", package: "swift-crypto")], path: "Tests/TestSupport"),
        .testTarget(
            name: "ExamTests", dependencies: ["Exam", .product(name: "Crypto", package: "swift-crypto")], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StoreTests", dependencies: ["Store", "Exam", "Workflow", "Ensemble", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "EnsembleTests", dependencies: ["Ensemble"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving"]),
        .testTarget(
            name: "EngineTests",
            dependencies: [
                "Engine", "Tensor", "GGUF", "Tokenizer", "Exam", "TestSupport", .product(name: "Crypto", package: "swift-crypto")
            ], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "TrainingTests", dependencies: ["Training", "Engine", "Ensemble", "Exam", "GGUF", "Tensor", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "TokenizerTests",
            dependencies: ["Tokenizer", "GGUF", "Exam", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "GGUFTests", dependencies: ["GGUF", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "TeamClient", "Store", "Workflow", "Exam", "TestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "GRDB", package: "GRDB.swift")
            ]),
        .testTarget(
            name: "CommandTests",
            dependencies: [
                "suneung", "TestSupport", "GGUF", "Exam", "Tokenizer", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto")
            ])
    ],
    swiftLanguageModes: [.v6]
)
