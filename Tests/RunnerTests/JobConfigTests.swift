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
