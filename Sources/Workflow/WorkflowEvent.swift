import Training

/// What a long workflow tells its caller as it goes: lines for people, and the units of
/// work for a progress bar (the command line draws them; a server could stream them).
public enum WorkflowEvent {
    case note(String)
    /// A stage of the pipeline begins.
    case stage(String)
    /// Items (or passes) to do from here.
    case begin(total: Int)
    /// One done, with its prompt's tokens.
    case item(tokens: Int)
    case trainingStart(steps: Int)
    case trainingStep(Trainer.Step)
    case trainingNote(String)
}

public typealias WorkflowEvents = (WorkflowEvent) -> Void
