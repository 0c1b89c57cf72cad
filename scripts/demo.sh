#!/usr/bin/env bash
# The demo on the bundled sample data, in the workspace demo/ (made on first run).
# Running it again adds no versions and records no duplicate imports.
set -euo pipefail
cd "$(dirname "$0")/.."
suneung="$PWD/.build/release/suneung"
sample="$PWD/data/sample"
workspace="$PWD/demo"

step() { printf '\n== %s\n' "$*"; }

step "suneung init"
"$suneung" init --workspace "$workspace"
cd "$workspace"

step "suneung data check (the bundled test set)"
"$suneung" data check "$sample/test.csv"

step "suneung import: the prediction files of the team's GPU runs"
for file in "$sample"/predictions/*.csv; do
  name=$(basename "$file" .csv)
  [ "$name" = leaderboard ] && continue
  "$suneung" import "$file" --name "$name" --dataset "$sample/test.csv"
done

step "suneung predict: Gemma 3 270M zero-shot on the test set, with the embedded engine"
models="${SUNEUNG_MODELS:-$HOME/.cache/suneung/models}"
"$suneung" predict --model "$models/gemma-3-270m-q4_k_m.gguf" --dataset "$sample/test.csv" --name gemma-zero-shot --gold "$sample/test_gold.csv"

step "suneung score: leaderboard scores, and local accuracy on the gold labels"
# leaderboard.csv stands in for the scores a team reads off the competition's site.
# A score equal to the latest one recorded is not recorded twice.
tail -n +2 "$sample/predictions/leaderboard.csv" | while IFS=, read -r name public private; do
  "$suneung" score "$name" --public "$public" --private "$private" --gold "$sample/test_gold.csv" --note "sample leaderboard"
done

step "suneung list --sort public"
"$suneung" list --sort public

step "suneung agree --top 5: do the best five disagree enough to help each other?"
"$suneung" agree --top 5

step "suneung ensemble: top-5 vote, and top-5 average weighted by public score"
"$suneung" ensemble --top 5 --method vote --name top5-vote
"$suneung" ensemble --top 5 --method average --weights score --name top5-average

step "suneung select: greedy selection on the labelled copy of the test set"
"$suneung" select --gold "$sample/test_gold.csv" --rounds 8 --name greedy

step "suneung score: the ensembles' local accuracy"
for name in top5-vote top5-average greedy; do "$suneung" score "$name" --gold "$sample/test_gold.csv"; done

step "suneung compare top5-vote with the best single set"
best=$("$suneung" list --sort public --format csv | grep -v ',ensemble,' | sed -n 2p | cut -d, -f1)
"$suneung" compare top5-vote "$best" --gold "$sample/test_gold.csv"

step "suneung show top5-vote"
"$suneung" show top5-vote

step "suneung list --sort local"
"$suneung" list --sort local

printf '\nWorkspace:   %s\nStore:       %s/suneung.sqlite\nSubmissions: %s/submissions/ (top5-vote.csv, top5-average.csv, greedy.csv)\n' "$workspace" "$workspace" "$workspace"
