import Runner
import Sandbox
import Testing

@Suite struct ApprovalRulesTests {
    let job = ApprovalRules.Candidate(requester: "Alice@Lab.org", type: "bash", headers: ["project": "study-42"],
                                      fingerprint: "ABCDEF0123")

    @Test func theDefaultPolicyApprovesNothing() throws {
        let text = String(decoding: try #require(BuiltinPolicies.file("policies/approval.yaml")), as: UTF8.self)
        let rules = try ApprovalRules.parse(text, source: "policies/approval.yaml")
        #expect(rules.rules.isEmpty)
        #expect(rules.approvingRule(for: job) == nil)
    }

    @Test func everyNamedCriterionMustHold() throws {
        let rules = try ApprovalRules.parse("""
        rules:
          - name: lab
            requesters: [alice@lab.org]
            types: [bash]
            headers: {project: study-42}
            max_timeout_seconds: 60
            max_memory: 512M
            share_outputs: true
        """, source: "rules.yaml")
        let rule = try #require(rules.approvingRule(for: job))
        #expect(rule.name == "lab")
        #expect(rule.maxTimeoutSeconds == 60 && rule.maxMemoryBytes == 512 << 20)
        #expect(rule.shareOutputs && !rule.shareLogs)
        var other = job
        other.type = "python"
        #expect(rules.approvingRule(for: other) == nil, "the type differs")
        other = job
        other.headers["project"] = "study-43"
        #expect(rules.approvingRule(for: other) == nil, "a header differs")
        other = job
        other.headers = [:]
        #expect(rules.approvingRule(for: other) == nil, "a header is missing")
        other = job
        other.requester = "mallory@lab.org"
        #expect(rules.approvingRule(for: other) == nil, "another requester")
    }

    @Test(arguments: [
        ("*@lab.org", "bob@lab.org", true), ("*@lab.org", "bob@evil-lab.org", false),
        ("*@lab.org", "bob@sub.lab.org", false), ("*@lab.org", "lab.org", false),
        ("*", "anyone@anywhere.net", true), ("bob@lab.org", "BOB@LAB.ORG", true), ("bob@lab.org", "bob@lab.org.evil", false),
    ])
    func requesterPatterns(pattern: String, email: String, matches: Bool) throws {
        let rules = try ApprovalRules.parse("rules: [{requesters: [\"\(pattern)\"]}]", source: "r")
        var candidate = job
        candidate.requester = email
        #expect((rules.approvingRule(for: candidate) != nil) == matches)
    }

    @Test func fingerprintsPinExactSubmissionsAndTheFirstMatchWins() throws {
        let rules = try ApprovalRules.parse("""
        rules:
          - {name: pinned, sha256: [abcdef0123], share_logs: yes}
          - {name: everyone, requesters: ["*"]}
        """, source: "r")
        #expect(rules.approvingRule(for: job)?.name == "pinned")
        var changed = job
        changed.fingerprint = "abcdef0124"
        #expect(rules.approvingRule(for: changed)?.name == "everyone")
    }

    @Test(arguments: [
        ("rules: [{name: x}]", "names neither 'requesters' nor 'sha256'"),
        ("rules: [{requesters: [a@b.c], colour: red}]", "unknown key 'colour'"),
        ("rules: {a: 1}", "'rules' must be a list"),
        ("rules: [{requesters: [a@b.c], max_memory: lots}]", "max_memory must be a size"),
        ("rules: [{requesters: [a@b.c], max_timeout_seconds: -5}]", "max_timeout_seconds must be a positive"),
        ("rules: [{requesters: [a@b.c], share_logs: maybe}]", "share_logs must be true or false"),
        ("rules: [{requesters: {a: b}}]", "requesters must be a list"),
        ("rules: [unclosed", "not valid YAML"),
    ])
    func badRulesAreClearErrors(text: String, message: String) {
        do {
            _ = try ApprovalRules.parse(text, source: "rules.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.code == .invalidApprovalRules)
            #expect(error.description.contains(message), "\(error)")
            #expect(error.description.contains("rules.yaml"))
        }
    }
}
