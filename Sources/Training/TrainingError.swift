/// A problem with a training run's input (config, data, adapter), said in one line
/// that names the file or key.
public struct TrainingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(_ message: String) { self.message = message }
}
