"""The baseline prompt of DESIGN.md and the chat templates, as the reference scripts
build them (the Swift tests build the same text with Exam.Prompt and ChatTemplate)."""
import ast

SYSTEM = "지문을 읽고 질문의 답을 구하세요."

TEMPLATES = {
    "gemma": lambda user: f"<bos><start_of_turn>user\n{SYSTEM}\n\n{user}<end_of_turn>\n<start_of_turn>model\n",
    "chatml": lambda user: f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
}


def user_prompt(row):
    """The user message for an exam CSV row (a dict of its columns)."""
    problems = ast.literal_eval(row["problems"])
    plus = row.get("question_plus") or problems.get("question_plus") or ""
    choices = "\n".join(f"{i + 1} - {c}" for i, c in enumerate(problems["choices"]))
    text = f"지문:\n{row['paragraph']}\n\n질문:\n{problems['question']}\n\n"
    if plus:
        text += f"<보기>:\n{plus}\n\n"
    return text + f"선택지:\n{choices}\n\n1, 2, 3, 4, 5 중에 하나를 정답으로 고르세요.\n정답:"


def choice_count(row):
    return len(ast.literal_eval(row["problems"])["choices"])
