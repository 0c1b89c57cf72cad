#!/usr/bin/env bash
# The demo: the main job on the bundled sample data, in the workspace demo/ (made on
# first run). `suneung pipeline` trains, predicts, scores, ensembles and reports;
# running the demo again redoes nothing, and a killed run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
suneung="$PWD/.build/release/suneung"
workspace="$PWD/demo"

step() { printf '\n== %s\n' "$*"; }

step "suneung init"
"$suneung" init --workspace "$workspace"
cd "$workspace"

step "suneung data check (the bundled test set)"
"$suneung" data check ../data/sample/test.csv

step "suneung pipeline --config config/pipeline.yaml"
"$suneung" pipeline --config ../config/pipeline.yaml

step "suneung list --checkpoints"
"$suneung" list --checkpoints

step "suneung show demo-top5-vote: what went into the submission"
"$suneung" show demo-top5-vote

printf '\nWorkspace:  %s\nSubmission: %s/submissions/demo-top5-vote.csv (and demo-top5-average.csv)\nReport:     %s/reports/demo.html (figures: reports/demo-*.svg)\n' "$workspace" "$workspace" "$workspace"
