"""Measured quality (``hive-jobs eval``): a judge model grades answers against a rubric per task.

Each grade becomes a ``quality_rating`` (rater ``judge:<model>``) the rankings weigh.

Modules: :mod:`jobs.eval.rubrics` (the rubrics and the blind judge prompt), :mod:`jobs.eval.samples`
(what is graded: stored answers, or answers to the built-in benchmark prompts), :mod:`jobs.eval.judge`
(the loop through the Session). A stage after ``rankings``: it imports no other stage; the CLI
refreshes the ranking table after a run.
"""
