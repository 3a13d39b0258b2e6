/// How pixels that an image transform brings in from outside the image are filled (Keras
/// `fill_mode`), for input `abcd`.
public enum FillMode: String, Sendable, Equatable, CaseIterable {
    /// `dcba|abcd|dcba`: mirrored about the edge (the edge pixel repeated).
    case reflect
    /// `abcd|abcd|abcd`: the image tiled.
    case wrap
    /// `kkkk|abcd|kkkk`: a constant `fillValue`.
    case constant
    /// `aaaa|abcd|dddd`: the edge pixel repeated.
    case nearest
}

/// Resampling of channels-last images at affine-transformed coordinates, as Keras's
/// `ops.image.affine_transform` does on its JAX backend: output pixel (row y, column x) reads
/// the input at column `a0·x + a1·y + a2`, row `b0·x + b1·y + b2`, with bilinear weights (or the
/// nearest pixel, halves rounded away from zero); each tap outside the image is mapped back by
/// `fillMode` (or reads `fillValue`). `backward` is the exact adjoint.
struct AffineSampler {
    var height: Int, width: Int, channels: Int
    var interpolation: Interpolation
    var fillMode: FillMode
    var fillValue: Float

    /// The in-image index a tap at `index` reads, or nil for the constant fill.
    @inline(__always)
    func fix(_ index: Int, _ size: Int) -> Int? {
        switch fillMode {
        case .constant:
            return index >= 0 && index < size ? index : nil
        case .nearest:
            return min(max(index, 0), size - 1)
        case .wrap:
            let r = index % size
            return r < 0 ? r + size : r
        case .reflect:
            // Period 2·size: 0…size−1 forwards, then size−1…0.
            var r = index % (2 * size)
            if r < 0 { r += 2 * size }
            return r < size ? r : 2 * size - 1 - r
        }
    }

    /// The taps (index or nil, weight) along one axis at `coordinate`.
    @inline(__always)
    func axisTaps(_ coordinate: Float, _ size: Int) -> ((Int?, Float), (Int?, Float)) {
        if interpolation == .nearest {
            // Rounding half away from zero, as lax.round.
            let index = Int(coordinate.rounded(.toNearestOrAwayFromZero))
            return ((fix(index, size), 1), (nil, 0))
        }
        let lower = coordinate.rounded(.down)
        let upper = coordinate - lower
        let index = Int(lower)
        return ((fix(index, size), 1 - upper), (fix(index + 1, size), upper))
    }

    /// Where output pixel (row, column) reads the input under `t`.
    @inline(__always)
    func source(row: Int, column: Int, _ t: UnsafePointer<Float>) -> (row: Float, column: Float) {
        let (fx, fy) = (Float(column), Float(row))
        return (t[3] * fx + t[4] * fy + t[5], t[0] * fx + t[1] * fy + t[2])
    }

    /// The four taps at input position (sourceRow, sourceColumn): each tap's input offset (nil
    /// for the constant fill) and weight. The nearest pixel is one tap with weight 1 (the
    /// others 0).
    @inline(__always)
    func taps(_ sourceRow: Float, _ sourceColumn: Float) -> (Int?, Float, Int?, Float, Int?, Float, Int?, Float) {
        let ((r0, wr0), (r1, wr1)) = axisTaps(sourceRow, height), ((c0, wc0), (c1, wc1)) = axisTaps(sourceColumn, width)
        func offset(_ r: Int?, _ c: Int?) -> Int? {
            guard let r, let c else { return nil }
            return (r * width + c) * channels
        }
        return (offset(r0, c0), wr0 * wc0, offset(r0, c1), wr0 * wc1, offset(r1, c0), wr1 * wc0, offset(r1, c1), wr1 * wc1)
    }

    /// The taps of an output pixel whose source lies wholly inside the image (all taps in
    /// range, so no fill rule applies): the offset of the top-left tap and the two weights, or
    /// nil when some tap falls outside. The common case, kept free of the general path's
    /// per-tap fill rules.
    @inline(__always)
    func interiorTap(_ sourceRow: Float, _ sourceColumn: Float) -> (offset: Int, rowWeight: Float, columnWeight: Float)? {
        if interpolation == .nearest {
            let r = sourceRow.rounded(.toNearestOrAwayFromZero), c = sourceColumn.rounded(.toNearestOrAwayFromZero)
            guard r >= 0, r < Float(height), c >= 0, c < Float(width) else { return nil }
            return ((Int(r) * width + Int(c)) * channels, 0, 0)
        }
        let r = sourceRow.rounded(.down), c = sourceColumn.rounded(.down)
        guard r >= 0, r + 1 < Float(height), c >= 0, c + 1 < Float(width) else { return nil }
        return ((Int(r) * width + Int(c)) * channels, sourceRow - r, sourceColumn - c)
    }

    /// Transforms one image `x` into `y` with `t` = (a0, a1, a2, b0, b1, b2).
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ t: UnsafePointer<Float>) {
        let fill = fillValue, channels = channels, rowLength = width * channels
        @inline(__always) func add(_ out: UnsafeMutablePointer<Float>, _ offset: Int?, _ weight: Float) {
            if let offset {
                let src = x + offset
                for k in 0..<channels { out[k] += weight * src[k] }
            } else {
                for k in 0..<channels { out[k] += weight * fill }
            }
        }
        for row in 0..<height {
            for column in 0..<width {
                let out = y + (row * width + column) * channels
                let at = source(row: row, column: column, t)
                if let tap = interiorTap(at.row, at.column) {
                    let p = x + tap.offset, (a, b) = (tap.rowWeight, tap.columnWeight)
                    if interpolation == .nearest {
                        out.update(from: p, count: channels)
                        continue
                    }
                    for k in 0..<channels {
                        let upper = (1 - b) * p[k] + b * p[channels + k]
                        let lower = (1 - b) * p[rowLength + k] + b * p[rowLength + channels + k]
                        out[k] = (1 - a) * upper + a * lower
                    }
                    continue
                }
                let (o0, w0, o1, w1, o2, w2, o3, w3) = taps(at.row, at.column)
                out.update(repeating: 0, count: channels)
                add(out, o0, w0)
                if interpolation == .bilinear {
                    add(out, o1, w1)
                    add(out, o2, w2)
                    add(out, o3, w3)
                }
            }
        }
    }

    /// Adds the gradient of one transformed image, `dy`, back to its input's `dx` (zeroed by
    /// the caller); taps that read the constant fill pass nothing back.
    func backward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ t: UnsafePointer<Float>) {
        let channels = channels, rowLength = width * channels
        @inline(__always) func add(_ g: UnsafePointer<Float>, _ offset: Int?, _ weight: Float) {
            guard let offset else { return }
            let dst = dx + offset
            for k in 0..<channels { dst[k] += weight * g[k] }
        }
        for row in 0..<height {
            for column in 0..<width {
                let g = dy + (row * width + column) * channels
                let at = source(row: row, column: column, t)
                if let tap = interiorTap(at.row, at.column) {
                    let p = dx + tap.offset, (a, b) = (tap.rowWeight, tap.columnWeight)
                    if interpolation == .nearest {
                        for k in 0..<channels { p[k] += g[k] }
                        continue
                    }
                    for k in 0..<channels {
                        let upper = (1 - a) * g[k], lower = a * g[k]
                        p[k] += (1 - b) * upper
                        p[channels + k] += b * upper
                        p[rowLength + k] += (1 - b) * lower
                        p[rowLength + channels + k] += b * lower
                    }
                    continue
                }
                let (o0, w0, o1, w1, o2, w2, o3, w3) = taps(at.row, at.column)
                add(g, o0, w0)
                if interpolation == .bilinear {
                    add(g, o1, w1)
                    add(g, o2, w2)
                    add(g, o3, w3)
                }
            }
        }
    }
}
