import Foundation

/// Makes an interrupted `fit` resumable (Keras `BackupAndRestore`).
///
/// At the end of every epoch it saves a checkpoint (weights, optimizer slots and step count,
/// learning rate, finished epochs) to `backupDir`, atomically. When `fit` starts and a backup
/// exists, it restores it and `fit` continues with the first unfinished epoch. Because each
/// epoch's shuffle and dropout depend only on the fit's seed and the epoch number, a run killed
/// at any point and started again the same way (same seed) ends with the same weights as one
/// that was never interrupted. The backup is deleted when `fit` finishes (unless
/// `deleteCheckpoint` is false); a `fit` that throws or is killed keeps it.
public final class BackupAndRestore: Callback {
    /// The directory holding the backup.
    public let backupDir: String
    /// Whether to delete the backup when training finishes.
    public let deleteCheckpoint: Bool
    /// The epochs the restored backup had finished, when `fit` started from one.
    public private(set) var restoredEpoch: Int?
    private weak var model: Model?

    /// The backup file inside `backupDir`.
    public var checkpointPath: String { (backupDir as NSString).appendingPathComponent("checkpoint.safetensors") }

    /// A backup callback; throws for an empty `backupDir`.
    public init(backupDir: String, deleteCheckpoint: Bool = true) throws {
        guard !backupDir.isEmpty else { throw KestrelError.invalidArgument("BackupAndRestore: backupDir is empty") }
        self.backupDir = backupDir
        self.deleteCheckpoint = deleteCheckpoint
    }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) throws {
        let model = try attachedModel(model, "BackupAndRestore")
        restoredEpoch = nil
        do {
            try FileManager.default.createDirectory(atPath: backupDir, withIntermediateDirectories: true)
        } catch {
            throw KestrelError.fileError("BackupAndRestore: cannot create \(backupDir): \(error.localizedDescription)")
        }
        guard FileManager.default.fileExists(atPath: checkpointPath) else { return }
        // A corrupt backup throws here rather than silently training from scratch.
        restoredEpoch = try model.loadCheckpoint(from: checkpointPath)
    }

    public func initialEpoch(resuming proposed: Int) -> Int { restoredEpoch ?? proposed }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        try attachedModel(model, "BackupAndRestore").saveCheckpoint(to: checkpointPath, epoch: epoch + 1)
    }

    public func onTrainEnd(logs: [String: Float]) throws {
        guard deleteCheckpoint else { return }
        if FileManager.default.fileExists(atPath: checkpointPath) {
            do { try FileManager.default.removeItem(atPath: checkpointPath) } catch {
                throw KestrelError.fileError("BackupAndRestore: cannot delete \(checkpointPath): \(error.localizedDescription)")
            }
        }
        // Only an empty directory goes: it may be one the user keeps other files in.
        if (try? FileManager.default.contentsOfDirectory(atPath: backupDir))?.isEmpty == true {
            try? FileManager.default.removeItem(atPath: backupDir)
        }
    }
}
