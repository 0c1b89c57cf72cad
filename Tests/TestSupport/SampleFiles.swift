/// A three-item exam (4 and 5 choices, a <보기>, a comma in a passage) and two prediction
/// files for it: the small workspace the command and server tests start from.
public enum SampleFiles {
    public static let exam = """
        id,paragraph,problems,question_plus
        q1,"지문, 하나","{'question': '옳은 것은?', 'choices': ['a', 'b', 'c', 'd'], 'answer': 2}",
        q2,지문 둘,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd', 'e'], 'answer': 5}",보기
        q3,지문 셋,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': 1}",

        """

    /// Answers with logits (the 5th empty on 4-choice items).
    public static let run = "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,2,0.1,2.5,0,-1,\nq2,5,0,0,0,1,3\nq3,1,1,0,0,0,\n"

    /// Answers only.
    public static let other = "id,answer\nq1,1\nq2,5\nq3,1\n"
}
