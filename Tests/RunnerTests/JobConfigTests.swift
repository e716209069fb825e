@testable import Runner
import Testing

/// What the runner reads of a job's config.yaml, and how it says what is wrong.
@Suite struct JobConfigTests {
    private func parse(_ text: String) throws -> JobConfig { try JobConfig.parse(Array(text.utf8)) }

    private func message(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func nameAndTypeAreReadAndEverythingElseIgnored() throws {
        let config = try parse("""
            canonical_name: JobSubmissionMetadata
            name: my job
            type: bash
            files: [a.sh]
            headers: {x: 1}
            """)
        #expect(config == JobConfig(name: "my job", type: "bash"))
    }

    @Test func nullAndMissingValuesAreNilAndScalarsKeepTheirText() throws {
        #expect(try parse("name: null\ntype: ~\n") == JobConfig())
        #expect(try parse("other: 1\n") == JobConfig())
        #expect(try parse("") == JobConfig())
        #expect(try parse("null\n") == JobConfig())
        #expect(try parse("name: 0012\ntype: 'python'\n") == JobConfig(name: "0012", type: "python"))
    }

    @Test func badFilesSayWhatIsWrong() {
        #expect(message("name: [a, b]\n")?.contains("'name' is not a plain value") == true)
        #expect(message("name: a\n  b: [\n")?.contains("not valid YAML") == true)
        #expect(message("- a\n- b\n")?.contains("not a mapping") == true)
        #expect(message("name: a\nname: b\n")?.contains("not valid YAML") == true, "duplicate keys")
        #expect((try? JobConfig.parse([0x6E, 0x3A, 0xFF])) == nil)
    }
}

/// The fast path for flat files (`FlatConfigYAML`): it takes what syft-job
/// writes, and whatever it takes, it reads as Yams does.
@Suite struct FlatConfigYAMLTests {
    static let syftJob = """
        canonical_name: JobSubmissionMetadata
        version: '1'
        name: hello-example
        type: bash
        submitted_at: '2026-11-22T10:29:59.927429Z'
        entrypoint: null
        dependencies: []
        files: [script.sh]
        is_folder_submission: false
        code_path: null
        job_type: local
        datasets: null
        headers: {}

        """

    static func both(_ text: String) -> (fast: JobConfig?, yams: JobConfig?) {
        let bytes = Array(text.utf8)
        return (FlatConfigYAML.read(bytes), try? JobConfig.parseWithYams(bytes))
    }

    @Test func whatSyftJobWritesTakesTheFastPath() {
        for text in [Self.syftJob, "", "\n\n", "name: 'it''s'\ntype: python\n", "name: 0012\ntype: ~\n",
                     "name:\ntype: Null\n", "files: [a.py, b/c.py, _d]\nname: x y z\n", "name: ''\n",
                     "name: 'a: b # c'\n", "name: a:b\n", "name: it's\n", "name: a, b]\n"] {
            let (fast, yams) = Self.both(text)
            #expect(fast != nil, "not taken: \(text.debugDescription)")
            #expect(fast == yams, "\(text.debugDescription): fast \(String(describing: fast)), Yams \(String(describing: yams))")
        }
        #expect(Self.both(Self.syftJob).fast == JobConfig(name: "hello-example", type: "bash"))
    }

    @Test func everythingElseGoesToYams() {
        for text in ["# a comment\nname: a\n", "name: a # comment\n", "name: !!str a\n", "name: &x a\n",
                     "name: \"a\"\n", "name: |\n  a\n", "name:\n  a\n", "other:\n  - a\nname: b\n", "- a\n",
                     "name: a\nname: b\n", "null: a\n", "yes: a\n", "Name: a\n", "name: a: b\n", "name: a:\n",
                     "name: [a]\n", "name: -a\n", "name: a\r\n", "name:\ta\n", "name: caf\u{e9}\n", "\u{feff}name: a\n",
                     "---\nname: a\n", "name:a\n", "name : a\n", "files: [a, 'b']\n", "files: [a\n", "name: 'a\n",
                     "name: 'a'b'\n", "null\n"] {
            #expect(FlatConfigYAML.read(Array(text.utf8)) == nil, "taken: \(text.debugDescription)")
        }
    }

    /// A file of more keys than syft-job writes goes to Yams: the fast
    /// path compares keys pairwise, and a megabyte of them would take it minutes.
    @Test func manyKeysGoToYams() {
        let most = (0..<FlatConfigYAML.maxKeys).map { "k\($0): v\n" }.joined()
        #expect(FlatConfigYAML.read(Array(most.utf8)) != nil)
        let hostile = (0..<100_000).map { "k\($0): v\n" }.joined()
        #expect(FlatConfigYAML.read(Array(hostile.utf8)) == nil)
        #expect(FlatConfigYAML.read(Array((most + "name: x\n").utf8)) == nil)
    }

    /// Files made of every choice of three lines from valid and invalid
    /// fragments: whenever the fast path reads one, Yams reads it the same.
    @Test func generatedFilesReadTheSameBothWays() {
        let fragments = ["name: a", "name: 'b c'", "name: null", "name:", "name: ~x", "name: 12", "name: a: b",
                         "name: 'x''y'", "name: 'x'y'", "type: bash", "type: ''", "type: [a]", "type: {a: 1}", "type: {}", "headers: { }", "headers: {a}",
                         "files: []", "files: [a.py, b]", "files: [a, [b]]", "other: 'q'", "other: a#b",
                         "other: x, y", "  indented: 1", "- item", "", "# note", "name: a ", "type:   python  ",
                         "k_1: v", "null: 1", "name: '", "other: !tag x", "other: *alias"]
        var taken = 0
        for a in fragments {
            for b in fragments {
                for c in fragments {
                    let text = [a, b, c].joined(separator: "\n") + "\n"
                    let (fast, yams) = Self.both(text)
                    guard let fast else { continue }
                    taken += 1
                    #expect(fast == yams, "\(text.debugDescription): fast \(fast), Yams \(String(describing: yams))")
                }
            }
        }
        #expect(taken > 1000, "the fast path took only \(taken) files")
    }
}
