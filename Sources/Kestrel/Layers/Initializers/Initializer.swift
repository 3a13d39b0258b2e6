import CBLAS

/// How a weight variable starts (Keras `initializers`).
public enum Initializer: Sendable, Equatable {
    /// All zeros.
    case zeros
    /// All ones.
    case ones
    /// Every element equal to a value.
    case constant(Float)
    /// Uniform in [minval, maxval).
    case randomUniform(minval: Float, maxval: Float)
    /// Normal with the given mean and standard deviation.
    case randomNormal(mean: Float, stddev: Float)
    /// Uniform in ±sqrt(6 / (fanIn + fanOut)) (Keras's default kernel initializer).
    case glorotUniform
    /// Normal (truncated at 2 stddev) with stddev sqrt(2 / (fanIn + fanOut)).
    case glorotNormal
    /// Uniform in ±sqrt(6 / fanIn).
    case heUniform
    /// Normal (truncated) with stddev sqrt(2 / fanIn).
    case heNormal
    /// Uniform in ±sqrt(3 / fanIn).
    case lecunUniform
    /// Normal (truncated) with stddev sqrt(1 / fanIn).
    case lecunNormal
    /// Normal with the given mean and standard deviation, values beyond two standard
    /// deviations redrawn (Keras `TruncatedNormal`; unlike the variance-scaling initialisers
    /// the spread is not corrected for the truncation).
    case truncatedNormal(mean: Float, stddev: Float)
    /// A (semi-)orthogonal matrix times `gain`, from the QR decomposition of a Gaussian matrix,
    /// over the kernel flattened to `(product of leading axes, last axis)` (Keras `Orthogonal`).
    case orthogonal(gain: Float)

    /// Keras's `RandomUniform()` defaults: ±0.05.
    public static var randomUniform: Initializer { .randomUniform(minval: -0.05, maxval: 0.05) }
    /// Keras's `RandomNormal()` defaults: mean 0, stddev 0.05.
    public static var randomNormal: Initializer { .randomNormal(mean: 0, stddev: 0.05) }
    /// Keras's `TruncatedNormal()` defaults: mean 0, stddev 0.05.
    public static var truncatedNormal: Initializer { .truncatedNormal(mean: 0, stddev: 0.05) }
    /// Keras's `Orthogonal()` default gain 1.
    public static var orthogonal: Initializer { .orthogonal(gain: 1) }

    /// Keras's fan-in and fan-out for a kernel shape: the last two axes are (in, out), leading
    /// axes (a convolution's window) multiply both.
    static func fans(_ shape: [Int]) -> (Float, Float) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (Float(shape[0]), Float(shape[0]))
        default:
            let receptive = shape.dropLast(2).reduce(1, *)
            return (Float(shape[shape.count - 2] * receptive), Float(shape[shape.count - 1] * receptive))
        }
    }

    /// Fills `buffer` (holding a variable of `shape`) from `generator`.
    public func fill(_ buffer: UnsafeMutableBufferPointer<Float>, shape: [Int], generator: inout RandomGenerator) {
        let (fanIn, fanOut) = Initializer.fans(shape)
        func truncated(_ stddev: Float) {
            // Keras's truncated normal: redraw values beyond two standard deviations;
            // the 0.8796 factor restores the requested variance after truncation.
            let s = stddev / 0.87962566103423978
            for i in buffer.indices {
                var v: Float
                repeat { v = generator.nextGaussianPair().0 } while abs(v) > 2
                buffer[i] = v * s
            }
        }
        switch self {
        case .zeros: buffer.update(repeating: 0)
        case .ones: buffer.update(repeating: 1)
        case .constant(let c): buffer.update(repeating: c)
        case .randomUniform(let lo, let hi): generator.fillUniform(buffer, low: lo, high: hi)
        case .randomNormal(let m, let s): generator.fillNormal(buffer, mean: m, stddev: s)
        case .glorotUniform:
            let limit = (6 / (fanIn + fanOut)).squareRoot()
            generator.fillUniform(buffer, low: -limit, high: limit)
        case .glorotNormal: truncated((2 / (fanIn + fanOut)).squareRoot())
        case .heUniform:
            let limit = (6 / fanIn).squareRoot()
            generator.fillUniform(buffer, low: -limit, high: limit)
        case .heNormal: truncated((2 / fanIn).squareRoot())
        case .lecunUniform:
            let limit = (3 / fanIn).squareRoot()
            generator.fillUniform(buffer, low: -limit, high: limit)
        case .lecunNormal: truncated((1 / fanIn).squareRoot())
        case .truncatedNormal(let mean, let stddev):
            for i in buffer.indices {
                var v: Float
                repeat { v = generator.nextGaussianPair().0 } while abs(v) > 2
                buffer[i] = mean + v * stddev
            }
        case .orthogonal(let gain):
            Initializer.fillOrthogonal(buffer, shape: shape, gain: gain, generator: &generator)
        }
    }
}

extension Initializer {
    /// Keras's Orthogonal: Q of the QR decomposition of a `(max(r, c), min(r, c))` Gaussian
    /// matrix, columns signed so R's diagonal is positive, transposed when the kernel is wide.
    static func fillOrthogonal(_ buffer: UnsafeMutableBufferPointer<Float>, shape: [Int], gain: Float,
                               generator: inout RandomGenerator) {
        let cols = shape.last ?? 1, rows = max(buffer.count / max(cols, 1), 1)
        let m = max(rows, cols), n = min(rows, cols)
        var a = [Float](repeating: 0, count: m * n)
        a.withUnsafeMutableBufferPointer { generator.fillNormal($0, mean: 0, stddev: 1) }
        var tau = [Float](repeating: 0, count: n)
        // Row-major m × n; geqrf leaves R in the upper triangle, orgqr then forms Q in place.
        let info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), &a, Int32(n), &tau)
        precondition(info == 0, "LAPACKE_sgeqrf failed with \(info)")
        let signs = (0..<n).map { a[$0 * n + $0] < 0 ? Float(-1) : 1 }
        let info2 = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(m), Int32(n), Int32(n), &a, Int32(n), &tau)
        precondition(info2 == 0, "LAPACKE_sorgqr failed with \(info2)")
        for i in 0..<m { for j in 0..<n { a[i * n + j] *= signs[j] * gain } }
        if rows >= cols {
            for i in 0..<buffer.count { buffer[i] = a[i] }
        } else {
            // Wide kernel: rows × cols = Qᵀ.
            for i in 0..<rows { for j in 0..<cols { buffer[i * cols + j] = a[j * n + i] } }
        }
    }
}
