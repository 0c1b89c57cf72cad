#!/usr/bin/env bash
# Position bias on real items (issue 16): zero-shot Gemma 3 270M on the 150 held-out
# train items of BENCHMARKS.md's pipeline run (FNV-1a of the id mod 10^6 >= 900,000,
# the first 150), plain, with PriDe and with permute, each also toward the prior of the
# other train items; then `suneung bias` and the accuracies. Needs ../shared/data and
# the default model (make models). Run from the repository root; the workspace is
# bench-bias/ (not committed). About 45 minutes on 2 cores.
set -euo pipefail
suneung="$PWD/.build/release/suneung"
model="${SUNEUNG_MODELS:-$HOME/.cache/suneung/models}/gemma-3-270m-q4_k_m.gguf"
workspace="$PWD/bench-bias"
mkdir -p "$workspace"
python3 - "$PWD/../shared/data/train.csv" "$workspace" <<'PY'
import csv, sys
def fnv1a(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) % 2**64
    return h
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
held = [r for r in rows if fnv1a(r["id"]) % 10**6 >= 900_000][:150]
ids = {r["id"] for r in held}
for name, part in [("heldout.csv", held), ("rest.csv", [r for r in rows if r["id"] not in ids])]:
    with open(f"{sys.argv[2]}/{name}", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=rows[0].keys())
        w.writeheader()
        w.writerows(part)
PY
cd "$workspace"
"$suneung" init > /dev/null
run() { echo "== $*"; /usr/bin/time -f "%e s" "$suneung" predict --model "$model" --dataset heldout.csv --max-tokens 1024 --gold heldout.csv "$@" 2>&1 | grep -v "^\[" | tail -3; }
run --name zero-shot
run --name zero-shot-pride-target --debias pride:0.05 --prior-target rest.csv
run --name zero-shot-pride --debias pride:0.05
run --name zero-shot-permute --debias permute
run --name zero-shot-permute-target --debias permute --prior-target rest.csv
"$suneung" bias zero-shot zero-shot-pride zero-shot-permute zero-shot-pride-target zero-shot-permute-target --gold heldout.csv --prior rest.csv
"$suneung" list --prior rest.csv

# Checkpoints (the pipeline run's settings: r 16 on all seven projections, lr 2e-4, 60
# steps of 2 sequences, max_length 512), trained as before and with permuted choices.
train() {
  local name=$1; shift
  "$suneung" show "$name/step-60" > /dev/null 2>&1 && return 0
  echo "== train $name $*"
  /usr/bin/time -f "%e s" "$suneung" train --model "$model" --train rest.csv --validation-ratio 0.05 --eval-limit 20 --name "$name" \
    --rank 16 --alpha 32 --learning-rate 2e-4 --max-steps 60 --batch-size 1 --gradient-accumulation 2 --max-length 512 --seed 42 "$@" 2>&1 | grep -v "^\[" | tail -2
}
train lora-plain
train lora-permuted --augment permute_choices
checkpoint() { echo "== $*"; /usr/bin/time -f "%e s" "$suneung" predict --dataset heldout.csv --max-tokens 1024 --gold heldout.csv "$@" 2>&1 | grep -v "^\[" | tail -3; }
for run in lora-plain lora-permuted; do
  checkpoint --name "$run" --checkpoint "$run/step-60"
  checkpoint --name "$run-pride-target" --checkpoint "$run/step-60" --debias pride:0.05 --prior-target rest.csv
done
"$suneung" bias lora-plain lora-permuted lora-plain-pride-target lora-permuted-pride-target --gold heldout.csv --prior rest.csv

# Ensembles of the members with values, averaged, with and without calibration fitted
# on the public half of the held-out items (FNV-1a of the id even) and judged on the
# private half.
python3 - <<'PY'
import csv
def fnv1a(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) % 2**64
    return h
rows = list(csv.DictReader(open("heldout.csv", encoding="utf-8")))
for name, keep in [("public-half.csv", 0), ("private-half.csv", 1)]:
    with open(name, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=rows[0].keys())
        w.writeheader()
        w.writerows(r for r in rows if fnv1a(r["id"]) % 2 == keep)
PY
members=zero-shot,zero-shot-permute,lora-plain,lora-permuted
"$suneung" ensemble --members "$members" --method average --weights uniform --name mix-average
"$suneung" ensemble --members "$members" --method average --weights uniform --name mix-temperature --calibrate temperature --gold public-half.csv
"$suneung" ensemble --members "$members" --method average --weights uniform --name mix-prior --calibrate prior --gold public-half.csv
for set in zero-shot zero-shot-permute zero-shot-pride-target lora-plain lora-permuted lora-plain-pride-target lora-permuted-pride-target mix-average mix-temperature mix-prior; do
  "$suneung" score "$set" --gold private-half.csv | tail -1
done
