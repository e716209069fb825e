import Foundation
import PackagePlugin

/// Embeds the repository's `rootfs/etc` skeleton, `policies/` and the HTTP
/// API's assets (the dashboard, the OpenAPI document; key `assets/NAME`)
/// into the target (`EmbeddedResources.files`), so the binary needs no file
/// at run time and cannot be pointed at a tampered copy.
@main
struct EmbedResources: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        var inputs: [(key: String, url: URL)] = []
        for (folder, key) in [("rootfs/etc", "rootfs/etc"), ("policies", "policies"),
                              ("Sources/Runner/HTTP/Assets", "assets")] {
            let base = root.appending(path: folder)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey]) else {
                continue
            }
            for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true {
                let relative = url.standardizedFileURL.path.dropFirst(base.standardizedFileURL.path.count + 1)
                inputs.append((key + "/" + relative, url))
            }
        }
        inputs.sort { $0.key < $1.key }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedResources.swift")
        return [.buildCommand(
            displayName: "Embedding rootfs/etc, policies and the HTTP assets into \(target.name)",
            executable: try context.tool(named: "EmbedResourcesTool").url,
            arguments: [output.path] + inputs.flatMap { [$0.key, $0.url.path] },
            inputFiles: inputs.map(\.url),
            outputFiles: [output])]
    }
}
