// The hash functions behind Keras's hashing preprocessing layers, bit for bit as TensorFlow
// computes them, so that `Hashing`, `HashedCrossing` and the lookup layers' OOV buckets put
// every token where a model trained with Keras expects it. Checked against TensorFlow 2.21
// by Tests/KestrelTests/FingerprintTests.swift (fixture: make_hash_fixtures.py).
//
// What Keras 3.15 feeds these functions (keras/src/layers/preprocessing/):
// - `Hashing` (hashing.py, `_hash_values_to_bins`): floats are cast to int64 (truncated
//   toward zero), then every non-string value becomes its decimal string (`tf.as_string`)
//   and is hashed with `to_hash_bucket_fast` (`fastHashBucket`), or with
//   `to_hash_bucket_strong` when `salt` is given (an int `s` becomes the key `[s, s]`).
//   With `mask_value`, values equal to it map to 0 and the rest to 1 + hash % (num_bins − 1).
// - `HashedCrossing` (hashed_crossing.py, `call`): passes its inputs unchanged (integer
//   features are NOT turned into strings) to `tf.sparse.cross_hashed(inputs, num_bins)`
//   with the default hash key; TensorFlow casts integer features to int64 and uses their
//   bits as the feature's hash (`crossHashedBucket`).
// - `StringLookup` / `IntegerLookup` with `num_oov_indices > 1` (index_lookup.py,
//   `_lookup_dense`): an unknown string goes to OOV start + `to_hash_bucket_fast(s,
//   num_oov_indices)` (strong with `salt`); an unknown integer to OOV start +
//   floormod(x, num_oov_indices), or with `oov_method="farmhash"` the string hash of its
//   decimal form.

// MARK: - Byte access

/// Little-endian reads from a byte buffer: FarmHash and SipHash are defined on little-endian
/// words whatever the host's byte order.
private struct LittleEndianBytes {
    let buffer: UnsafeRawBufferPointer

    @inline(__always)
    func word64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    func word32(at offset: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    @inline(__always)
    func byte(at offset: Int) -> UInt64 { UInt64(buffer[offset]) }
}

@inline(__always)
private func rotateRight(_ value: UInt64, _ shift: UInt64) -> UInt64 {
    (value >> shift) | (value << (64 - shift))
}

@inline(__always)
private func rotateLeft(_ value: UInt64, _ shift: UInt64) -> UInt64 {
    (value << shift) | (value >> (64 - shift))
}

/// Folds the high bits back into the low ones (FarmHash's and TensorFlow's `ShiftMix`).
@inline(__always)
private func shiftMix(_ value: UInt64) -> UInt64 { value ^ (value >> 47) }

/// Runs `body` over the bytes of `bytes`, copying only when they are not contiguous.
@inline(__always)
private func withBytes<C: Collection<UInt8>, R>(_ bytes: C, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    return Array(bytes).withUnsafeBytes(body)
}

// MARK: - FarmHash Fingerprint64

// FarmHash's multipliers (primes between 2^63 and 2^64).
private let farmK0: UInt64 = 0xc3a5_c85c_97cb_3127
private let farmK1: UInt64 = 0xb492_b66f_be98_f273
private let farmK2: UInt64 = 0x9ae1_6a3b_2f90_404f

/// Mixes two words into one under multiplier `mul` (FarmHash's `HashLen16`).
@inline(__always)
private func farmMix(_ u: UInt64, _ v: UInt64, _ mul: UInt64) -> UInt64 {
    let a = shiftMix((u ^ v) &* mul)
    let b = shiftMix((v ^ a) &* mul)
    return b &* mul
}

private func farmHash0To16(_ s: LittleEndianBytes, _ count: Int) -> UInt64 {
    let length = UInt64(count)
    if count >= 8 {
        let mul = farmK2 &+ length &* 2
        let a = s.word64(at: 0) &+ farmK2
        let b = s.word64(at: count - 8)
        let c = rotateRight(b, 37) &* mul &+ a
        let d = (rotateRight(a, 25) &+ b) &* mul
        return farmMix(c, d, mul)
    }
    if count >= 4 {
        let mul = farmK2 &+ length &* 2
        let a = s.word32(at: 0)
        return farmMix(length &+ (a << 3), s.word32(at: count - 4), mul)
    }
    if count > 0 {
        // First, middle and last byte; the reference does this sum in 32 bits, which
        // cannot overflow for bytes.
        let y = s.byte(at: 0) &+ (s.byte(at: count >> 1) << 8)
        let z = length &+ (s.byte(at: count - 1) << 2)
        return shiftMix((y &* farmK2) ^ (z &* farmK0)) &* farmK2
    }
    return farmK2
}

private func farmHash17To32(_ s: LittleEndianBytes, _ count: Int) -> UInt64 {
    let mul = farmK2 &+ UInt64(count) &* 2
    let a = s.word64(at: 0) &* farmK1
    let b = s.word64(at: 8)
    let c = s.word64(at: count - 8) &* mul
    let d = s.word64(at: count - 16) &* farmK2
    return farmMix(rotateRight(a &+ b, 43) &+ rotateRight(c, 30) &+ d,
                   a &+ rotateRight(b &+ farmK2, 18) &+ c, mul)
}

private func farmHash33To64(_ s: LittleEndianBytes, _ count: Int) -> UInt64 {
    let mul = farmK2 &+ UInt64(count) &* 2
    let a = s.word64(at: 0) &* farmK2
    let b = s.word64(at: 8)
    let c = s.word64(at: count - 8) &* mul
    let d = s.word64(at: count - 16) &* farmK2
    let y = rotateRight(a &+ b, 43) &+ rotateRight(c, 30) &+ d
    let z = farmMix(y, a &+ rotateRight(b &+ farmK2, 18) &+ c, mul)
    let e = s.word64(at: 16) &* mul
    let f = s.word64(at: 24)
    let g = (y &+ s.word64(at: count - 32)) &* mul
    let h = (z &+ s.word64(at: count - 24)) &* mul
    return farmMix(rotateRight(e &+ f, 43) &+ rotateRight(g, 30) &+ h,
                   e &+ rotateRight(f &+ a, 18) &+ g, mul)
}

/// Two running words seeded by `a` and `b` and advanced by the 32 bytes at `offset`
/// (FarmHash's `WeakHashLen32WithSeeds`).
@inline(__always)
private func farmWeak32(_ s: LittleEndianBytes, at offset: Int, _ a: UInt64, _ b: UInt64) -> (UInt64, UInt64) {
    let w = s.word64(at: offset), x = s.word64(at: offset + 8)
    let y = s.word64(at: offset + 16), z = s.word64(at: offset + 24)
    var a = a &+ w
    var b = rotateRight(b &+ a &+ z, 21)
    let c = a
    a = a &+ x &+ y
    b = b &+ rotateRight(a, 44)
    return (a &+ z, b &+ c)
}

private func farmHashOver64(_ s: LittleEndianBytes, _ count: Int) -> UInt64 {
    // The reference starts from a fixed seed of 81.
    let seed: UInt64 = 81
    var x = seed
    var y = seed &* farmK1 &+ 113
    var z = shiftMix(y &* farmK2 &+ 113) &* farmK2
    var v: (UInt64, UInt64) = (0, 0)
    var w: (UInt64, UInt64) = (0, 0)
    x = x &* farmK2 &+ s.word64(at: 0)

    // Whole 64-byte blocks, except that the final (possibly partial) block is always left for
    // the tail below, which re-reads the last 64 bytes of the input.
    let end = ((count - 1) / 64) * 64
    let last64 = end + ((count - 1) & 63) - 63
    var offset = 0
    repeat {
        x = rotateRight(x &+ y &+ v.0 &+ s.word64(at: offset + 8), 37) &* farmK1
        y = rotateRight(y &+ v.1 &+ s.word64(at: offset + 48), 42) &* farmK1
        x ^= w.1
        y = y &+ v.0 &+ s.word64(at: offset + 40)
        z = rotateRight(z &+ w.0, 33) &* farmK1
        v = farmWeak32(s, at: offset, v.1 &* farmK1, x &+ w.0)
        w = farmWeak32(s, at: offset + 32, z &+ w.1, y &+ s.word64(at: offset + 16))
        swap(&z, &x)
        offset += 64
    } while offset != end

    let mul = farmK1 &+ ((z & 0xff) << 1)
    offset = last64
    w.0 = w.0 &+ UInt64((count - 1) & 63)
    v.0 = v.0 &+ w.0
    w.0 = w.0 &+ v.0
    x = rotateRight(x &+ y &+ v.0 &+ s.word64(at: offset + 8), 37) &* mul
    y = rotateRight(y &+ v.1 &+ s.word64(at: offset + 48), 42) &* mul
    x ^= w.1 &* 9
    y = y &+ v.0 &* 9 &+ s.word64(at: offset + 40)
    z = rotateRight(z &+ w.0, 33) &* mul
    v = farmWeak32(s, at: offset, v.1 &* mul, x &+ w.0)
    w = farmWeak32(s, at: offset + 32, z &+ w.1, y &+ s.word64(at: offset + 16))
    swap(&z, &x)
    return farmMix(farmMix(v.0, w.0, mul) &+ shiftMix(y) &* farmK0 &+ z,
                   farmMix(v.1, w.1, mul) &+ x, mul)
}

/// TensorFlow's `Fingerprint64` (FarmHash `Fingerprint64`, the farmhash-na `Hash64`).
package func fingerprint64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let s = LittleEndianBytes(buffer: bytes)
    let count = bytes.count
    if count <= 16 { return farmHash0To16(s, count) }
    if count <= 32 { return farmHash17To32(s, count) }
    if count <= 64 { return farmHash33To64(s, count) }
    return farmHashOver64(s, count)
}

/// TensorFlow's `Fingerprint64` of a byte sequence.
package func fingerprint64<C: Collection<UInt8>>(_ bytes: C) -> UInt64 {
    withBytes(bytes) { fingerprint64($0) }
}

/// TensorFlow's `Fingerprint64` of a string's UTF-8 bytes (how a `tf.string` holds it).
package func fingerprint64(_ string: String) -> UInt64 {
    fingerprint64(string.utf8)
}

// MARK: - SipHash-2-4 (StrongKeyedHash)

/// SipHash's four-word state with its ARX round.
private struct SipState {
    var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64

    @inline(__always)
    mutating func round() {
        v0 = v0 &+ v1; v1 = rotateLeft(v1, 13); v1 ^= v0; v0 = rotateLeft(v0, 32)
        v2 = v2 &+ v3; v3 = rotateLeft(v3, 16); v3 ^= v2
        v0 = v0 &+ v3; v3 = rotateLeft(v3, 21); v3 ^= v0
        v2 = v2 &+ v1; v1 = rotateLeft(v1, 17); v1 ^= v2; v2 = rotateLeft(v2, 32)
    }

    /// Two compression rounds per 8-byte word (the "2" of SipHash-2-4).
    @inline(__always)
    mutating func absorb(_ word: UInt64) {
        v3 ^= word
        round()
        round()
        v0 ^= word
    }
}

/// TensorFlow's `StrongKeyedHash`: SipHash-2-4 (highwayhash's `SipHashState`) under the key
/// `(key.0, key.1)`.
///
/// TensorFlow memcpys the op's two int64 `key` attribute values into `uint64[2]`, and SipHash
/// reads its 16 key bytes as two little-endian words, so `key.0` and `key.1` are those words
/// directly: `to_hash_bucket_strong(s, n, key=[k0, k1])` is this with `(k0, k1)` (their
/// two's-complement bits when negative; Python refuses values ≥ 2^63).
package func strongKeyedHash(key: (UInt64, UInt64), _ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var state = SipState(v0: key.0 ^ 0x736f_6d65_7073_6575, v1: key.1 ^ 0x646f_7261_6e64_6f6d,
                         v2: key.0 ^ 0x6c79_6765_6e65_7261, v3: key.1 ^ 0x7465_6462_7974_6573)
    let s = LittleEndianBytes(buffer: bytes)
    let whole = bytes.count & ~7
    var offset = 0
    while offset < whole {
        state.absorb(s.word64(at: offset))
        offset += 8
    }
    // The last word carries the leftover bytes and, in its top byte, the length mod 256.
    var last = UInt64(truncatingIfNeeded: bytes.count) << 56
    for k in 0..<(bytes.count - whole) {
        last |= s.byte(at: whole + k) << (8 * UInt64(k))
    }
    state.absorb(last)
    state.v2 ^= 0xff
    for _ in 0..<4 { state.round() }
    return state.v0 ^ state.v1 ^ state.v2 ^ state.v3
}

/// TensorFlow's `StrongKeyedHash` of a byte sequence.
package func strongKeyedHash<C: Collection<UInt8>>(key: (UInt64, UInt64), _ bytes: C) -> UInt64 {
    withBytes(bytes) { strongKeyedHash(key: key, $0) }
}

/// TensorFlow's `StrongKeyedHash` of a string's UTF-8 bytes.
package func strongKeyedHash(key: (UInt64, UInt64), _ string: String) -> UInt64 {
    strongKeyedHash(key: key, string.utf8)
}

// MARK: - Hash buckets

/// The hash TensorFlow buckets a string by: `Fingerprint64` (`to_hash_bucket_fast`), or
/// `StrongKeyedHash` under `key` (`to_hash_bucket_strong`, Keras's `salt`).
package func categoryHash(_ bytes: UnsafeRawBufferPointer, key: (UInt64, UInt64)?) -> UInt64 {
    key.map { strongKeyedHash(key: $0, bytes) } ?? fingerprint64(bytes)
}

/// `tf.strings.to_hash_bucket_fast(string, numBuckets)`, or `to_hash_bucket_strong` with a
/// key: the hash modulo `numBuckets`, taken unsigned so it is never negative.
package func hashBucket(_ string: String, key: (UInt64, UInt64)?, numBuckets: Int) -> Int {
    precondition(numBuckets > 0, "numBuckets must be positive, found \(numBuckets)")
    var string = string
    return Int(string.withUTF8 { categoryHash(UnsafeRawBufferPointer($0), key: key) } % UInt64(numBuckets))
}

// MARK: - Feature crosses

/// TensorFlow's `FingerprintCat64`: combines two fingerprints, order-dependently.
package func fingerprintCat64(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let mul: UInt64 = 0xc6a4_a793_5bd1_e995
    var result = a ^ mul
    result ^= shiftMix(b &* mul) &* mul
    result = result &* mul
    result = shiftMix(result) &* mul
    return shiftMix(result)
}

/// `tf.sparse.cross_hashed`'s key when none is given (`_DEFAULT_HASH_KEY` in sparse_ops.py).
package let defaultCrossHashKey: UInt64 = 0xDE_CAFC_AFFE

/// The bucket `tf.sparse.cross_hashed(features, numBuckets, hashKey)` gives a row of dense
/// features with one value each (Keras's `HashedCrossing(numBuckets)` on that row), given
/// each feature's hash in order (`CategoricalValue.crossHash`); a closure rather than an
/// array, so that a training step crossing its inputs allocates nothing.
///
/// Features are folded in order with `FingerprintCat64` starting from the hash key. When
/// TensorFlow gets a mix of sparse and dense inputs it crosses the sparse ones first, so
/// features must come in that order. `hashKey` 0 means the default, as Python's
/// `hash_key or _DEFAULT_HASH_KEY` has it; a negative Python key is its two's-complement bits.
/// `numBuckets` 0 means no bucketing, where TensorFlow still takes the hash modulo
/// `Int64.max` to keep it non-negative.
package func crossHashedBucket(featureCount: Int, numBuckets: Int = 0, hashKey: UInt64 = defaultCrossHashKey,
                               featureHash: (Int) -> UInt64) -> Int {
    precondition(numBuckets >= 0, "numBuckets must not be negative, found \(numBuckets)")
    var hash = hashKey == 0 ? defaultCrossHashKey : hashKey
    for i in 0..<featureCount {
        hash = fingerprintCat64(hash, featureHash(i))
    }
    let modulus = numBuckets > 0 ? UInt64(numBuckets) : UInt64(Int64.max)
    return Int(hash % modulus)
}
