#!/usr/bin/env bash
# Screenshots of the team dashboard for the README (docs/dashboard-*.png): a workspace
# of the peer team's real prediction files (../shared/data), served on 127.0.0.1 and
# photographed by headless Chromium. Regenerate after a change to the dashboard:
#   scripts/dashboard_screenshots.sh   (needs `make release` and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
suneung=$PWD/.build/release/suneung
data=$(cd ../shared/data && pwd)
peers=$data/peer-predictions/test-systems
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
s() { "$suneung" "$@" --workspace "$work"; }
s init > /dev/null
scores=(0.8111 0.8046 0.7327 0.6498 0.6452)
files=(gemma_ckpt2944 gemma_ckpt2944_2nd gpt4o zeroshot_output_logical zeroshot_output)
for i in "${!files[@]}"; do
  s import "$peers/${files[$i]}.csv" --dataset "$data/test.csv" --invalid as-wrong --author kim --tag peer > /dev/null
  s score "${files[$i]}" --public "${scores[$i]}" --author kim --note "upload $((i + 1))" > /dev/null
done
s ensemble --top 3 --name top3-vote --author lee --note "the daily ensemble" > /dev/null
s score top3-vote --public 0.8180 --author lee > /dev/null
token=$(s token add screenshots --role read 2> /dev/null)
"$suneung" serve --workspace "$work" --port 0 > "$work/serve.log" &
server=$!
for _ in $(seq 50); do grep -q Serving "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log")
shot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" --window-size=1200,"$2" --screenshot="$PWD/docs/$1" "$3" 2> /dev/null | grep -v '^$' || true; }
chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" --dump-dom "$url/login?token=$token" > /dev/null 2>&1
shot dashboard-leaderboard.png 900 "$url/"
shot dashboard-set.png 1400 "$url/sets/top3-vote"
echo "docs/dashboard-leaderboard.png, docs/dashboard-set.png"
