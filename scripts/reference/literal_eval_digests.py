#!/usr/bin/env python3
"""Reference digests of Python's own parse of the `problems` column.

For every item of ../shared/data/{train,test}.csv this writes the first 16 hex digits
of sha256(canonical JSON of ast.literal_eval(problems)), keyed by item id, to
Tests/ExamTests/Fixtures/literal_eval_digests.json. The Swift test
(RealDataTests.testProblemsParseAgreesWithPythonLiteralEval) serialises its own parse the
same way and compares, item by item. Only ids and digests are committed, never item text.

Canonical JSON: json.dumps(value, ensure_ascii=True, separators=(",", ":")), dict keys in
file order.

Regenerate (from the repository root):  python3 scripts/reference/literal_eval_digests.py
"""
import ast
import csv
import hashlib
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data"
out = root / "Tests" / "ExamTests" / "Fixtures" / "literal_eval_digests.json"

csv.field_size_limit(sys.maxsize)
digests = {}
for name in ["train.csv", "test.csv"]:
    with open(data / name, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    digests[name] = {
        row["id"]: hashlib.sha256(
            json.dumps(ast.literal_eval(row["problems"]), ensure_ascii=True, separators=(",", ":")).encode()
        ).hexdigest()[:16]
        for row in rows
    }
    print(f"{name}: {len(rows)} items")
out.write_text(json.dumps(digests, indent=0, sort_keys=True) + "\n")
print(f"wrote {out.relative_to(root)}")
