import Foundation
@testable import Kestrel
import XCTest

/// A compiled two-weight model whose weights the tests set by hand, so "the weights of epoch k"
/// are recognisable.
private func scriptedModel(learningRate: Float = 1) throws -> Sequential {
    // Named layers: checkpoints are keyed by layer name, and each new model would otherwise
    // get fresh automatic names (dense_1, dense_2, …).
    let model = Sequential { Dense(2, inputShape: [3], name: "scripted") }
    model.compile(optimizer: SGD(learningRate: learningRate), loss: MeanSquaredError())
    try model.build()
    return model
}

/// Drives a callback through `fit`'s epoch hooks with scripted logs, as Keras's tests do.
private func drive(_ callback: Callback, model: Model, values: [Float], name: String,
                   beforeEpoch: ((Int) throws -> Void)? = nil) throws -> (stoppedAt: Int?, rates: [Float]) {
    callback.setModel(model)
    model.stopTraining = false
    try callback.onTrainBegin(logs: [:])
    var rates: [Float] = []
    for (epoch, value) in values.enumerated() {
        try beforeEpoch?(epoch)
        try callback.onEpochBegin(epoch, logs: [:])
        try callback.onEpochEnd(epoch, logs: [name: value, "loss": 0.5])
        rates.append(model.optimizer!.learningRate)
        if model.stopTraining {
            try callback.onTrainEnd(logs: [:])
            return (epoch, rates)
        }
    }
    try callback.onTrainEnd(logs: [:])
    return (nil, rates)
}

final class CallbackEarlyStoppingTests: XCTestCase {
    let losses: [Float] = [1.0, 0.9, 0.95, 0.91, 0.89, 0.92, 0.93, 0.94]

    func testPatienceCountsEpochsWithoutImprovement() throws {
        let model = try scriptedModel()
        // Best 0.9 at epoch 1; epochs 2 and 3 do not improve; patience 2 stops at epoch 3.
        XCTAssertEqual(try drive(EarlyStopping(patience: 2), model: model, values: losses, name: "val_loss").stoppedAt, 3)
        // Patience 3: epoch 4 (0.89) improves, then 5, 6, 7 do not.
        XCTAssertEqual(try drive(EarlyStopping(patience: 3), model: model, values: losses, name: "val_loss").stoppedAt, 7)
    }

    func testMinDeltaDemandsALargerImprovement() throws {
        let model = try scriptedModel()
        // 0.89 beats 0.9 by less than 0.05, so it is no improvement: stop at epoch 4, not 7.
        let stop = try drive(EarlyStopping(minDelta: 0.05, patience: 3), model: model, values: losses, name: "val_loss")
        XCTAssertEqual(stop.stoppedAt, 4)
    }

    func testBaselineMustBeBeatenToResetTheWait() throws {
        let model = try scriptedModel()
        // Never below the 0.5 baseline: the wait keeps growing through improvements.
        let callback = try EarlyStopping(patience: 2, baseline: 0.5)
        XCTAssertEqual(try drive(callback, model: model, values: losses, name: "val_loss").stoppedAt, 2)
        XCTAssertEqual(callback.best, 0.9)
    }

    func testStartFromEpochIgnoresTheWarmUp() throws {
        let model = try scriptedModel()
        // Epochs 0 and 1 are not monitored; from 2: 0.95, 0.91, 0.89 improve; 0.92 stops (patience 1).
        let stop = try drive(EarlyStopping(patience: 1, startFromEpoch: 2), model: model, values: losses, name: "val_loss")
        XCTAssertEqual(stop.stoppedAt, 5)
    }

    func testMaxModeForAccuracy() throws {
        let model = try scriptedModel()
        let callback = try EarlyStopping(monitor: "val_accuracy", patience: 1)
        XCTAssertEqual(try drive(callback, model: model, values: [0.5, 0.6, 0.6, 0.55], name: "val_accuracy").stoppedAt, 2)
        XCTAssertEqual(callback.best, 0.6)
        XCTAssertEqual(try drive(EarlyStopping(monitor: "val_accuracy", patience: 1, mode: .min), model: model,
                                 values: [0.5, 0.6, 0.6, 0.55], name: "val_accuracy").stoppedAt, 1)
    }

    func testRestoreBestWeightsPutsBackTheBestEpoch() throws {
        let model = try scriptedModel()
        let callback = try EarlyStopping(patience: 2, restoreBestWeights: true)
        let shapes = try model.getWeights().map(\.shape)
        let stop = try drive(callback, model: model, values: losses, name: "val_loss") { epoch in
            try model.setWeights(shapes.map { Tensor(shape: $0, scalars: Array(repeating: Float(epoch), count: $0.reduce(1, *))) })
        }
        XCTAssertEqual(stop.stoppedAt, 3)
        XCTAssertEqual(callback.bestEpoch, 1)
        XCTAssertTrue(try model.getWeights().allSatisfy { $0.scalars.allSatisfy { $0 == 1 } })
    }

    func testMissingMonitorDoesNotStopAndUnknownDirectionThrows() throws {
        let model = try scriptedModel()
        XCTAssertNil(try drive(EarlyStopping(patience: 0), model: model, values: [1, 2, 3], name: "other").stoppedAt)
        XCTAssertThrowsError(try EarlyStopping(monitor: "val_something")) { error in
            XCTAssertTrue("\(error)".contains("val_something"), "\(error)")
        }
    }

    func testStopsARealFit() throws {
        Kestrel.setRandomSeed(3)
        let model = try scriptedModel(learningRate: 0)  // nothing learns: the loss is flat
        let x = Tensor(shape: [8, 3], scalars: (0..<24).map { Float($0 % 5) })
        let y = Tensor(shape: [8, 2], scalars: (0..<16).map { Float($0 % 3) })
        let history = try model.fit(x, y, batchSize: 4, epochs: 10, verbose: 0,
                                    callbacks: [try EarlyStopping(monitor: "loss", patience: 2)])
        XCTAssertEqual(history.epoch, [0, 1, 2])
    }
}

final class CallbackReduceLROnPlateauTests: XCTestCase {
    func testReducesAfterPatienceWithCooldownAndFloor() throws {
        let model = try scriptedModel(learningRate: 1)
        let callback = try ReduceLROnPlateau(factor: 0.5, patience: 2, minDelta: 0, cooldown: 1, minLR: 0.1)
        let values: [Float] = [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
        let rates = try drive(callback, model: model, values: values, name: "val_loss").rates
        XCTAssertEqual(rates, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1])
    }

    func testMinDeltaAndMaxMode() throws {
        let model = try scriptedModel(learningRate: 1)
        // 1e-4 default minDelta: rises of 5e-5 are no improvement.
        let callback = try ReduceLROnPlateau(monitor: "val_accuracy", factor: 0.1, patience: 1)
        let rates = try drive(callback, model: model, values: [0.5, 0.50005, 0.6], name: "val_accuracy").rates
        XCTAssertEqual(rates[0], 1)
        XCTAssertEqual(rates[1], 0.1, accuracy: 1e-7)
        XCTAssertEqual(rates[2], 0.1, accuracy: 1e-7)
    }

    func testRejectsFactorAndSchedules() throws {
        XCTAssertThrowsError(try ReduceLROnPlateau(factor: 1))
        let model = Sequential { Dense(2, inputShape: [3]) }
        model.compile(optimizer: Adam(learningRate: try ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5)),
                      loss: MeanSquaredError())
        let callback = try ReduceLROnPlateau()
        callback.setModel(model)
        XCTAssertThrowsError(try callback.onTrainBegin(logs: [:])) { XCTAssertTrue("\($0)".contains("schedule")) }
    }
}

final class CallbackOtherTests: XCTestCase {
    private func data() -> (Tensor, Tensor) {
        (Tensor(shape: [8, 3], scalars: (0..<24).map { Float($0 % 5) / 5 }),
         Tensor(shape: [8, 2], scalars: (0..<16).map { Float($0 % 3) / 3 }))
    }

    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kestrel-callbacks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testLearningRateSchedulerSetsTheRateEachEpoch() throws {
        let model = try scriptedModel(learningRate: 0.1)
        var seen: [Float] = []
        let (x, y) = data()
        try model.fit(x, y, batchSize: 4, epochs: 3, verbose: 0, callbacks: [
            LearningRateScheduler { epoch, rate in epoch == 0 ? rate : rate / 2 },
            LambdaCallback(onEpochEnd: { _, _ in seen.append(model.optimizer!.learningRate) }),
        ])
        XCTAssertEqual(seen, [0.1, 0.05, 0.025])
        let bad = LearningRateScheduler { _, _ in .nan }
        XCTAssertThrowsError(try model.fit(x, y, epochs: 1, verbose: 0, callbacks: [bad])) {
            XCTAssertTrue("\($0)".contains("LearningRateScheduler"))
        }
    }

    func testTerminateOnNaNStopsWithinTheEpoch() throws {
        let model = try scriptedModel(learningRate: 0.1)
        let (x, _) = data()
        let y = Tensor(shape: [8, 2], scalars: (0..<16).map { $0 == 9 ? .nan : 0 })
        var batches = 0
        let guardCallback = TerminateOnNaN(verbose: 0)
        let history = try model.fit(x, y, batchSize: 2, epochs: 3, verbose: 0, callbacks: [
            guardCallback, LambdaCallback(onTrainBatchEnd: { _, _ in batches += 1 }),
        ], shuffle: false)
        // The NaN label is in sample 4, the third batch of two: fit stops there.
        XCTAssertEqual(guardCallback.terminatedAtBatch, 2)
        XCTAssertEqual(batches, 3)
        XCTAssertEqual(history.epoch, [0])
    }

    func testCSVLoggerWritesAndAppends() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/log.csv"
        let model = try scriptedModel(learningRate: 0.1)
        let (x, y) = data()
        let history = try model.fit(x, y, batchSize: 4, epochs: 2, verbose: 0, callbacks: [CSVLogger(filename: path)],
                                    validationData: (x, y))
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "epoch,loss,val_loss")
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[2], "1,\(history["loss"]![1]),\(history["val_loss"]![1])")
        try model.fit(x, y, batchSize: 4, epochs: 1, verbose: 0, callbacks: [CSVLogger(filename: path, separator: ";", append: true)],
                      validationData: (x, y))
        lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, "appending adds a row, not a second header")
        XCTAssertTrue(lines[3].hasPrefix("0;"))
        XCTAssertThrowsError(try model.fit(x, y, epochs: 1, verbose: 0, callbacks: [CSVLogger(filename: dir + "/missing/dir/log.csv")])) {
            XCTAssertTrue("\($0)".contains("CSVLogger"))
        }
    }

    func testModelCheckpointFormatsPathsAndSavesBestOnly() throws {
        let dir = try temporaryDirectory()
        let model = try scriptedModel()
        let checkpoint = try ModelCheckpoint(filepath: dir + "/w-{epoch:02d}-{val_loss:.2f}.safetensors",
                                             saveBestOnly: true, saveWeightsOnly: true)
        let shapes = try model.getWeights().map(\.shape)
        _ = try drive(checkpoint, model: model, values: [0.5, 0.7, 0.25, 0.3], name: "val_loss") { epoch in
            try model.setWeights(shapes.map { Tensor(shape: $0, scalars: Array(repeating: Float(epoch), count: $0.reduce(1, *))) })
        }
        XCTAssertEqual(checkpoint.savedPaths.map { ($0 as NSString).lastPathComponent },
                       ["w-01-0.50.safetensors", "w-03-0.25.safetensors"])
        let restored = try scriptedModel()
        try restored.loadWeights(from: checkpoint.savedPaths[1])
        XCTAssertTrue(try restored.getWeights().allSatisfy { $0.scalars.allSatisfy { $0 == 2 } })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).count, 2, "no temporary files left")
    }

    func testModelCheckpointWritesResumableCheckpointsAndExplainsErrors() throws {
        let dir = try temporaryDirectory()
        let model = try scriptedModel(learningRate: 0.1)
        let (x, y) = data()
        let checkpoint = try ModelCheckpoint(filepath: dir + "/ckpt-{epoch}.safetensors", monitor: "loss")
        try model.fit(x, y, batchSize: 4, epochs: 2, verbose: 0, callbacks: [checkpoint])
        XCTAssertEqual(checkpoint.savedPaths.map { ($0 as NSString).lastPathComponent }, ["ckpt-1.safetensors", "ckpt-2.safetensors"])
        XCTAssertEqual(try scriptedModel().loadCheckpoint(from: checkpoint.savedPaths[1]), 2)

        XCTAssertThrowsError(try ModelCheckpoint(filepath: "model.keras")) { XCTAssertTrue("\($0)".contains("KestrelKeras")) }
        XCTAssertThrowsError(try ModelCheckpoint(filepath: "w-{epoch.safetensors")) { XCTAssertTrue("\($0)".contains("unclosed")) }
        XCTAssertThrowsError(try ModelCheckpoint(filepath: "w-{epoch:xyz}.safetensors"))
        let missing = try ModelCheckpoint(filepath: dir + "/{val_loss:.2f}.safetensors")
        XCTAssertThrowsError(try model.fit(x, y, epochs: 1, verbose: 0, callbacks: [missing])) {
            XCTAssertTrue("\($0)".contains("val_loss"), "\($0)")
        }
        var saved: [String] = []
        let custom = try ModelCheckpoint(filepath: dir + "/m-{epoch}-{batch}.keras", saveFrequency: .batches(3)) { _, path in
            saved.append((path as NSString).lastPathComponent)
        }
        try model.fit(x, y, batchSize: 2, epochs: 2, verbose: 0, callbacks: [custom], shuffle: false)
        XCTAssertEqual(saved, ["m-1-3.keras", "m-2-2.keras"])
    }

    func testBackupAndRestoreResumesAtTheNextEpochInProcess() throws {
        let dir = try temporaryDirectory() + "/backup"
        let (x, y) = data()
        func train(epochs: Int, failAt: Int? = nil) throws -> (Model, [Int]) {
            Kestrel.setRandomSeed(11)
            let model = Sequential {
                Dense(4, activation: .relu, inputShape: [3], name: "hidden"); Dropout(0.3); Dense(2, name: "out")
            }
            model.compile(optimizer: Adam(learningRate: 0.05), loss: MeanSquaredError())
            var epochs_: [Int] = []
            let interrupt = LambdaCallback(onEpochBegin: { epoch, _ in
                if epoch == failAt { throw KestrelError.invalidArgument("interrupted") }
                epochs_.append(epoch)
            })
            _ = try? model.fit(x, y, batchSize: 2, epochs: epochs, verbose: 0,
                               callbacks: [try BackupAndRestore(backupDir: dir), interrupt])
            return (model, epochs_)
        }
        let (reference, _) = try { () throws -> (Model, [Int]) in
            Kestrel.setRandomSeed(11)
            let model = Sequential {
                Dense(4, activation: .relu, inputShape: [3], name: "hidden"); Dropout(0.3); Dense(2, name: "out")
            }
            model.compile(optimizer: Adam(learningRate: 0.05), loss: MeanSquaredError())
            try model.fit(x, y, batchSize: 2, epochs: 4, verbose: 0)
            return (model, [])
        }()
        let (_, first) = try train(epochs: 4, failAt: 2)
        XCTAssertEqual(first, [0, 1])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoint.safetensors"))
        let (resumed, second) = try train(epochs: 4)
        XCTAssertEqual(second, [2, 3])
        XCTAssertEqual(try resumed.getWeights(), try reference.getWeights())
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "the backup is deleted after a finished fit")
    }
}
