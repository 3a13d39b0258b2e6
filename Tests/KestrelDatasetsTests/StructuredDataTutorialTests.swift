import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// Docs/StructuredData.md's code, as written there, on a generated CSV file with the UCI
/// heart-disease columns whose target follows a rule of the age, the sex × chest-pain cross,
/// the vessel count, the `thal` string and the heart rate.
final class StructuredDataTutorialTests: XCTestCase {
    /// A heart-disease-like file: `rows` rows, the target a sharp logistic rule of the features.
    static func heartLikeCSV(rows: Int, seed: UInt64) -> String {
        var rng = RandomGenerator(seed: seed)
        func integer(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + Int(rng.nextUnitFloat() * Float(range.count)) % range.count
        }
        var text = "age,sex,cp,trestbps,chol,thalach,oldpeak,slope,ca,thal,target\n"
        let kinds = ["fixed", "normal", "reversible"]
        for _ in 0..<rows {
            let age = integer(29...77), sex = integer(0...1), cp = integer(0...4), trestbps = integer(94...200)
            let chol = integer(126...564), thalach = integer(71...202), slope = integer(0...2), ca = integer(0...3)
            let oldpeak = (rng.nextUnitFloat() * 40).rounded() / 10
            let thal = kinds[integer(0...2)]
            var z = -2.5 + 0.08 * Float(age - 54) + (sex == 1 && cp >= 2 ? 2.5 : 0) - 0.02 * Float(thalach - 136)
            z += (thal == "reversible" ? 2.5 : 0) + 0.5 * Float(ca)
            let target = rng.nextUnitFloat() < 1 / (1 + exp(-3 * z)) ? 1 : 0
            text += "\(age),\(sex),\(cp),\(trestbps),\(chol),\(thalach),\(oldpeak),\(slope),\(ca),\(thal),\(target)\n"
        }
        return text
    }

    func testTheTutorialModelLearnsTheRule() throws {
        Kestrel.setRandomSeed(2)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kestrel-heart-\(UUID().uuidString).csv")
        try Self.heartLikeCSV(rows: 3000, seed: 12).write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        // From here on, Docs/StructuredData.md's code.
        let table = try CSVTable(contentsOf: file)
        let (train, validation) = try table.split(validationFraction: 0.2, seed: 1337)

        let numeric = ["trestbps", "chol", "thalach", "oldpeak", "slope"]
        let normalizer = Normalization()
        try normalizer.adapt(try train.features(numeric))
        let ageBuckets = try Discretization(numBins: 4, outputMode: .oneHot)
        try ageBuckets.adapt(try train.column("age"))   // three boundaries: four buckets

        let sexCodes = try CategoryEncoding(numTokens: 2, outputMode: .oneHot)
        let painCodes = try CategoryEncoding(numTokens: 5, outputMode: .oneHot)
        let vessels = try Hashing(numBins: 8, outputMode: .oneHot)
        let sexAndPain = try HashedCrossing(numBins: 16, outputMode: .oneHot)

        let thal = try StringLookup(outputMode: .oneHot)
        try thal.adapt(try train.strings("thal"))

        let age = Input(shape: [1], name: "age"), sex = Input(shape: [1], name: "sex")
        let cp = Input(shape: [1], name: "cp"), ca = Input(shape: [1], name: "ca")
        let numbers = Input(shape: [numeric.count], name: "numbers")
        let thalOneHot = Input(shape: [thal.vocabularySize], name: "thal")
        let features = try Concatenate()([
            try normalizer(numbers), try ageBuckets(age), try sexCodes(sex), try painCodes(cp), try vessels(ca),
            try sexAndPain([sex, cp]), thalOneHot,
        ])
        var x = try Dense(32, activation: .relu)(features)
        x = try Dropout(0.5)(x)
        let model = try Model(inputs: ["age": age, "sex": sex, "cp": cp, "ca": ca, "numbers": numbers, "thal": thalOneHot],
                              outputs: ["target": try Dense(1, activation: .sigmoid)(x)])
        model.compile(optimizer: Adam(), loss: BinaryCrossentropy(), metrics: [.binaryAccuracy()])

        func columns(_ t: CSVTable) throws -> [String: Tensor] {
            ["age": try t.column("age"), "sex": try t.column("sex"), "cp": try t.column("cp"), "ca": try t.column("ca"),
             "numbers": try t.features(numeric), "thal": try thal(try t.strings("thal").map { [$0] })]
        }
        let history = try model.fit(try columns(train), ["target": try train.column("target")], batchSize: 32, epochs: 50,
                                    verbose: 0,
                                    validationData: (try columns(validation), ["target": try validation.column("target")]))
        // (Docs/StructuredData.md's code ends here.)

        XCTAssertEqual(train.rowCount, 2400)
        XCTAssertEqual(try XCTUnwrap(ageBuckets.binBoundaries).count, 3)
        XCTAssertEqual(thal.vocabularySize, 4)   // "[UNK]" and the three kinds
        let targets = try validation.numbers("target")
        let majority = max(targets.filter { $0 == 1 }.count, targets.filter { $0 == 0 }.count)
        let accuracy = try XCTUnwrap(history.history["val_binary_accuracy"]?.last)
        print("structured data: validation accuracy \(accuracy), majority class \(Float(majority) / Float(targets.count))")
        XCTAssertGreaterThanOrEqual(accuracy, 0.85)
        XCTAssertGreaterThan(accuracy, Float(majority) / Float(targets.count) + 0.2)
    }
}
