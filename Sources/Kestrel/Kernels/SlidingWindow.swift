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
    /// A 3-D window geometry (2-D layers pass depth 1, kernel 1, stride 1 along it; 1-D layers
    /// height 1 as well). Each tuple is (depth, height, width), padding (front, top, left).
    init(input: (Int, Int, Int), channels: Int, output: (Int, Int, Int), kernel: (Int, Int, Int),
         stride: (Int, Int, Int), dilation: (Int, Int, Int), padding: (Int, Int, Int), groups: Int = 1) {
        self.init(height: input.1, width: input.2, channels: channels, out_height: output.1, out_width: output.2,
                  kernel_h: kernel.1, kernel_w: kernel.2, stride_h: stride.1, stride_w: stride.2,
                  dilation_h: dilation.1, dilation_w: dilation.2, pad_top: padding.1, pad_left: padding.2,
                  groups: groups, depth: input.0, out_depth: output.0, kernel_d: kernel.0, stride_d: stride.0,
                  dilation_d: dilation.0, pad_front: padding.0)
    }
}

/// A window's geometry resolved for an input shape, for 1, 2 or 3 spatial axes (the C kernels
/// see 1-D and 2-D windows as 3-D ones of depth 1).
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
            throw KestrelError.shapeMismatch(
                "\(describe): expected samples of rank \(rank + 1) \(sampleLayout(rank: rank)), found shape \(inputShape)")
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

    /// The C kernel's view (depth 1 for 1-D and 2-D, height 1 too for 1-D).
    var window: kestrel_window {
        // Without building arrays: plans read this on every step, which must not allocate.
        func pick(_ v: [Int], _ one: Int) -> (Int, Int, Int) {
            switch v.count {
            case 1: return (one, one, v[0])
            case 2: return (one, v[0], v[1])
            default: return (v[0], v[1], v[2])
            }
        }
        return kestrel_window(input: pick(inputSpatial, 1), channels: channels, output: pick(outputSpatial, 1),
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

/// The axes of a channels-last sample with `rank` spatial axes, for error messages.
func sampleLayout(rank: Int) -> String {
    switch rank {
    case 1: return "(steps, channels)"
    case 2: return "(height, width, channels)"
    case 3: return "(depth, height, width, channels)"
    default: return "(\(rank) spatial axes, channels)"
    }
}

/// Resolves a `SpatialSize` argument for `rank` axes, or throws naming the layer and argument.
func resolve(_ size: SpatialSize, rank: Int, _ argument: String, _ describe: String) throws -> [Int] {
    guard let v = size.resolved(rank: rank), v.allSatisfy({ $0 > 0 }) else {
        throw KestrelError.invalidArgument(
            "\(describe): \(argument) must be one positive integer or \(rank) of them, found \(size)")
    }
    return v
}
