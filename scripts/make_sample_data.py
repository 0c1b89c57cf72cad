#!/usr/bin/env python3
"""Writes data/sample/{train,test,test_gold}.csv from the items in scripts/sample/.

The items are original, written for this project (Korean history, society, economics
and reading comprehension); none is copied from the competition's data. The files use
the competition's exact format: header id,paragraph,problems,question_plus, `problems`
as Python's str() of a dict, RFC 4180 quoting, LF line ends. As in the real test file,
test items carry 'answer': '' and some keep their <보기> inside `problems`.

Run from the repository root:  python3 scripts/make_sample_data.py
"""
import csv
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here / "sample"))
import items_extra, items_history, items_more, items_reading, items_society  # noqa: E402

items = [item for module in (items_history, items_society, items_reading, items_more, items_extra) for item in module.ITEMS]
out = here.parent / "data" / "sample"
out.mkdir(parents=True, exist_ok=True)


def row(item_id, item, answer, plus_inside):
    paragraph, question, choices, _, plus = item
    problems = {"question": question, "choices": choices, "answer": answer}
    if plus and plus_inside:
        problems["question_plus"] = plus
    return [item_id, paragraph, str(problems), "" if plus_inside else (plus or "")]


def write(name, rows):
    with open(out / name, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "paragraph", "problems", "question_plus"])
        writer.writerows(rows)


train, test, gold = [], [], []
for index, item in enumerate(items):
    if index % 5 in (1, 3):
        number = len(test) + 1
        plus_inside = number % 2 == 0
        test.append(row(f"sample-test-{number:03d}", item, "", plus_inside))
        gold.append(row(f"sample-test-{number:03d}", item, item[3], plus_inside))
    else:
        train.append(row(f"sample-train-{len(train) + 1:03d}", item, item[3], False))

write("train.csv", train)
write("test.csv", test)
write("test_gold.csv", gold)
print(f"train {len(train)}, test {len(test)} items -> {out.relative_to(here.parent)}")
