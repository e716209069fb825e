/// Reads `name` and `type` from a config.yaml as syft-job writes it (PyYAML's
/// `yaml.dump` of a flat dictionary: one `key: value` line per key, values
/// plain, single-quoted or small flow collections), without Yams.
///
/// Yams costs the one-shot CLI 2.2 ms on a file like that: its resolver
/// matches every plain scalar with NSRegularExpression (ICU starts up for
/// it) and its duplicate-key check hashes nodes (the first lookups of those
/// conformances scan every protocol conformance of the binary). The daemon
/// pays that once; a one-shot run paid it every time.
///
/// Anything outside that narrow form returns nil, and `JobConfig.parse`
/// goes through Yams as before, so the two can only agree: indented or
/// `- ` lines, comments, tags, anchors, double quotes, block scalars,
/// non-ASCII text, a key given twice, a key YAML would type (`null:`,
/// `yes:`), a value holding `: `. `JobConfigTests` checks that both read
/// the same on every file this accepts.
enum FlatConfigYAML {
    /// Keys are checked for duplicates one against another: past this many
    /// (syft-job writes 13), a file goes to Yams, which hashes them, so
    /// that a hostile file of a megabyte of keys costs no quadratic time.
    static let maxKeys = 64

    static func read(_ bytes: [UInt8]) -> JobConfig? {
        // ASCII without control characters but the newline: no tabs, CRs, BOM.
        guard bytes.allSatisfy({ $0 == 0x0A || (0x20...0x7E).contains($0) }) else { return nil }
        var config = JobConfig()
        var keys: [Substring] = []
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.allSatisfy({ $0 == " " }) { continue }
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let key = line[..<colon]
            guard keys.count < maxKeys, isPlainKey(key), !keys.contains(key) else { return nil }
            keys.append(key)
            var rest = line[line.index(after: colon)...]
            guard rest.isEmpty || rest.first == " " else { return nil }
            rest = rest.drop(while: { $0 == " " })
            while rest.last == " " { rest = rest.dropLast() }
            switch key {
            case "name", "type":
                guard let value = scalar(rest) else { return nil }
                if key == "name" { config.name = value } else { config.type = value }
            default:
                guard scalar(rest) != nil || isFlowCollection(rest) else { return nil }
            }
        }
        return config
    }

    /// A key PyYAML reads as a string: lowercase words joined by `_`, none
    /// of the words YAML 1.1 types (null, booleans).
    private static func isPlainKey(_ key: Substring) -> Bool {
        guard let first = key.first, first == "_" || ("a"..."z").contains(first),
              key.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }) else { return false }
        return !["null", "true", "false", "yes", "no", "on", "off", "y", "n"].contains(key)
    }

    /// The value of a plain or single-quoted scalar; `.some(nil)` for YAML's
    /// null (empty, `~`, `null`); nil when it is neither (or not for sure).
    private static func scalar(_ value: Substring) -> String?? {
        if value.isEmpty || ["~", "null", "Null", "NULL"].contains(value) { return .some(nil) }
        if value.first == "'" {
            guard value.count >= 2, value.last == "'" else { return nil }
            let inner = value.dropFirst().dropLast()
            // Quotes inside come in pairs ('' is one quote).
            var result = ""
            var index = inner.startIndex
            while index < inner.endIndex {
                let character = inner[index]
                index = inner.index(after: index)
                if character == "'" {
                    guard index < inner.endIndex, inner[index] == "'" else { return nil }
                    index = inner.index(after: index)
                }
                result.append(character)
            }
            return .some(result)
        }
        // A plain scalar: no indicator first, no comment, no mapping inside.
        guard let first = value.first, !"-?:,[]{}#&*!|>'\"%@`".contains(first),
              !value.contains("#"), !value.contains(": "), value.last != ":" else { return nil }
        return .some(String(value))
    }

    /// `[]`, `[a, b.py, c/d]` or `{}`: a flow list of simple names or an
    /// empty flow mapping (syft-job's `files`, `dependencies`, `headers`).
    private static func isFlowCollection(_ value: Substring) -> Bool {
        if value.first == "{", value.last == "}" { return value.dropFirst().dropLast().allSatisfy { $0 == " " } }
        guard value.first == "[", value.last == "]" else { return false }
        let inner = value.dropFirst().dropLast()
        if inner.allSatisfy({ $0 == " " }) { return true }
        return inner.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { item in
            let name = item.drop(while: { $0 == " " })
            guard let first = name.first, first.isLetter || first.isNumber || first == "_" else { return false }
            return name.allSatisfy { $0.isLetter || $0.isNumber || "._/".contains($0) }
        }
    }
}
