import Foundation
import XCTest

@testable import Serving

/// The engines' own replies and error bodies (Tests/ServingFixtures, each file saying
/// where it was taken from) read as `ChoiceScorer` and `Endpoint` read a live server's.
/// The stub server (stub_server.py) replays the completions shape end to end; these
/// cover the shapes it does not serve: vLLM's chat logprobs, the engines' error bodies,
/// a server that returns `"logprobs": null`.
final class EngineRepliesTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ServingFixtures")

    func fixture(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent(name))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], name)
    }

    func errorExamples(_ name: String) throws -> [(status: Int?, body: [String: Any])] {
        let examples = try XCTUnwrap(try fixture(name)["examples"] as? [[String: Any]], name)
        return try examples.map { ($0["http_status"] as? Int, try XCTUnwrap($0["body"] as? [String: Any], name)) }
    }

    /// vLLM's chat shape (`content[0].top_logprobs`, a list of token/logprob entries),
    /// which llama.cpp's server also writes for /v1/completions since 2025.
    func testChatShapeGivesTheFirstPositionsTopLogProbabilities() throws {
        let logprobs = try XCTUnwrap(try fixture("vllm_chat_logprobs.json")["choices[0].logprobs"] as? [String: Any])
        let top = try XCTUnwrap(ChoiceScorer.nextTokenTop(logprobs))
        XCTAssertEqual(top.count, 2)
        XCTAssertEqual(try XCTUnwrap(top["The"]), -0.0193302184343338, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(top["Albert"]), -4.769330024719238, accuracy: 1e-15)
    }

    /// The legacy completions shape (`top_logprobs[i]`, a dict by token text), as vLLM
    /// wrote it: each position's dict is what a reply without echo has first.
    func testLegacyShapeGivesEachPositionsTopLogProbabilities() throws {
        let choices = try XCTUnwrap(try fixture("vllm_completions_echo_logprobs.json")["choices"] as? [[String: Any]])
        let logprobs = try XCTUnwrap(choices.first?["logprobs"] as? [String: Any])
        let positions = try XCTUnwrap(logprobs["top_logprobs"] as? [Any])
        // With echo the prompt's first position has nothing (null): not a next token.
        XCTAssertNil(ChoiceScorer.nextTokenTop(["top_logprobs": [positions[0]]]))
        for position in positions.dropFirst() {
            let expected = try XCTUnwrap(position as? [String: Double])
            XCTAssertEqual(ChoiceScorer.nextTokenTop(["top_logprobs": [position]]), expected)
        }
        XCTAssertNil(ChoiceScorer.nextTokenTop(["tokens": ["1"]]), "neither shape")
    }

    /// Echo: the prompt's tokens come back with their log-probabilities, then the
    /// generated one (max_tokens 1: usage.completion_tokens is 1; the excerpt leaves out
    /// its usage); the last prompt token is found from the end.
    func testEchoGivesTheLastPromptTokensLogProbability() throws {
        let choices = try XCTUnwrap(try fixture("vllm_completions_echo_logprobs.json")["choices"] as? [[String: Any]])
        let logprobs = try XCTUnwrap(choices.first?["logprobs"] as? [String: Any])
        func last(generated: Int) -> (token: String, logprob: Double?)? {
            ChoiceScorer.lastPromptToken(["usage": ["completion_tokens": generated]], logprobs: logprobs)
        }
        let prompt = try XCTUnwrap(last(generated: 1))
        XCTAssertEqual(prompt.token, " ")
        XCTAssertEqual(try XCTUnwrap(prompt.logprob), -1.2870503664016724, accuracy: 1e-15)
        XCTAssertEqual(last(generated: 3)?.token, " is")
        let first = try XCTUnwrap(last(generated: 8))
        XCTAssertEqual(first.token, "The")
        XCTAssertNil(first.logprob, "the first prompt token has none (null)")
        XCTAssertNil(last(generated: 9), "past the start")
        XCTAssertNil(ChoiceScorer.lastPromptToken([:], logprobs: logprobs), "no usage: the position is unknown")
    }

    /// A llama.cpp server built before logprobs came to /v1/completions answers
    /// `"logprobs": null`: said as such, with what to do.
    func testAServerWithoutLogProbabilitiesIsSaidSo() throws {
        let reply = try fixture("llamacpp_v1_completions_logprobs_old_build.json")
        let endpoint = try Endpoint(address: "http://127.0.0.1:8080/v1", key: nil, seconds: 1)
        XCTAssertThrowsError(try ChoiceScorer.logprobs(of: reply, from: endpoint)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("returned no log-probabilities (\"logprobs\": null)"), message)
            XCTAssertTrue(message.contains("llama.cpp's server: a build from 2025 or later"), message)
        }
        XCTAssertThrowsError(try ChoiceScorer.logprobs(of: ["object": "text_completion"], from: endpoint)) {
            XCTAssertTrue("\($0)".contains("has no choices"), "\($0)")
        }
    }

    /// Every engine's error body gives its words: vLLM's two envelopes, llama.cpp's,
    /// llama-cpp-python's (FastAPI's `detail` among them).
    func testEveryEnginesErrorBodyGivesItsMessage() throws {
        for name in ["vllm_errors.json", "llamacpp_errors.json", "llamacpp_python_errors.json"] {
            for (_, body) in try errorExamples(name) {
                let words = (body["error"] as? [String: Any])?["message"] ?? body["message"] ?? body["detail"]
                let expected = try XCTUnwrap(words as? String, "\(name): \(body)")
                let data = try JSONSerialization.data(withJSONObject: body)
                XCTAssertEqual(Endpoint.message(data), expected, name)
            }
        }
        XCTAssertEqual(Endpoint.message(Data("Bad Gateway".utf8)), "Bad Gateway", "a proxy's plain text")
        XCTAssertEqual(Endpoint.message(Data(#"{"error": "no slot"}"#.utf8)), "no slot")
    }

    /// vLLM's cap on log-probabilities, in its words before and after 2025.
    func testVLLMsLogProbabilityCapIsRead() throws {
        let messages = try errorExamples("vllm_errors.json").map { Endpoint.message(try JSONSerialization.data(withJSONObject: $0.body)) }
        let caps = messages.compactMap { message in message.contains("logprobs") ? ChoiceScorer.allowedTopK(message) : nil }
        XCTAssertEqual(caps, [5, 20])
        XCTAssertNil(ChoiceScorer.allowedTopK("The model `no-such-model` does not exist."))
    }

    /// A prompt past the context, in every engine's words and statuses (llama.cpp's
    /// server said it with a 500 before 2025), is told from other refusals.
    func testAPromptPastTheContextIsToldInEveryEnginesWords() throws {
        var overflows = 0
        for name in ["vllm_errors.json", "llamacpp_errors.json", "llamacpp_python_errors.json"] {
            for (status, body) in try errorExamples(name) {
                let message = Endpoint.message(try JSONSerialization.data(withJSONObject: body))
                let expected = ["context length", "context size", "context window"].contains { message.contains($0) }
                let error = EndpointError(.rejected(status ?? 400), message)
                XCTAssertEqual(error.isContextOverflow, expected, "\(name): \(message)")
                if expected { overflows += 1 }
            }
        }
        XCTAssertEqual(overflows, 5)
        XCTAssertFalse(EndpointError(.unavailable, "This model's maximum context length is 2048 tokens").isContextOverflow)
    }

    /// Log-probabilities as the engines write them, and what is not one.
    func testOnlyFiniteNonPositiveNumbersAreLogProbabilities() {
        XCTAssertEqual(ChoiceScorer.logProbability(NSNumber(value: -1.5)), -1.5)
        XCTAssertEqual(ChoiceScorer.logProbability(NSNumber(value: -0.0)), 0)
        XCTAssertEqual(ChoiceScorer.logProbability(NSNumber(value: 5e-7)), 0, "rounding above 0")
        for value: Any in [
            NSNumber(value: -9999.0), NSNumber(value: -Double.greatestFiniteMagnitude), NSNumber(value: -Float.greatestFiniteMagnitude),
            NSNumber(value: Double.nan), NSNumber(value: -Double.infinity), NSNumber(value: 0.5), "-1.0", NSNull()
        ] {
            XCTAssertNil(ChoiceScorer.logProbability(value), "\(value)")
        }
    }
}
