/// Parses sizes such as "512M", "2G", "1GiB", "10MB", "4096" into bytes
/// (binary multiples: K = 1024).
public enum ByteSize {
    public static func parse(_ text: String) -> UInt64? {
        let trimmed = text.trimmingCharacters(in: " ")
        let digits = trimmed.prefix(while: { $0.isNumber })
        guard let value = UInt64(digits) else { return nil }
        var unit = trimmed.dropFirst(digits.count).lowercased()
        for suffix in ["ib", "b"] where unit.hasSuffix(suffix) && unit.count > suffix.count - 1 {
            unit = String(unit.dropLast(suffix.count))
            break
        }
        let shift: UInt64
        switch unit {
        case "": shift = 0
        case "k": shift = 10
        case "m": shift = 20
        case "g": shift = 30
        case "t": shift = 40
        default: return nil
        }
        let (result, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : result
    }

    /// "10 MiB" style, for messages.
    public static func describe(_ bytes: UInt64) -> String {
        for (shift, name) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes >= 1 << shift {
            if bytes % (1 << shift) == 0 { return "\(bytes >> shift) \(name)" }
        }
        return "\(bytes) bytes"
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
