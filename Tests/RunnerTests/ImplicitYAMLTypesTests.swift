import Foundation
@testable import Runner
import Testing
import Yams

/// The hand-written typing of plain scalars must type every string as
/// PyYAML's implicit resolvers do, as ICU runs their expressions (which is
/// how Yams, and this runner before, applied them).
@Suite struct ImplicitYAMLTypesTests {
    /// PyYAML's resolver expressions, verbatim, in its order.
    static let patterns: [(Yams.Tag.Name, String)] = [
        (.bool, "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
        (.float, "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
            + "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"),
        (.int, "^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
            + "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"),
        (.merge, "^(?:<<)$"),
        (.null, "^(?:~|null|Null|NULL|)$"),
        (.timestamp, "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
            + "(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?"
            + "(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"),
        (.value, "^(?:=)$"),
    ]
    static let reference: [(Yams.Tag.Name, NSRegularExpression)] = patterns.map {
        ($0.0, try! NSRegularExpression(pattern: $0.1))
    }

    static func expected(_ text: String) -> Yams.Tag.Name {
        let range = NSRange(location: 0, length: text.utf16.count)
        return reference.first { $0.1.firstMatch(in: text, range: range) != nil }?.0 ?? .str
    }

    /// Every kind the expressions tell apart, their edges, and near misses.
    static let samples: [String] = [
        "", "~", "null", "Null", "NULL", "nULL", "none", "yes", "Yes", "YES", "yEs", "y", "n", "no", "on", "ON",
        "off", "Off", "true", "True", "TRUE", "tRUE", "false", "<<", "<", "<<<", "=", "==",
        "0", "-0", "+0", "00", "07", "08", "0_7", "0_", "0b", "0b1", "0b102", "-0b1_0", "0x", "0x1F", "0xg", "+0x_",
        "1", "12", "1_000", "-1", "+12", "1:20", "1:2", "1:60", "1:59", "1:5:7", "190:20:30", "1:", "1::2", "0:20",
        "1.", "1.5", "-1.5", "+1.5e+3", "1.5e3", "1.5E-3", "1.5e+", "1e+3", "1_0.0_1", ".5", "-.5", ".5e-2", "._5",
        ".inf", "-.inf", "+.INF", ".Inf", ".nan", "-.nan", ".NaN", ".nAn", "1:20.5", "1:20.", "-1:20.5", "1:60.5",
        "2001-12-14", "2001-1-14", "2001-12-4", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
        "2001-12-14 21:59:43.10 Z", "2001-12-14T21:59:43Z", "2001-12-14T21:59:43.Z", "2001-12-15 2:59:43.10",
        "2002-12-14T1:2:03", "2002-12-14 01:02:03 +05:3", "2002-12-14 01:02:03 +0530", "2002-12-14 01:02:03 ",
        "2026-11-25T06:00:00.000001Z", "2026-11-25T06:00:00.000001+00:00", "20011-12-14", "2001-123-14",
        "2001-12-14\t\t21:59:43", "2001-12-14  21:59:43 \t+1",
        "pending", "approved", "done", "failed", "ds@example.com", "status", "hello world", "1 2", "- 1", "1e5",
        "0o7", "12abc", "abc12", "é", "1é", "+", "-", ".", "_", ":", "1.5\n", "1\n", "yes\n", "true\r\n", "\n",
        "1\n\n", "1\r", "1\u{85}", "1\u{2028}", "1\u{2029}", "null\u{2029}", "1 ", " 1", "1\t",
    ]

    @Test func typesEverySampleAsPyYAMLsExpressions() {
        for sample in Self.samples {
            #expect(ImplicitYAMLTypes.tag(of: sample) == Self.expected(sample), "\(sample.debugDescription)")
        }
    }

    /// Random strings over the bytes the expressions care about.
    @Test func typesRandomStringsAsPyYAMLsExpressions() {
        let alphabet = Array("0123456789_+-.:eExXbBoOTtZz \t\nnNaAiIfFlLuUsSyY~<=").map(String.init)
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        for length in 1...12 {
            for _ in 0..<3000 {
                let sample = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }.joined()
                #expect(ImplicitYAMLTypes.tag(of: sample) == Self.expected(sample), "\(sample.debugDescription)")
                checked += 1
            }
        }
        // Structured ones, which random bytes rarely hit: dates, times, numbers.
        let parts = ["", "1", "12", "123", "1234", "-", ":", ".", " ", "T", "Z", "+05", ":30", "e+2", "_"]
        for a in parts { for b in parts { for c in parts { for d in parts {
            for sample in ["2001-\(a)\(b)-\(c)\(d)", "2001-12-14\(a)\(b)\(c)\(d)", "\(a)\(b)\(c)\(d)",
                           "2001-12-14 01:02:03\(a)\(b)\(c)\(d)"] {
                #expect(ImplicitYAMLTypes.tag(of: sample) == Self.expected(sample), "\(sample.debugDescription)")
                checked += 1
            }
        } } } }
        #expect(checked > 100_000)
    }

    /// What the client reads back: an untagged plain scalar gets its type,
    /// a quoted or explicitly tagged one keeps its own, keys included.
    @Test func documentsAreTypedAsPyYAMLReadsThem() throws {
        let (_, pairs) = try ClientYAML.mapping(Array("""
            a: 1
            b: '1'
            c: !!str 1
            d: null
            e: 2026-11-25
            f: [yes, '~', 1.5]
            1: x
            !!str 2: y
            on: z

            """.utf8))
        let tags = pairs.map { ($0.key.tag.description, $0.value.tag.description) }
        #expect(tags.map(\.0) == ["str", "str", "str", "str", "str", "str", "int", "str", "bool"].map { "tag:yaml.org,2002:\($0)" })
        #expect(Array(tags.map(\.1).prefix(5)) == ["int", "str", "str", "null", "timestamp"].map { "tag:yaml.org,2002:\($0)" })
        let list = try #require(pairs[5].value.sequence)
        #expect(list.map(\.tag.description) == ["bool", "str", "float"].map { "tag:yaml.org,2002:\($0)" })
    }
}
