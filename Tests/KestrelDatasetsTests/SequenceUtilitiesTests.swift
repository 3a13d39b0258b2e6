import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// `timeseriesDatasetFromArray`, `padSequences` and `toCategorical` against Keras 3's
/// `timeseries_dataset_from_array`, `pad_sequences` and `to_categorical`
/// (Fixtures/sequence_utilities.json, written by make_sequence_fixtures.py).
final class SequenceUtilitiesTests: XCTestCase {
    private static func fixture() throws -> [String: Any] {
        let url = URL(fileURLWithPath: fixturePath("sequence_utilities.json"))
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    private func tensor(_ any: Any?) -> Tensor {
        let t = any as! [String: Any]
        return Tensor(shape: t["shape"] as! [Int], scalars: (t["values"] as! [NSNumber]).map(\.floatValue))
    }

    func testMatchesKeras() throws {
        let f = try Self.fixture()
        let data = tensor(f["data"]), targets = tensor(f["targets"])
        let series = f["timeseries"] as! [[String: Any]]
        XCTAssertEqual(series.count, 4)
        for c in series {
            let config = c["config"] as! [String: Int]
            let (inputs, outputs) = try timeseriesDatasetFromArray(
                data, targets: c["targets"] as! Bool ? targets : nil, sequenceLength: config["sequence_length"]!,
                sequenceStride: config["sequence_stride"] ?? 1, samplingRate: config["sampling_rate"] ?? 1,
                startIndex: config["start_index"], endIndex: config["end_index"])
            XCTAssertEqual(inputs, tensor(c["inputs"]), "\(config)")
            XCTAssertEqual(outputs, c["outputs"].map { tensor($0) }, "\(config)")
        }
        let sequences = f["sequences"] as! [[Int]]
        for c in f["pad_sequences"] as! [[String: Any]] {
            let config = c["config"] as! [String: Any]
            let got = try padSequences(sequences, maxLength: config["maxlen"] as? Int,
                                       padding: SequenceEnd(rawValue: config["padding"] as? String ?? "pre")!,
                                       truncating: SequenceEnd(rawValue: config["truncating"] as? String ?? "pre")!,
                                       value: (config["value"] as? NSNumber)?.floatValue ?? 0)
            XCTAssertEqual(got, tensor(c["output"]), "\(config)")
        }
        for c in f["to_categorical"] as! [[String: Any]] {
            let labels = c["labels"] as? [Int] ?? []
            let rows = c["labels"] as? [[Int]]
            let input = rows.map { Tensor(shape: [$0.count, $0[0].count], scalars: $0.flatMap { $0 }.map(Float.init)) }
                ?? Tensor(shape: [labels.count], scalars: labels.map(Float.init))
            let got = try toCategorical(input, numClasses: (c["config"] as! [String: Int])["num_classes"])
            XCTAssertEqual(got, tensor(c["output"]), "\(c["labels"]!)")
        }
    }

    func testShuffledWindowsKeepTheirTargets() throws {
        let data = Tensor(shape: [50, 1], scalars: (0..<50).map(Float.init))
        let targets = Tensor(shape: [50], scalars: (0..<50).map { Float($0) * 2 })
        let (x, y) = try timeseriesDatasetFromArray(data, targets: targets, sequenceLength: 4, shuffle: true, seed: 1)
        XCTAssertEqual(x.shape, [47, 4, 1])
        let starts = (0..<47).map { x.scalars[$0 * 4] }
        XCTAssertNotEqual(starts, starts.sorted())
        XCTAssertEqual(Set(starts), Set((0..<47).map(Float.init)))
        for (i, s) in starts.enumerated() {
            XCTAssertEqual(y!.scalars[i], s * 2)
            XCTAssertEqual(Array(x.scalars[(i * 4)..<(i * 4 + 4)]), [s, s + 1, s + 2, s + 3])
        }
        XCTAssertEqual(try timeseriesDatasetFromArray(data, targets: targets, sequenceLength: 4, shuffle: true, seed: 1).inputs, x)
        XCTAssertEqual(try toCategorical([2, 0], numClasses: 3), Tensor(shape: [2, 3], scalars: [0, 0, 1, 1, 0, 0]))
    }

    /// Batches of windows made on demand are the windows `timeseriesDatasetFromArray` makes at
    /// once, in the same order, targets included; and a regressor trains on them.
    func testTimeseriesBatchesMatchTheWholeArray() throws {
        let data = Tensor(shape: [60, 2], scalars: (0..<120).map { Float($0 % 17) / 17 })
        let targets = Tensor(shape: [60], scalars: (0..<60).map { Float($0 % 5) / 5 })
        let (x, y) = try timeseriesDatasetFromArray(data, targets: targets, sequenceLength: 6, sequenceStride: 2,
                                                    samplingRate: 2, shuffle: true, seed: 3, startIndex: 4, endIndex: 55)
        let batches = try TimeseriesBatches(data, targets: targets, sequenceLength: 6, sequenceStride: 2, samplingRate: 2,
                                            batchSize: 7, shuffle: true, seed: 3, startIndex: 4, endIndex: 55)
        XCTAssertEqual(batches.count, x.shape[0])
        XCTAssertEqual(batches.batchCount, (x.shape[0] + 6) / 7)
        let all = try (0..<batches.batchCount!).map { try batches.batch($0) }
        XCTAssertEqual(all.flatMap { $0.inputs[0].scalars }, x.scalars)
        XCTAssertEqual(all.flatMap { $0.targets[0].scalars }, y!.scalars)
        XCTAssertEqual(all[0].inputs[0].shape, [7, 6, 2])
        XCTAssertTrue(try TimeseriesBatches(data, targets: nil, sequenceLength: 6).batch(0).targets.isEmpty)
        XCTAssertEqual(try TimeseriesBatches(data, targets: nil, sequenceLength: 6).batchSize, 128)
        assertThrows(try TimeseriesBatches(data, targets: nil, sequenceLength: 0), ["TimeseriesBatches", "sequenceLength must be positive"])

        Kestrel.setRandomSeed(1)   // initial weights independent of the tests run before
        let model = Sequential {
            Input(shape: [6, 2])
            LSTM(8)
            Dense(1)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let history = try model.fit(batches, epochs: 15, verbose: 0, seed: 1)
        XCTAssertLessThan(history.history["loss"]!.last!, history.history["loss"]!.first! * 0.8)
    }

    func testErrorsNameTheArgument() {
        let data = Tensor(shape: [10, 2], scalars: Array(repeating: 0, count: 20))
        for (body, fragment) in [
            ({ _ = try timeseriesDatasetFromArray(data, targets: nil, sequenceLength: 3, startIndex: 10) }, "startIndex must be lower than the data's length 10, found 10"),
            ({ _ = try timeseriesDatasetFromArray(data, targets: nil, sequenceLength: 3, startIndex: 4, endIndex: 3) }, "endIndex must be higher than startIndex 4, found 3"),
            ({ _ = try timeseriesDatasetFromArray(data, targets: nil, sequenceLength: 3, endIndex: 10) }, "endIndex must be lower than the data's length 10"),
            ({ _ = try timeseriesDatasetFromArray(data, targets: nil, sequenceLength: 3, samplingRate: 0) }, "samplingRate must be higher than 0, found 0"),
            ({ _ = try timeseriesDatasetFromArray(data, targets: nil, sequenceLength: 3, sequenceStride: 10) }, "sequenceStride must be lower than the data's length 10"),
            ({ _ = try timeseriesDatasetFromArray(data, targets: nil, sequenceLength: 0) }, "sequenceLength must be positive, found 0"),
            ({ _ = try toCategorical(Tensor([1, 5]), numClasses: 3) }, "label 5 is outside 0..<3"),
            ({ _ = try toCategorical(Tensor([1.5])) }, "found 1.5"),
            ({ _ = try padSequences([[1, 2]], maxLength: -1) }, "maxLength must be 0 or more, found -1"),
        ] as [(() throws -> Void, String)] {
            XCTAssertThrowsError(try body()) { XCTAssertTrue("\($0)".contains(fragment), "\($0) does not contain \(fragment)") }
        }
    }
}
