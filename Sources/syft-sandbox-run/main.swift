import Sandbox
import Glibc

let skeleton = RootSkeleton(files: [.init(path: "/etc/passwd", contents: Array("root:x:0:0:root:/tmp:/bin/bash\n".utf8))])
var mounts = try RootFilesystem.assembled(skeleton: skeleton, network: .none, tmpBytes: 64 << 20)
mounts.append(.bind("/tmp/j", at: "/job", options: [.idmap], mountPoints: ["outputs"]))
let config = SandboxConfiguration(mounts: mounts, executable: "/bin/bash", arguments: ["bash", "-c", CommandLine.arguments[1]],
    environment: [("PATH", "/usr/bin:/bin")], workingDirectory: "/job", seccomp: .allowAllForTesting)
do {
    let r = try await Sandbox.run(config, output: OutputCapture(stdout: 1, stderr: 2))
    print(r)
} catch { print("ERROR: \(error)") }
