import Runner
import Sandbox

/// The one-shot command line's values: what `RunCommand` (ArgumentParser)
/// parses, and what `fastParse` makes of the usual lines on its own.
///
/// The fast path exists for launch time: ArgumentParser builds its model of
/// a command by reflection, with generic-requirement checks that each scan
/// every protocol conformance in this (large, static) binary: about 2.5 ms
/// per launch, on a path where bubblewrap takes 4.5 ms in all. `fastParse`
/// reads the same options the same way and gives up (nil) on anything it is
/// not sure of (help, an unknown option, a value that looks like an option,
/// a repeated positional): ArgumentParser then parses the line, with its
/// usage and messages. A test holds the two to the same results.
struct OneShotArguments: Equatable, Sendable {
    var results: String?
    var timeout: Double?
    var net: NetworkPolicy = .none
    var memory: String?
    var pids: UInt64?
    var cpuTime: UInt64?
    var maxOutput: String?
    var maxOutputs: String?
    var tmpSize: String?
    var openFiles: UInt64?
    var fileSize: String?
    var environment: [String] = []
    var seccomp: String?
    var rootfs: String?
    var uid: UInt32?
    var json = false
    var jobdir: String

    /// What is wrong with values that parsed (nil when nothing).
    var problem: String? {
        if let timeout, !(timeout > 0) { return "--timeout must be a positive number of seconds" }
        for size in [memory, maxOutput, maxOutputs, tmpSize, fileSize].compactMap({ $0 }) where ByteSize.parse(size) ?? 0 == 0 {
            return "'\(size)' is not a positive size (examples: 4096, 512K, 10M, 2G)"
        }
        for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
            return "--env takes KEY=VALUE, got '\(entry)'"
        }
        if uid == 0 { return "--uid 0 would run the job as the host's root" }
        if pids == 0 || cpuTime == 0 || openFiles == 0 { return "--pids, --cpu-time and --open-files take a positive number" }
        return nil
    }

    /// The line parsed without ArgumentParser, or nil when it should decide.
    static func fastParse(_ arguments: [String]) -> OneShotArguments? {
        var parsed = OneShotArguments(jobdir: "")
        var jobdir: String?
        var index = 0
        var positionalOnly = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if positionalOnly || !argument.hasPrefix("-") || argument == "-" {
                guard jobdir == nil else { return nil }
                jobdir = argument
                continue
            }
            if argument == "--" {
                positionalOnly = true
                continue
            }
            if argument == "--json" {
                parsed.json = true
                continue
            }
            // --name value, or --name=value.
            var name = argument
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            if value == nil {
                guard index < arguments.count, !arguments[index].hasPrefix("-") else { return nil }
                value = arguments[index]
                index += 1
            }
            guard let text = value, parsed.set(name, text) else { return nil }
        }
        guard let jobdir, parsed.problem == nil else { return nil }
        parsed.jobdir = jobdir
        return parsed
    }

    /// One option's value; false for an unknown option or a value of the wrong type.
    private mutating func set(_ name: String, _ text: String) -> Bool {
        switch name {
        case "--results": results = text
        case "--timeout":
            guard let number = Double(text) else { return false }
            timeout = number
        case "--net":
            guard let policy = NetworkPolicy(rawValue: text) else { return false }
            net = policy
        case "--memory": memory = text
        case "--pids":
            guard let number = UInt64(text) else { return false }
            pids = number
        case "--cpu-time":
            guard let number = UInt64(text) else { return false }
            cpuTime = number
        case "--max-output": maxOutput = text
        case "--max-outputs": maxOutputs = text
        case "--tmp-size": tmpSize = text
        case "--open-files":
            guard let number = UInt64(text) else { return false }
            openFiles = number
        case "--file-size": fileSize = text
        case "--env": environment.append(text)
        case "--seccomp": seccomp = text
        case "--rootfs": rootfs = text
        case "--uid":
            guard let number = UInt32(text) else { return false }
            uid = number
        default: return false
        }
        return true
    }
}
