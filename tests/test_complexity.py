"""Complexity and task type of prompts: a labelled set, determinism, and the documented rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive_core.errors import ConfigError
from hive_core.selection.complexity import (
    COMPLEXITIES,
    COMPLEXITY_RANK,
    TASK_TYPES,
    assess,
    classify_task,
    parse_complexity,
    task_type,
)

CODE_BLOCK = "```python\n" + "\n".join(f"x{i} = compute({i})" for i in range(40)) + "\n```"

#: prompt -> acceptable complexities (a table: its rows are alike by shape)
LABELLED: list[tuple[str, tuple[str, ...]]] = [
    ("Simple question", ("simple",)),
    ("Complex analysis task", ("complex", "expert")),
    ("test", ("simple",)),
    ("hello", ("simple",)),
    ("What is the capital of France?", ("simple",)),
    ("Translate 'good morning' into Spanish.", ("simple",)),
    ("Give me a one-word answer: is water wet?", ("simple",)),
    ("Quick: what is 2 + 2?", ("simple",)),
    ("thanks, that worked", ("simple",)),
    ("Who wrote Pride and Prejudice?", ("simple",)),
    ("Is Python dynamically typed? yes or no", ("simple",)),
    ("Write a haiku about autumn leaves.", ("simple", "moderate")),
    ("Summarize the plot of Hamlet in three sentences.", ("simple", "moderate")),
    ("Explain how a hash map works and compare it with a balanced binary search tree.", ("moderate",)),
    ("Write a Python function that reverses a linked list.", ("simple", "moderate")),
    ("Compare the economic policies of Keynes and Hayek.", ("moderate",)),
    ("Debug this: def add(a, b): return a - b", ("moderate",)),
    ("Evaluate the pros and cons of remote work for a small startup, step by step.", ("moderate",)),
    ("Write a detailed report on renewable energy adoption in Europe.", ("moderate",)),
    ("Analyze this SQL query and explain why it is slow: SELECT * FROM orders o JOIN users u ON o.uid = u.id",
     ("moderate", "complex")),
    ("First read the CSV, then clean the missing values, then plot a histogram.", ("moderate",)),
    ("Calculate the derivative of x^3 + 2x and explain each step.", ("moderate",)),
    ("Write a short story about a robot learning to paint.", ("simple", "moderate")),
    ("Design a scalable URL shortener and discuss the trade-offs.", ("complex",)),
    ("Design the architecture of a distributed job queue with exactly-once semantics, analyze failure modes.",
     ("complex", "expert")),
    ("Refactor this module to remove the circular imports and optimise the hot loop.\n" + CODE_BLOCK,
     ("complex", "expert")),
    ("This is a complicated concurrency bug; investigate the race condition in the worker pool.",
     ("complex", "expert")),
    ("Give a comprehensive, in-depth comparison of PostgreSQL and MySQL replication.", ("moderate", "complex")),
    ("Write a 2000 words essay on the causes of the First World War.", ("moderate", "complex")),
    ("Analyze the advanced performance characteristics of this sorting algorithm.", ("complex",)),
    ("Explain the difficult parts of the CAP theorem.", ("complex",)),
    ("Prove that there are infinitely many primes.", ("complex", "expert")),
    ("Prove rigorously that the halting problem is undecidable, with a formal argument and every lemma.",
     ("complex", "expert")),
    ("Design a novel consensus protocol for a distributed database, prove its safety, and analyze its "
     "performance trade-offs under network partitions in a comprehensive report.", ("expert",)),
    ("Produce a research-grade, rigorous analysis of transformer scaling laws with a detailed derivation "
     "of the equations, comparing at least five architectures step by step.", ("expert",)),
    ("Architect a complex multi-region payments platform: design the data model, analyze consistency "
     "trade-offs, plan the migration step by step, and write a comprehensive 3000 words report.", ("expert",)),
    ("Review this code for bugs:\n" + CODE_BLOCK, ("moderate", "complex")),
    ("What time zone is Tokyo in?", ("simple",)),
    ("Classify the sentiment of: 'I love it'", ("simple",)),
    ("List three colours.", ("simple",)),
    ("Brief summary of photosynthesis please", ("simple",)),
    # the text a summary or translation works on gives no signals, only its instruction does
    ("Summarize this paragraph: we must design a complex, sophisticated, scalable and distributed architecture.",
     ("simple", "moderate")),
    ("Summarize this complex legal contract: the parties agree to the terms.", ("complex", "expert")),
    # an analysis asked in depth is complex (issue 16: "analysis" words count)
    ("Evaluate the advantages and risks of a four-day work week, in depth.", ("complex",)),
    ("Give a thorough, detailed assessment of the implications of Arctic shipping routes.", ("complex",)),
    ("Investigate and diagnose the root cause of intermittent 502 errors in our sophisticated microservices "
     "mesh, then design a fix.", ("complex", "expert")),
]

#: prompt -> expected task type
TASKS: list[tuple[str, str]] = [
    ("Summarize this article for me", "summarization"),
    ("Translate this paragraph into German", "translation"),
    ("Write a poem about the sea", "creative"),
    ("Write a Python function that parses dates", "code-generation"),
    ("Review this code for bugs:\n" + CODE_BLOCK, "code-analysis"),
    ("Why does this function return None? def f(): pass", "code-analysis"),
    ("Prove that sqrt(2) is irrational", "math"),
    ("Extract the names and dates as JSON", "extraction"),
    ("Classify the sentiment of this review", "classification"),
    ("Plan my week step by step and reason about priorities", "reasoning"),
    ("What is in this picture?", "vision"),
    ("How are you today?", "chat"),
    ("Call the get_stock_price function for AAPL", "tool-use"),
    ("Use the calculator tool to add 1234 and 5678", "tool-use"),
    ("Write a function that calls the API", "code-generation"),
]


@pytest.mark.parametrize(("prompt", "expected"), LABELLED, ids=[p[:40] for p, _ in LABELLED])
def test_labelled_prompts(prompt: str, expected: tuple[str, ...]) -> None:
    result = assess(prompt)
    assert result.complexity in expected, (result.score, result.signals)


def test_labelled_set_covers_every_level() -> None:
    assert len(LABELLED) >= 40
    assert {e[0] for _p, e in LABELLED if len(e) == 1} == set(COMPLEXITIES)


@pytest.mark.parametrize(("prompt", "expected"), TASKS, ids=[t for _p, t in TASKS])
def test_classify_task(prompt: str, expected: str) -> None:
    assert classify_task(prompt) == expected
    assert assess(prompt).task == expected


def test_task_types_map_to_capabilities_and_default_complexity() -> None:
    assert task_type("code-analysis").capabilities == frozenset({"programming"})
    assert task_type("Vision").capabilities == frozenset({"vision"})
    assert task_type("long-context").capabilities == frozenset({"long-context"})
    assert task_type("reasoning").capabilities == frozenset({"reasoning"})
    result = assess(None, "code-analysis")
    assert (result.complexity, result.task) == ("complex", "code-analysis")
    assert assess(None).task == "chat" and assess(None).complexity == "simple"
    assert all(t.complexity in COMPLEXITY_RANK for t in TASK_TYPES.values())
    with pytest.raises(ConfigError, match="code-analysis"):
        task_type("astrology")
    with pytest.raises(ConfigError):
        parse_complexity("medium")


def test_explicit_task_wins_over_the_guess() -> None:
    result = assess("Write a poem about the sea", "code-generation")
    assert result.task == "code-generation"


def test_requested_output_size_sets_completion_tokens() -> None:
    assert assess("Write a 1500 words essay on bees").completion_tokens == 2000
    assert assess("hi").completion_tokens == TASK_TYPES["chat"].completion_tokens
    assert assess("x" * 4000).prompt_tokens == 1000


@given(st.text(max_size=400))
def test_assessment_is_deterministic_and_total(prompt: str) -> None:
    first = assess(prompt)
    assert first == assess(prompt)
    assert first.complexity in COMPLEXITIES and first.task in TASK_TYPES


@given(st.text(alphabet="abc xyz.,\n", max_size=300))
def test_adding_a_hard_word_never_lowers_complexity(prompt: str) -> None:
    before = COMPLEXITY_RANK[assess(prompt).complexity]
    after = COMPLEXITY_RANK[assess(prompt + " This is a complex problem.").complexity]
    assert after >= before
