import Foundation
import Kestrel

/// JSON text for the configs Kestrel writes into `.keras` archives.
///
/// Foundation's `JSONSerialization` writes the Double 0.0 as `0`, which Python reads as an
/// int, and Keras refuses some hyperparameters that are not floats (`SGD(momentum=0)`,
/// `learning_rate=1`). Here a Swift `Double` is always written as a float (`0.0`, `0.05`) and
/// an `Int` as an integer; keys are sorted, as `.sortedKeys` would.
enum KerasJSON {
    static func data(_ value: Any, context: String) throws -> Data {
        var text = ""
        try write(value, into: &text, context: context)
        return Data(text.utf8)
    }

    private static func write(_ value: Any, into text: inout String, context: String) throws {
        switch value {
        case is NSNull:
            text += "null"
        case let object as [String: Any]:
            text += "{"
            for (i, key) in object.keys.sorted().enumerated() {
                if i > 0 { text += ", " }
                string(key, into: &text)
                text += ": "
                try write(object[key]!, into: &text, context: "\(context).\(key)")
            }
            text += "}"
        case let array as [Any]:
            text += "["
            for (i, element) in array.enumerated() {
                if i > 0 { text += ", " }
                try write(element, into: &text, context: context)
            }
            text += "]"
        case let s as String:
            string(s, into: &text)
        // Exact dynamic types: on Linux an Int in an Any also casts to Bool and NSNumber.
        case _ where type(of: value) == Bool.self:
            text += value as! Bool ? "true" : "false"
        case _ where type(of: value) == Int.self:
            text += String(value as! Int)
        case _ where type(of: value) == Double.self:
            try float(value as! Double, into: &text, context: context)
        case _ where type(of: value) == Float.self:
            try float(Double(value as! Float), into: &text, context: context)
        case let n as NSNumber:
            // Values read from a JSON file and written back keep their kind.
            if isJSONBool(n) {
                text += n.boolValue ? "true" : "false"
            } else if ["d", "f"].contains(String(cString: n.objCType)) {
                try float(n.doubleValue, into: &text, context: context)
            } else {
                text += String(n.int64Value)
            }
        default:
            throw KestrelError.invalidArgument("\(context): cannot write \(type(of: value)) as JSON")
        }
    }

    private static func float(_ d: Double, into text: inout String, context: String) throws {
        guard d.isFinite else { throw KestrelError.invalidArgument("\(context): \(d) has no JSON form") }
        // Swift's shortest round-tripping form ("0.05", "1e-07"), with ".0" on integral values.
        let s = "\(d)"
        text += s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? s : s + ".0"
    }

    private static func string(_ s: String, into text: inout String) {
        text += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                text += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
