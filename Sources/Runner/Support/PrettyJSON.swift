/// A JSON value, written in the layout of the runner's JSON files:
/// JSONEncoder's `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]`,
/// byte for byte (tests hold the two together).
///
/// It exists for the hot path: result.json is written once per run, and
/// JSONEncoder's first use in a process (its generic containers' metadata,
/// the conformance lookups behind them) cost a one-shot run about 0.3 ms,
/// a twelfth of what bubblewrap takes in all. Types that have a file format
/// give a `PrettyJSON` value (`ResultRecord.prettyJSON`); decoding stays
/// with `Codable`.
public indirect enum PrettyJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([PrettyJSON])
    /// Members in any order: they are written sorted by key.
    case object([Member])

    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: PrettyJSON
        public init(_ key: String, _ value: PrettyJSON) {
            self.key = key
            self.value = value
        }
    }

    /// The text, without a trailing newline.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(into: &out, depth: 0)
        return out
    }

    private func write(into out: inout [UInt8], depth: Int) {
        switch self {
        case .null: out += "null".utf8
        case let .bool(value): out += (value ? "true" : "false").utf8
        case let .integer(value): out += String(value).utf8
        case let .unsigned(value): out += String(value).utf8
        case let .number(value): Self.writeNumber(value, into: &out)
        case let .string(value): Self.writeString(value, into: &out)
        case let .array(elements):
            // JSONEncoder's layout, empty containers included: "[\n\n  ]".
            out += "[\n".utf8
            for (index, element) in elements.enumerated() {
                if index > 0 { out += ",\n".utf8 }
                Self.indent(depth + 1, into: &out)
                element.write(into: &out, depth: depth + 1)
            }
            out.append(0x0A)
            Self.indent(depth, into: &out)
            out.append(UInt8(ascii: "]"))
        case let .object(members):
            out += "{\n".utf8
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, member) in sorted.enumerated() {
                if index > 0 { out += ",\n".utf8 }
                Self.indent(depth + 1, into: &out)
                Self.writeString(member.key, into: &out)
                out += " : ".utf8
                member.value.write(into: &out, depth: depth + 1)
            }
            out.append(0x0A)
            Self.indent(depth, into: &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func indent(_ depth: Int, into out: inout [UInt8]) {
        out += repeatElement(UInt8(ascii: " "), count: 2 * depth)
    }

    /// Integral values without a fraction ("600", not "600.0"), as JSONEncoder.
    private static func writeNumber(_ value: Double, into out: inout [UInt8]) {
        guard value.isFinite else {
            out += "null".utf8
            return
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        out += text.utf8
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func writeString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\"".utf8
            case UInt8(ascii: "\\"): out += "\\\\".utf8
            case 0x08: out += "\\b".utf8
            case 0x0C: out += "\\f".utf8
            case 0x0A: out += "\\n".utf8
            case 0x0D: out += "\\r".utf8
            case 0x09: out += "\\t".utf8
            case 0x00..<0x20: out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension PrettyJSON {
    public static func optional<T>(_ value: T?, _ make: (T) -> PrettyJSON) -> PrettyJSON {
        value.map(make) ?? .null
    }
}
