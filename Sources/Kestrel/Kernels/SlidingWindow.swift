import CKestrelKernels

/// How a sliding window treats the borders of its input (Keras `padding`).
public enum Padding: String, Sendable, Equatable, CaseIterable {
    /// No padding: windows stay inside the input, so the output is smaller.
    case valid
    /// Zero padding (split evenly, the extra one after) so that the output has
    /// `ceil(input / stride)` positions.
    case same
    /// Padding only before the sequence, so an output never sees later steps (Conv1D only).
    case causal
}

/// A per-axis size (kernel, strides, dilation, pool), written as one integer for every axis
/// (`3`) or one per axis (`[3, 5]`), as Keras accepts an int or a tuple.
public struct SpatialSize: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral,
    CustomStringConvertible {
    /// The sizes as given: one value (for every axis) or one per axis.
    public let values: [Int]

    /// The same size along every axis.
    public init(_ size: Int) { values = [size] }
    /// One size per spatial axis.
    public init(_ sizes: [Int]) { values = sizes }
    public init(integerLiteral value: Int) { values = [value] }
    public init(arrayLiteral elements: Int...) { values = elements }

    /// The sizes for `rank` axes, or nil when the count fits neither one value nor `rank`.
    func resolved(rank: Int) -> [Int]? {
        if values.count == 1 { return Array(repeating: values[0], count: rank) }
        return values.count == rank ? values : nil
    }

    public var description: String { values.count == 1 ? "\(values[0])" : "\(values)" }
}

/// Output length and leading padding of a window along one axis, with Keras's formulas:
/// "valid" keeps `floor((n - span) / s) + 1` positions, "same" `ceil(n / s)` with the padding
/// split evenly (the odd one after), "causal" pads `span - 1` before.
func windowLength(input n: Int, kernel k: Int, stride s: Int, dilation d: Int,
                  padding: Padding) -> (length: Int, padBefore: Int) {
    let span = (k - 1) * d + 1
    switch padding {
    case .valid:
        return (n >= span ? (n - span) / s + 1 : 0, 0)
    case .same:
        let out = (n + s - 1) / s
        let total = max((out - 1) * s + span - n, 0)
        return (out, total / 2)
    case .causal:
        return ((n - 1) / s + 1, span - 1)
    }
}

extension kestrel_window {
    /// A 2-D window geometry (1-D layers pass height 1, kernel 1, stride 1 along it).
    init(height: Int, width: Int, channels: Int, outHeight: Int, outWidth: Int,
         kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int), padding: (Int, Int), groups: Int = 1) {
        self.init(height: height, width: width, channels: channels, out_height: outHeight, out_width: outWidth,
                  kernel_h: kernel.0, kernel_w: kernel.1, stride_h: stride.0, stride_w: stride.1,
                  dilation_h: dilation.0, dilation_w: dilation.1, pad_top: padding.0, pad_left: padding.1,
                  groups: groups)
    }
}

/// A window's geometry resolved for an input shape: 1-D layers are 2-D ones with height 1.
struct WindowGeometry {
    /// Spatial input sizes and channels.
    var inputSpatial: [Int], channels: Int
    /// Spatial output sizes.
    var outputSpatial: [Int]
    var kernel: [Int], strides: [Int], dilation: [Int], padBefore: [Int]
    var groups = 1

    /// Resolves sizes for an input of `rank` spatial axes plus channels; `describe` names the
    /// layer in error messages.
    init(inputShape: [Int], rank: Int, kernel: [Int], strides: [Int], dilation: [Int], padding: Padding,
         describe: String) throws {
        guard inputShape.count == rank + 1, inputShape.allSatisfy({ $0 > 0 }) else {
            let layout = rank == 1 ? "(steps, channels)" : rank == 2 ? "(height, width, channels)" : "\(rank) spatial axes and channels"
            throw KestrelError.shapeMismatch(
                "\(describe): expected samples of rank \(rank + 1) \(layout), found shape \(inputShape)")
        }
        inputSpatial = Array(inputShape.prefix(rank))
        channels = inputShape[rank]
        self.kernel = kernel
        self.strides = strides
        self.dilation = dilation
        var out: [Int] = [], pads: [Int] = []
        for axis in 0..<rank {
            let (length, pad) = windowLength(input: inputSpatial[axis], kernel: kernel[axis], stride: strides[axis],
                                             dilation: dilation[axis], padding: padding)
            guard length > 0 else {
                throw KestrelError.shapeMismatch(
                    "\(describe): a window of \(kernel) (dilation \(dilation)) does not fit input shape \(inputShape) with padding \"\(padding.rawValue)\"")
            }
            out.append(length)
            pads.append(pad)
        }
        outputSpatial = out
        padBefore = pads
    }

    /// A geometry with output sizes and leading padding given rather than derived from a
    /// `Padding` (windows that reach past the input's end read zeros).
    init(inputSpatial: [Int], channels: Int, outputSpatial: [Int], kernel: [Int], strides: [Int], dilation: [Int],
         padBefore: [Int]) {
        self.inputSpatial = inputSpatial
        self.channels = channels
        self.outputSpatial = outputSpatial
        self.kernel = kernel
        self.strides = strides
        self.dilation = dilation
        self.padBefore = padBefore
    }

    /// The C kernel's view (height 1 for 1-D).
    var window: kestrel_window {
        let two = inputSpatial.count == 1
        func pick(_ v: [Int], _ one: Int) -> (Int, Int) { two ? (one, v[0]) : (v[0], v[1]) }
        return kestrel_window(height: two ? 1 : inputSpatial[0], width: inputSpatial.last!, channels: channels,
                              outHeight: two ? 1 : outputSpatial[0], outWidth: outputSpatial.last!,
                              kernel: pick(kernel, 1), stride: pick(strides, 1), dilation: pick(dilation, 1),
                              padding: pick(padBefore, 0), groups: groups)
    }

    /// Output positions per sample.
    var outputPositions: Int { outputSpatial.reduce(1, *) }
    /// Input positions per sample.
    var inputPositions: Int { inputSpatial.reduce(1, *) }
    /// Window positions (kernel elements over the spatial axes).
    var windowSize: Int { kernel.reduce(1, *) }
}

/// Resolves a `SpatialSize` argument for `rank` axes, or throws naming the layer and argument.
func resolve(_ size: SpatialSize, rank: Int, _ argument: String, _ describe: String) throws -> [Int] {
    guard let v = size.resolved(rank: rank), v.allSatisfy({ $0 > 0 }) else {
        throw KestrelError.invalidArgument(
            "\(describe): \(argument) must be one positive integer or \(rank) of them, found \(size)")
    }
    return v
}
