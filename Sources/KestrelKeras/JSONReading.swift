import Foundation
import Kestrel

/// A JSON object from a `.keras` config being read, with typed accessors that throw a
/// `KestrelError.fileError` naming the file and the key's path when a value is missing or has
/// the wrong type, so that a malformed config never traps.
struct JSONObject {
    /// The decoded dictionary.
    let values: [String: Any]
    /// Where this object sits in the config ("config.json: layers[2].config"), for messages.
    let context: String

    init(_ values: [String: Any], context: String) {
        self.values = values
        self.context = context
    }

    /// Wraps `value` when it is a JSON object.
    init(any value: Any?, context: String) throws {
        guard let dict = value as? [String: Any] else {
            throw KestrelError.fileError("\(context): expected a JSON object, found \(describeJSON(value))")
        }
        self.init(dict, context: context)
    }

    func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

    private func fail(_ key: String, _ expected: String) -> KestrelError {
        KestrelError.fileError("\(context): '\(key)' should be \(expected), found \(describeJSON(values[key]))")
    }

    func string(_ key: String) throws -> String {
        guard let s = values[key] as? String else { throw fail(key, "a string") }
        return s
    }

    func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : nil
    }

    func int(_ key: String) throws -> Int {
        guard let i = jsonInt(values[key]) else { throw fail(key, "an integer") }
        return i
    }

    func int(_ key: String, default value: Int) throws -> Int { has(key) ? try int(key) : value }

    func optionalInt(_ key: String) throws -> Int? { has(key) ? try int(key) : nil }

    func float(_ key: String) throws -> Float {
        guard let d = jsonDouble(values[key]), d.isFinite else { throw fail(key, "a number") }
        return Float(d)
    }

    func float(_ key: String, default value: Float) throws -> Float { has(key) ? try float(key) : value }

    func optionalFloat(_ key: String) throws -> Float? { has(key) ? try float(key) : nil }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard has(key) else { return value }
        guard isJSONBool(values[key]), let b = values[key] as? Bool else { throw fail(key, "true or false") }
        return b
    }

    func object(_ key: String) throws -> JSONObject {
        try JSONObject(any: values[key], context: "\(context).\(key)")
    }

    func array(_ key: String) throws -> [Any] {
        guard let a = values[key] as? [Any] else { throw fail(key, "a list") }
        return a
    }

    /// A list of integers, or one integer repeated `count` times (Keras's `kernel_size=3`).
    func ints(_ key: String, count: Int? = nil) throws -> [Int] {
        if let i = jsonInt(values[key]), let count { return Array(repeating: i, count: count) }
        guard let a = values[key] as? [Any] else { throw fail(key, "a list of integers") }
        let ints = a.compactMap(jsonInt)
        guard ints.count == a.count, count == nil || ints.count == count else {
            throw fail(key, count.map { "a list of \($0) integers" } ?? "a list of integers")
        }
        return ints
    }

    /// A shape with a leading batch dimension that must be null (or any integer), e.g.
    /// `batch_shape: [null, 28, 28]`; returns the per-sample part, each dimension positive.
    func batchShape(_ key: String) throws -> [Int] {
        guard let a = values[key] as? [Any], a.count >= 2, a.count <= 9 else {
            throw fail(key, "a shape [null, d1, …] of rank 2 to 9")
        }
        var dims: [Int] = []
        for v in a.dropFirst() {
            guard let d = jsonInt(v), d > 0, d <= 1 << 31 else {
                throw fail(key, "a shape with positive, known per-sample dimensions")
            }
            dims.append(d)
        }
        return dims
    }
}

/// Whether a decoded JSON value is `true` or `false`. Foundation on Linux decodes numbers as
/// NSNumber (or NSDecimalNumber for long decimals), which also answers `is Bool` for 0 and 1;
/// booleans come as their own subclass, the one `NSNumber(value: true)` has.
func isJSONBool(_ value: Any?) -> Bool {
    guard let value else { return false }
    if value is NSNumber { return type(of: value) == booleanNumberType }
    return value is Bool
}

private let booleanNumberType = type(of: NSNumber(value: true))

/// An integer from a JSON number (rejecting fractions, booleans and values out of range).
func jsonInt(_ value: Any?) -> Int? {
    if isJSONBool(value) { return nil }
    if let i = value as? Int { return i }
    if let d = jsonDouble(value), d.rounded() == d, abs(d) < 9e15 { return Int(d) }
    return nil
}

/// A double from a JSON number (not a boolean).
func jsonDouble(_ value: Any?) -> Double? {
    if isJSONBool(value) { return nil }
    // Foundation on Linux may decode long decimals (0.009999999776482582) as an NSNumber
    // that refuses `as? Double`; its doubleValue is the number.
    if let n = value as? NSNumber { return n.doubleValue }
    if let d = value as? Double { return d }
    if let i = value as? Int { return Double(i) }
    return nil
}

/// A short description of a JSON value for error messages.
func describeJSON(_ value: Any?) -> String {
    switch value {
    case nil: return "nothing"
    case is NSNull: return "null"
    case let s as String: return "\"\(s.prefix(60))\""
    case is [Any]: return "a list"
    case is [String: Any]: return "an object"
    case let v?: return "\(v)".prefix(60).description
    }
}

/// A Float as the JSON number a person would write (0.2, not 0.20000000298023224).
func jsonNumber(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }
