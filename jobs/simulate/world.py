"""The simulated world: the models with their prices, latency and error rates, and the mix of
request types, tasks, apps and errors that :mod:`jobs.simulate.simulate` draws from and
:mod:`jobs.simulate.columns` turns into events. Plain tuples, so both read them without importing
each other.
"""

from __future__ import annotations

__all__ = [
    "APPS", "ERROR_SCALE", "MAX_ATTEMPTS", "MODELS", "PERMANENT", "REASONING_MODELS", "REQUEST_TYPES", "TASKS",
    "TRANSIENT",
]

# (id, provider, prompt USD/token, completion USD/token, TTFT median ms, tokens/s, transient error rate)
MODELS: tuple[tuple[str, str, str, str, float, float, float], ...] = (
    ("openai/gpt-4o", "OpenAI", "0.0000025", "0.00001", 450, 90, 0.010),
    ("openai/gpt-4o-mini", "OpenAI", "0.00000015", "0.0000006", 350, 120, 0.008),
    ("openai/gpt-5", "OpenAI", "0.00000125", "0.00001", 1800, 60, 0.015),
    ("openai/gpt-5-mini", "OpenAI", "0.00000025", "0.000002", 900, 110, 0.010),
    ("openai/gpt-5-nano", "OpenAI", "0.00000005", "0.0000004", 600, 150, 0.010),
    ("openai/o3", "OpenAI", "0.000002", "0.000008", 4000, 70, 0.020),
    ("openai/o4-mini", "OpenAI", "0.0000011", "0.0000044", 2500, 100, 0.015),
    ("anthropic/claude-opus-4", "Anthropic", "0.000015", "0.000075", 1500, 40, 0.020),
    ("anthropic/claude-sonnet-4", "Anthropic", "0.000003", "0.000015", 900, 65, 0.015),
    ("anthropic/claude-sonnet-4.5", "Anthropic", "0.000003", "0.000015", 850, 70, 0.012),
    ("anthropic/claude-haiku-4.5", "Anthropic", "0.000001", "0.000005", 450, 130, 0.010),
    ("google/gemini-2.5-pro", "Google", "0.00000125", "0.00001", 2200, 85, 0.025),
    ("google/gemini-2.5-flash", "Google", "0.0000003", "0.0000025", 500, 180, 0.015),
    ("google/gemini-2.5-flash-lite", "Google", "0.0000001", "0.0000004", 300, 220, 0.012),
    ("meta-llama/llama-3.3-70b-instruct", "DeepInfra", "0.0000001", "0.00000032", 400, 80, 0.030),
    ("meta-llama/llama-3.1-8b-instruct", "DeepInfra", "0.00000002", "0.00000003", 250, 160, 0.030),
    ("meta-llama/llama-4-maverick", "Together", "0.00000015", "0.0000006", 450, 110, 0.030),
    ("mistralai/mistral-large", "Mistral", "0.000002", "0.000006", 550, 60, 0.020),
    ("mistralai/mistral-small-3.2-24b-instruct", "Mistral", "0.000000075", "0.0000002", 300, 140, 0.020),
    ("mistralai/codestral-2508", "Mistral", "0.0000003", "0.0000009", 350, 150, 0.015),
    ("deepseek/deepseek-chat-v3.1", "DeepSeek", "0.00000021", "0.00000079", 1200, 40, 0.050),
    ("deepseek/deepseek-r1", "DeepSeek", "0.0000007", "0.0000025", 5000, 35, 0.060),
    ("qwen/qwen3-235b-a22b", "Alibaba", "0.000000455", "0.00000182", 900, 60, 0.030),
    ("qwen/qwen3-coder", "Alibaba", "0.00000022", "0.0000018", 700, 90, 0.030),
    ("qwen/qwen-2.5-72b-instruct", "Together", "0.00000036", "0.0000004", 500, 70, 0.030),
    ("cohere/command-r-plus-08-2024", "Cohere", "0.0000025", "0.00001", 600, 55, 0.020),
    ("moonshotai/kimi-k2", "Moonshot AI", "0.00000057", "0.0000023", 800, 50, 0.040),
    ("z-ai/glm-4.5", "Z.AI", "0.0000006", "0.0000022", 900, 55, 0.040),
    ("amazon/nova-pro-v1", "Amazon Bedrock", "0.0000008", "0.0000032", 500, 90, 0.015),
    ("microsoft/phi-4", "DeepInfra", "0.00000007", "0.00000014", 300, 120, 0.030),
)
REASONING_MODELS = frozenset({"openai/gpt-5", "openai/o3", "openai/o4-mini", "deepseek/deepseek-r1"})
REQUEST_TYPES = (("chat", 0.82), ("consensus", 0.08), ("benchmark", 0.05), ("test", 0.05))
TASKS = (
    ("chat", 0.30), ("code-generation", 0.18), ("code-analysis", 0.10), ("summarization", 0.14),
    ("reasoning", 0.08), ("creative", 0.08), ("long-context", 0.06), ("vision", 0.06),
)
APPS = (("web", 0.6), ("api", 0.3), ("batch", 0.1))
TRANSIENT = (("rate_limited", 429, 0.5), ("server_error", 502, 0.35), ("timeout", 408, 0.15))
PERMANENT = (("bad_request", 400, 0.003), ("moderated", 403, 0.001), ("insufficient_credits", 402, 0.0005))
MAX_ATTEMPTS = 3
#: scales the per-model error rates above: most models healthy, the flakiest degraded
ERROR_SCALE = 0.5
