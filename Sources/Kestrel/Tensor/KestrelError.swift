/// Errors a user of Kestrel can cause; each message says what was expected and what was found.
public enum KestrelError: Error, Equatable, CustomStringConvertible {
    /// Shapes that do not fit together (layer input, labels, broadcasting, reshape).
    case shapeMismatch(String)
    /// An argument outside its allowed values (unknown name, negative size, bad label).
    case invalidArgument(String)
    /// A model used before the step it needs (compile before fit, build before weights).
    case notReady(String)
    /// A file that is missing, unreadable or malformed.
    case fileError(String)
    /// Training produced a non-finite loss.
    case numerical(String)

    /// The message, without the case name.
    public var message: String {
        switch self {
        case .shapeMismatch(let m), .invalidArgument(let m), .notReady(let m),
             .fileError(let m), .numerical(let m):
            return m
        }
    }

    public var description: String { message }
}
