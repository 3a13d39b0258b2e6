import Foundation
import Synchronization

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// The same seed gives the same sequence on every machine, so weights, shuffles and dropout
/// masks are reproducible. Conforms to `RandomNumberGenerator` for use with Swift's APIs.
public struct RandomGenerator: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A float uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A generator seeded from this one, for an independent stream (per layer, per epoch).
    public mutating func split() -> RandomGenerator { RandomGenerator(seed: next()) }

    /// Fills the buffer with values uniform in [low, high).
    public mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>, low: Float, high: Float) {
        let width = high - low
        for i in buffer.indices { buffer[i] = low + width * nextUnitFloat() }
    }

    /// Fills the buffer with normally distributed values (Box–Muller).
    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>, mean: Float, stddev: Float) {
        var i = 0
        while i < buffer.count {
            let (a, b) = nextGaussianPair()
            buffer[i] = mean + stddev * a
            if i + 1 < buffer.count { buffer[i + 1] = mean + stddev * b }
            i += 2
        }
    }

    /// Two independent standard normal values.
    public mutating func nextGaussianPair() -> (Float, Float) {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2 * Foundation.log(u1)).squareRoot()
        return (Float(r * cos(2 * .pi * u2)), Float(r * sin(2 * .pi * u2)))
    }

    /// A random permutation of 0..<count (Fisher–Yates), written into `indices`.
    public mutating func shuffle(_ indices: UnsafeMutableBufferPointer<Int>) {
        guard indices.count > 1 else { return }
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
            let j = Int(next() % UInt64(i + 1))
            indices.swapAt(i, j)
        }
    }
}

/// The process-wide generator behind weight initialisers, shuffling and dropout when no
/// generator is given explicitly.
enum GlobalRandom {
    static let state = Mutex(RandomGenerator(seed: 1337))

    static func with<R>(_ body: (inout RandomGenerator) throws -> R) rethrows -> R {
        try state.withLock { try body(&$0) }
    }

    /// A new independent generator drawn from the global one.
    static func split() -> RandomGenerator { with { $0.split() } }
}

/// Library-wide settings and facts (Keras `keras.utils`, `keras.config`).
public enum Kestrel {
    /// Seeds the global generator, so that models built afterwards get the same weights,
    /// shuffles and dropout masks on every run (Keras `keras.utils.set_random_seed`).
    public static func setRandomSeed(_ seed: UInt64) {
        GlobalRandom.with { $0 = RandomGenerator(seed: seed) }
    }
}
