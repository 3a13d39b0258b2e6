// Element-wise arithmetic. Tensor–tensor operators broadcast when one shape is a suffix of
// the other ("trailing axes", e.g. [batch, 10] + [10]) and throw otherwise, since a shape
// mismatch is a user mistake.

extension Tensor {
    /// The broadcast result of combining two tensors element-wise.
    static func broadcasting(_ lhs: Tensor, _ rhs: Tensor, _ name: String,
                             _ op: (Float, Float) -> Float) throws -> Tensor {
        if lhs.shape == rhs.shape {
            var out = lhs
            out.scalars.withUnsafeMutableBufferPointer { o in
                rhs.scalars.withUnsafeBufferPointer { r in
                    for i in 0..<o.count { o[i] = op(o[i], r[i]) }
                }
            }
            return out
        }
        if rhs.rank <= lhs.rank, Array(lhs.shape.suffix(rhs.rank)) == rhs.shape {
            var out = lhs
            let n = Swift.max(rhs.count, 1)
            out.scalars.withUnsafeMutableBufferPointer { o in
                rhs.scalars.withUnsafeBufferPointer { r in
                    for i in 0..<o.count { o[i] = op(o[i], r[i % n]) }
                }
            }
            return out
        }
        if lhs.rank < rhs.rank, Array(rhs.shape.suffix(lhs.rank)) == lhs.shape {
            var out = rhs
            let n = Swift.max(lhs.count, 1)
            out.scalars.withUnsafeMutableBufferPointer { o in
                lhs.scalars.withUnsafeBufferPointer { l in
                    for i in 0..<o.count { o[i] = op(l[i % n], o[i]) }
                }
            }
            return out
        }
        throw KestrelError.shapeMismatch(
            "Tensor \(name): shapes \(lhs.shape) and \(rhs.shape) do not broadcast (one must end with the other)")
    }

    /// Element-wise sum with trailing-axis broadcasting.
    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor { try broadcasting(lhs, rhs, "+", +) }
    /// Element-wise difference with trailing-axis broadcasting.
    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor { try broadcasting(lhs, rhs, "-", -) }
    /// Element-wise product with trailing-axis broadcasting.
    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor { try broadcasting(lhs, rhs, "*", *) }
    /// Element-wise quotient with trailing-axis broadcasting.
    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor { try broadcasting(lhs, rhs, "/", /) }

    /// Adds a scalar to every element.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 + rhs } }
    /// Subtracts a scalar from every element.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 - rhs } }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 * rhs } }
    /// Divides every element by a scalar.
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 / rhs } }
    /// Adds every element to a scalar.
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { rhs.map { lhs + $0 } }
    /// Subtracts every element from a scalar.
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { rhs.map { lhs - $0 } }
    /// Multiplies a scalar by every element.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.map { lhs * $0 } }
    /// Divides a scalar by every element.
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { rhs.map { lhs / $0 } }
    /// Negates every element.
    public static prefix func - (x: Tensor) -> Tensor { x.map { -$0 } }

    /// Adds a scalar to every element in place (no copy when the storage is not shared).
    public static func += (lhs: inout Tensor, rhs: Float) { lhs.scalars.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] += rhs } } }
    /// Subtracts a scalar from every element in place.
    public static func -= (lhs: inout Tensor, rhs: Float) { lhs.scalars.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] -= rhs } } }
    /// Multiplies every element by a scalar in place.
    public static func *= (lhs: inout Tensor, rhs: Float) { lhs.scalars.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] *= rhs } } }
    /// Divides every element by a scalar in place (`images /= 255` scales without a second copy).
    public static func /= (lhs: inout Tensor, rhs: Float) { lhs.scalars.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] /= rhs } } }
}
