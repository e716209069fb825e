// swift-tools-version: 6.1
import PackageDescription

/// The one-shot launch's hot code, laid out together in the release
/// executable (see `scripts/launch-order.sh`).
let launchOrder = Context.packageDirectory + "/Sources/syft-sandbox-run/launch.order"
/// Release code generation for the launch: each function in its own section,
/// so that the linker can place the hot ones together; concrete generic
/// types' metadata through their accessors rather than demangled from their
/// names at first use by the runtime's type decoder (perf, before: 0.2 ms of
/// a one-shot run's CPU was under that instantiation by name; the wall-time
/// gain, order-alternated A/B, was about 1 %).
let launchSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-function-sections",
                  "-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"],
                 .when(configuration: .release)),
]

let package = Package(
    name: "syft-sandbox-run",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "syft-sandbox-run", targets: ["syft-sandbox-run"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
        .library(name: "Runner", targets: ["Runner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The C shim: clone, namespaces, mounts, pivot_root, rlimits, capabilities, seccomp.
        .target(
            name: "CSandbox",
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]),
                        .unsafeFlags(["-ffunction-sections"], .when(configuration: .release))],
            linkerSettings: [.linkedLibrary("seccomp"), .linkedLibrary("cap")]
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "CSandbox",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: launchSettings
        ),
        .target(
            name: "Runner",
            dependencies: [
                "Sandbox", "CSandbox",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The dashboard's files and the OpenAPI document are compiled in by the plugin.
            exclude: ["HTTP/Assets"],
            swiftSettings: launchSettings,
            plugins: ["EmbedResources"]
        ),
        // rootfs/etc and policies/ compiled into the Runner module, the
        // default seccomp profile also as its BPF program.
        .executableTarget(name: "EmbedResourcesTool", dependencies: ["Sandbox"], path: "Plugins/EmbedResourcesTool"),
        .plugin(name: "EmbedResources", capability: .buildTool(), dependencies: ["EmbedResourcesTool"]),
        .executableTarget(
            name: "syft-sandbox-run",
            dependencies: [
                "Sandbox", "Runner", "CSandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["launch.order"],
            swiftSettings: launchSettings,
            // Launch time. Release: a static, position-dependent executable:
            // no dynamic loader, no relocations to apply at start (2 ms of a
            // one-shot run) and no relocated pages for a fork to copy; the
            // launch's hot functions laid out together (`launchOrder`).
            // Debug (the tests link it too): lld packs the relative
            // relocations (DT_RELR), which ld.so applies in a fraction of the time.
            linkerSettings: [
                .unsafeFlags(["-static-executable", "-use-ld=lld",
                              "-Xlinker", "--symbol-ordering-file=\(launchOrder)", "-Xlinker", "--no-warn-symbol-ordering"],
                             .when(configuration: .release)),
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                             .when(configuration: .debug)),
            ]
        ),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "CSandbox"]),
        .testTarget(
            name: "RunnerTests",
            dependencies: [
                "Runner", "Sandbox",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Sandbox", "Runner", "syft-sandbox-run"],
            resources: [.copy("Probes")]
        ),
    ]
)
