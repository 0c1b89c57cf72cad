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

step "suneung score: leaderboard scores, and local accuracy on the gold labels"
# leaderboard.csv stands in for the scores a team reads off the competition's site.
tail -n +2 "$sample/predictions/leaderboard.csv" | while IFS=, read -r name public private; do
  if [ -z "$("$suneung" show "$name" | sed -n '/^Scores/,/^Answers/p' | grep -E '^  public ')" ]; then
    "$suneung" score "$name" --public "$public" --private "$private" --note "sample leaderboard"
    "$suneung" score "$name" --gold "$sample/test_gold.csv"
  else
    echo "$name: already scored"
  fi
done

step "suneung list --sort public"
"$suneung" list --sort public

best=$("$suneung" list --sort public --format csv | sed -n 2p | cut -d, -f1)
step "suneung export $best"
"$suneung" export "$best" --out "$workspace/submissions/best-single.csv"

printf '\nWorkspace: %s\nStore: %s/suneung.sqlite\nBest single set exported to: %s/submissions/best-single.csv\n' "$workspace" "$workspace" "$workspace"
