import Foundation

/// AdamW with decoupled weight decay, as torch.optim.AdamW computes it: the weights
/// first shrink by lr·wd, then move by lr·m̂/(√v̂ + ε) with bias-corrected moments.
public struct AdamW: Sendable {
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// The first and second moments, laid out as the weights.
    public var m: [Float], v: [Float]
    /// Updates made so far.
    public var step: Int

    public init(count: Int, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        m = [Float](repeating: 0, count: count)
        v = m
        step = 0
    }

    public mutating func update(_ weights: inout [Float], gradient: [Float], learningRate lr: Float) {
        precondition(weights.count == gradient.count && m.count == gradient.count)
        step += 1
        let correction1 = Float(1 - pow(Double(beta1), Double(step)))
        let correction2 = Float(sqrt(1 - pow(Double(beta2), Double(step))))
        let stepSize = lr / correction1, decay = 1 - lr * weightDecay
        for i in weights.indices {
            let g = gradient[i]
            weights[i] *= decay
            m[i] += (g - m[i]) * (1 - beta1)
            v[i] = v[i] * beta2 + (1 - beta2) * g * g
            weights[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + epsilon)
        }
    }
}

/// Learning-rate schedules as Hugging Face's get_*_schedule_with_warmup: a linear
/// warm-up from 0 over `warmupSteps`, then constant, linear to 0 at `totalSteps`, or
/// a half cosine to 0 at `totalSteps`. `step` counts updates made before this one
/// (the first update uses step 0, so a warm-up starts at learning rate 0).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Shape: String, Sendable, Codable, CaseIterable { case constant, linear, cosine }

    public var peak: Float
    public var shape: Shape
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, shape: Shape, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.shape = shape
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step) / Float(max(1, warmupSteps)) }
        let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
        switch shape {
        case .constant: return peak
        case .linear: return peak * Float(max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps))))
        case .cosine: return peak * Float(max(0, 0.5 * (1 + cos(Double.pi * progress))))
        }
    }
}

/// Scales the gradient down to `maxNorm` when its global 2-norm is larger (as
/// torch.nn.utils.clip_grad_norm_: by maxNorm / (norm + 1e-6)); returns the norm
/// before clipping.
@discardableResult
public func clipGlobalNorm(_ gradient: inout [Float], maxNorm: Float) -> Float {
    var sum = 0.0
    for g in gradient { sum += Double(g) * Double(g) }
    let norm = Float(sum.squareRoot())
    let coefficient = maxNorm / (norm + 1e-6)
    if coefficient < 1 { for i in gradient.indices { gradient[i] *= coefficient } }
    return norm
}
