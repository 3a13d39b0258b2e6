import Kestrel

/// One split of an image-classification dataset: images and their class labels, sample for
/// sample.
///
/// Pixel values stay in their stored range `0...255` so the caller chooses the scaling, as in
/// Keras (`train.images / 255`). Labels are class indices stored as `Float` because that is
/// what Kestrel's sparse categorical losses and metrics take.
public struct LabeledImages: Sendable, Equatable {
    /// The images, shape `[count, rows, columns]` (IDX files) or `[count, rows, columns,
    /// channels]` (image folders), values `0...255`.
    public var images: Tensor
    /// The class index of each image, shape `[count]`; or, from an image folder read with
    /// another `LabelMode`, one-hot rows `[count, classes]` or binary `[count, 1]`.
    public var labels: Tensor
    /// The class of each label index, when known (an image folder's subdirectories).
    public var classNames: [String] = []

    /// Pairs images with labels.
    ///
    /// - Throws: `KestrelError.shapeMismatch` unless `labels` is rank 1 and there is exactly one
    ///   label per image.
    public init(images: Tensor, labels: Tensor) throws {
        guard images.rank >= 1, labels.rank == 1, images.shape[0] == labels.shape[0] else {
            throw KestrelError.shapeMismatch(
                "LabeledImages: expected one rank-1 label per image, found images \(images.shape) and labels \(labels.shape)")
        }
        self.images = images
        self.labels = labels
    }

    /// The number of samples.
    public var count: Int { labels.shape.first ?? 0 }

    /// The samples in `range`, e.g. to train on a quick slice of a large split.
    public subscript(range: Range<Int>) -> LabeledImages {
        // Both tensors are sliced by the same range, so the pairing needs no re-checking.
        LabeledImages(checkedImages: images[batch: range], labels: labels[batch: range], classNames: classNames)
    }

    /// For callers that have already established one label per image.
    init(checkedImages images: Tensor, labels: Tensor, classNames: [String] = []) {
        self.images = images
        self.labels = labels
        self.classNames = classNames
    }

    /// How many samples carry each class index in `0..<classCount`, for checking balance.
    public func classCounts(classCount: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        // One-hot rows count by the column of their 1; indices (and binary labels) by value.
        let width = labels.rank == 2 ? labels.shape[1] : 1
        let indices = width > 1
            ? stride(from: 0, to: labels.scalars.count, by: width).map { start in
                (0..<width).max { labels.scalars[start + $0] < labels.scalars[start + $1] }! }
            : labels.scalars.map { Int($0) }
        for index in indices where counts.indices.contains(index) { counts[index] += 1 }
        return counts
    }
}
