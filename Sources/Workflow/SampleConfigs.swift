import Foundation

/// The sample settings `suneung init` writes into a new workspace's config/ (never over
/// a file that is there): this file is the one copy of them.
public enum SampleConfigs {
    public static let files: [(name: String, text: String)] = [
        ("competition.yaml", Competition.template),
        ("train.yaml", train),
        ("predict.yaml", predict),
        ("ensemble.yaml", ensemble),
        ("pipeline.yaml", pipeline)
    ]

    static let train = #"""
        # suneung train --config config/train.yaml
        # The seed team's settings (LoRA r 64, alpha 128, rsLoRA, lr 1e-5, batch 1, gradient
        # accumulation 4, max length 2,048, a checkpoint per epoch), on the CPU. Every key is
        # also a flag (--learning-rate 2e-5); paths are relative to the workspace folder, and
        # ~ is the home folder. `suneung train --help` lists every key.

        model: ~/.cache/suneung/models/gemma-3-270m-q4_k_m.gguf   # the base model (GGUF)
        train: data/train.csv          # labelled: problems carry 'answer'
        validation_ratio: 0.1          # held out by a hash of the id (or validation: FILE.csv)
        name: gemma-r64                # checkpoints go to checkpoints/gemma-r64/step-N

        epochs: 3                      # or max_steps: N
        rank: 64
        alpha: 128
        rslora: true                   # scale alpha/√r instead of alpha/r
        dropout: 0.05
        target_modules: [q, k, v, o, gate, up, down]

        learning_rate: 1.0e-5
        schedule: linear               # constant, linear or cosine, after the warm-up
        warmup_ratio: 0.03
        weight_decay: 0.0
        batch_size: 1
        gradient_accumulation: 4
        max_grad_norm: 1.0
        max_length: 2048               # longer prompts lose the middle of their passage
        loss: full                     # or choices: softmax over the answer tokens only
        end_of_turn: false             # also train the end-of-turn token after the answer
        seed: 42

        save_each_epoch: true          # plus save_steps: N for more checkpoints
        eval_each_epoch: true          # validation loss and accuracy (and eval_steps: N)
        eval_limit: 0                  # 0: every held-out item
        gradient_checkpointing: auto   # recompute activations when they would pass 1.5 GB
        precision: auto                # auto and f32: the base dequantised (exact); q8: kept in its codes (7B-class bases)
        # augment: permute_choices     # each epoch, choices in a seeded order: uniform answer positions
        # balance: positions           # each epoch, items drawn so every answer position is as likely
        """#

    static let predict = #"""
        # The predict settings as flags, for reference (predict takes flags only):
        #   suneung predict --model ~/.cache/suneung/models/gemma-3-270m-q4_k_m.gguf \
        #       --dataset data/test.csv --name gemma-zero-shot --max-tokens 4096 --gold data/valid.csv
        #   suneung predict --checkpoint gemma-r64/step-500 --dataset data/test.csv --name gemma-r64-500
        # In a pipeline these are its keys:
        model: ~/.cache/suneung/models/gemma-3-270m-q4_k_m.gguf
        test: data/test.csv
        max_tokens: 4096        # longer prompts lose the middle of their passage
        # precision: auto       # auto, q8 (weights stay in codes), q8x2 (closer) or f32 (exact)
        # template: gemma       # default: the model's (gemma, chatml, llama3, exaone3, plain)
        """#

    static let ensemble = #"""
        # The ensemble settings, for reference (ensemble takes flags only):
        #   suneung ensemble --top 5 --method vote --name final-vote
        #   suneung ensemble --top 5 --method average --weights score --name final-avg
        #   suneung ensemble --members qwen_ep2,qwen_ep3@v2,gemma-r64-500 --method weighted-vote --weights rank --name mix
        # In a pipeline these are its keys:
        top: 5                  # the K sets with the best public scores (ties: newer first)
        methods: [vote, average]
        weights: score          # score, excess, rank, softmax:T, uniform (vote ignores them)
        """#

    static let pipeline = #"""
        # suneung pipeline --config config/pipeline.yaml
        # The main job, resumable: zero-shot predictions, the imports, LoRA training, a
        # prediction set per checkpoint, scores, the top 5 ensembled, the report. Paths are
        # relative to the workspace folder; ~ is the home folder.

        name: team                       # prefix of the sets, the run and the submissions
        model: ~/.cache/suneung/models/gemma-3-270m-q4_k_m.gguf
        test: data/test.csv
        # gold: data/test_gold.csv       # a labelled copy of test: a simulated leaderboard
        zero_shot: true                  # the base model as a member of its own
        # imports: runs/                 # prediction CSVs of GPU runs made elsewhere
        # max_tokens: 4096               # prompts longer than this lose the passage's middle
        # precision: auto                # auto, q8 (weights stay in codes), q8x2 (closer) or f32 (exact)

        # train:                         # the trainer's keys (config/train.yaml)
        #   train: data/train.csv
        #   validation_ratio: 0.1
        #   epochs: 1
        #   rank: 16

        top: 5                           # members of the ensembles, by public score
        methods: [vote, average]         # average: probabilities weighted by `weights`
        weights: score                   # score, excess, rank, softmax:T, uniform
        """#
}
