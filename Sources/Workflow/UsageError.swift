/// A request that cannot work as given (the command line's exit status 64).
public struct UsageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
