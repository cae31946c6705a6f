"""What the openai SDK's tests send, shared by the emulator's and the gateway's: two function tools
(pydantic models the SDK turns into JSON schemas), a question that needs both, a structured-output
model, and the caller's side of a tool loop."""

from __future__ import annotations

import json
from typing import Any, Literal

import openai
from pydantic import BaseModel, Field

__all__ = ["QUESTION", "TOOLS", "Divide", "GetWeather", "MathAnswer", "Step", "answer_calls", "run_tool"]


class GetWeather(BaseModel):
    """The forecast for a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=1, le=7)


class Divide(BaseModel):
    """Divide two numbers."""

    numerator: float
    denominator: int = Field(gt=0)


class Step(BaseModel):
    explanation: str
    output: str


class MathAnswer(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float = Field(ge=0, le=1)


TOOLS = [openai.pydantic_function_tool(GetWeather), openai.pydantic_function_tool(Divide)]
QUESTION: list[Any] = [{"role": "user", "content": "Weather in Paris for 3 days, and what is 123 / 456?"}]


def run_tool(name: str, arguments: str) -> str:
    """The caller's side of the loop: the arguments must be valid for the tool's model."""
    if name == "GetWeather":
        weather = GetWeather.model_validate_json(arguments)
        return json.dumps({"city": weather.city, "forecast": ["sunny"] * weather.days})
    division = Divide.model_validate_json(arguments)
    return json.dumps({"result": division.numerator / division.denominator})


def answer_calls(messages: list[Any], message: Any) -> None:
    """Append the assistant's tool calls and one tool result per call."""
    messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id,
                         "content": run_tool(call.function.name, call.function.arguments)})
