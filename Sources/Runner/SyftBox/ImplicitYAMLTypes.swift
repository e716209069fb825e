import Yams

/// PyYAML's implicit typing of plain scalars (YAML 1.1: bool, int, float,
/// null, timestamp, merge, value), decided by hand.
///
/// Yams decides it with NSRegularExpression, one expression per type: a
/// few microseconds each, seven for every plain string, and reading a
/// state.yaml hashes every key. That was a tenth of the daemon's CPU. These
/// functions match exactly what PyYAML's expressions match as ICU applies
/// them (`$` also before one final line break); `ImplicitYAMLTypesTests`
/// checks them against the expressions.
enum ImplicitYAMLTypes {
    /// The tag PyYAML gives `plain` when it carries no explicit tag.
    static func tag(of plain: String) -> Tag.Name {
        var text = Array(plain.utf8)
        dropFinalLineBreak(&text)
        var scanner = Scanner(text)
        if isBool(text) { return .bool }
        if scanner.isFloat() { return .float }
        if scanner.isInt() { return .int }
        if text == [0x3C, 0x3C] { return .merge } // <<
        if isNull(text) { return .null }
        if scanner.isTimestamp() { return .timestamp }
        if text == [0x3D] { return .value } // =
        return .str
    }

    /// ICU's `$` matches before a line terminator that ends the input too.
    private static func dropFinalLineBreak(_ text: inout [UInt8]) {
        if text.last == 0x0A {
            text.removeLast()
            if text.last == 0x0D { text.removeLast() }
        } else if text.last == 0x0D {
            text.removeLast()
        } else if text.count >= 2, text.suffix(2) == [0xC2, 0x85] { // U+0085
            text.removeLast(2)
        } else if text.count >= 3, text.suffix(3) == [0xE2, 0x80, 0xA8] || text.suffix(3) == [0xE2, 0x80, 0xA9] {
            text.removeLast(3) // U+2028, U+2029
        }
    }

    private static let bools: [[UInt8]] = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF",
    ].map { Array($0.utf8) }

    private static let nulls: [[UInt8]] = ["~", "null", "Null", "NULL", ""].map { Array($0.utf8) }

    private static func isBool(_ text: [UInt8]) -> Bool { bools.contains(text) }
    private static func isNull(_ text: [UInt8]) -> Bool { nulls.contains(text) }

    /// A cursor over the bytes, each `is…` starting from the beginning.
    private struct Scanner {
        let text: [UInt8]
        var index = 0

        init(_ text: [UInt8]) { self.text = text }

        var atEnd: Bool { index == text.count }
        var current: UInt8? { index < text.count ? text[index] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard current == byte else { return false }
            index += 1
            return true
        }

        mutating func take(where predicate: (UInt8) -> Bool) -> Bool {
            guard let byte = current, predicate(byte) else { return false }
            index += 1
            return true
        }

        /// Consumes bytes while `predicate` holds; how many.
        @discardableResult
        mutating func skip(while predicate: (UInt8) -> Bool) -> Int {
            let start = index
            while let byte = current, predicate(byte) { index += 1 }
            return index - start
        }

        mutating func takeSign() { _ = take(0x2B) || take(0x2D) }

        /// `(?::[0-5]?[0-9])+`: at least one group.
        mutating func takeSexagesimalGroups() -> Bool {
            var groups = 0
            while take(0x3A) { // :
                let start = index
                let digits = skip(while: isDigit)
                guard digits == 1 || (digits == 2 && text[start] <= 0x35) else { return false }
                groups += 1
            }
            return groups > 0
        }

        /// `[eE][-+][0-9]+`, when present; false when it starts but is incomplete.
        mutating func takeExponentIfAny() -> Bool {
            guard take(0x65) || take(0x45) else { return true }
            guard take(0x2B) || take(0x2D) else { return false }
            return skip(while: isDigit) > 0
        }

        mutating func isFloat() -> Bool {
            index = 0
            // \.(?:nan|NaN|NAN) and \.[0-9][0-9_]*(?:[eE][-+][0-9]+)? take no sign.
            if take(0x2E) {
                if ["nan", "NaN", "NAN", "inf", "Inf", "INF"].contains(String(decoding: text[index...], as: UTF8.self)) {
                    return true
                }
                guard take(where: isDigit) else { return false }
                skip(while: isDigitOrUnderscore)
                return takeExponentIfAny() && atEnd
            }
            takeSign()
            if take(0x2E) { // [-+]?\.(?:inf|Inf|INF)
                return ["inf", "Inf", "INF"].contains(String(decoding: text[index...], as: UTF8.self))
            }
            guard take(where: isDigit) else { return false }
            skip(while: isDigitOrUnderscore)
            let sexagesimal = current == 0x3A // takes no exponent
            if sexagesimal, !takeSexagesimalGroups() { return false }
            guard take(0x2E) else { return false }
            skip(while: isDigitOrUnderscore)
            return (sexagesimal || takeExponentIfAny()) && atEnd
        }

        mutating func isInt() -> Bool {
            index = 0
            takeSign()
            if take(0x30) { // 0
                if atEnd { return true }
                if take(0x62) { return skip(while: { $0 == 0x30 || $0 == 0x31 || $0 == 0x5F }) > 0 && atEnd } // 0b
                if take(0x78) { return skip(while: { isHexDigit($0) || $0 == 0x5F }) > 0 && atEnd } // 0x
                return skip(while: { (0x30...0x37).contains($0) || $0 == 0x5F }) > 0 && atEnd // octal
            }
            guard take(where: { (0x31...0x39).contains($0) }) else { return false }
            skip(while: isDigitOrUnderscore)
            if atEnd { return true }
            return current == 0x3A && takeSexagesimalGroups() && atEnd
        }

        /// `yyyy-mm-dd`, or `yyyy-m-d` with a time, a fraction and a zone.
        mutating func isTimestamp() -> Bool {
            index = 0
            guard skip(while: isDigit) == 4, take(0x2D) else { return false }
            let month = skip(while: isDigit)
            guard (1...2).contains(month), take(0x2D) else { return false }
            let day = skip(while: isDigit)
            guard (1...2).contains(day) else { return false }
            if atEnd { return month == 2 && day == 2 }
            if !(take(0x54) || take(0x74)) { // T, t
                guard skip(while: isBlank) > 0 else { return false }
            }
            guard (1...2).contains(skip(while: isDigit)), take(0x3A), skip(while: isDigit) == 2, take(0x3A),
                  skip(while: isDigit) == 2 else { return false }
            if take(0x2E) { skip(while: isDigit) }
            if atEnd { return true }
            skip(while: isBlank)
            if take(0x5A) { return atEnd } // Z
            guard take(0x2B) || take(0x2D), (1...2).contains(skip(while: isDigit)) else { return false }
            if atEnd { return true }
            return take(0x3A) && skip(while: isDigit) == 2 && atEnd
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
    private static func isDigitOrUnderscore(_ byte: UInt8) -> Bool { isDigit(byte) || byte == 0x5F }
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
    }
    private static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
}
