import CBLAS
import Foundation
import Synchronization

/// The engine's one thread pool: Dispatch's workers, `threads` of them at a time.
/// OpenBLAS runs single-threaded inside them: its own pool, next to ours, spins in
/// sched_yield while our workers run (measured: ~40% of a prompt's time lost), and
/// nested in our workers it would oversubscribe the cores.
public enum Parallel {
    private static let count = Atomic<Int>(ProcessInfo.processInfo.activeProcessorCount)
    private static let blasSingleThreaded: Void = openblas_set_num_threads(1)

    /// How many workers run at once (default: the machine's active cores).
    public static var threads: Int {
        get { count.load(ordering: .relaxed) }
        set { count.store(max(1, newValue), ordering: .relaxed) }
    }

    /// body(0..<iterations), on up to `threads` workers that take the next index as
    /// they finish (jobs of unequal cost, like causal attention blocks, stay balanced).
    public static func forEach(_ iterations: Int, _ body: (Int) -> Void) {
        _ = blasSingleThreaded
        let workers = min(threads, iterations)
        guard workers > 1 else {
            for i in 0..<iterations { body(i) }
            return
        }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < iterations else { return }
                    body(i)
                }
            }
        }
    }
}
