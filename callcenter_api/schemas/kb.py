"""Knowledge-base entries and the bot's answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(pattern="^(en|zh)$", examples=["en"])
    questions: list[str] = Field(min_length=1, max_length=50, examples=[["What are your opening hours?"]])
    answer: str = Field(min_length=1, max_length=4000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    enabled: bool = True


class EntryCreate(EntryIn):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", examples=["opening-hours"])


class EntryOut(EntryCreate):
    pass


class ImportOut(BaseModel):
    entries: int
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]
    revision: int


class KbProblemOut(BaseModel):
    line: int
    column: int
    message: str


class KbInvalidOut(BaseModel):
    detail: str
    problems: list[KbProblemOut]


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)
    language: str | None = Field(None, pattern="^(en|zh)$", description="default: zh for Chinese text, else en")
    conversation_id: str | None = Field(None, description="resolve follow-ups against this conversation's topic")


class SuggestionOut(BaseModel):
    entry_id: str
    question: str


class AskOut(BaseModel):
    entry_id: str | None = Field(description="null when the bot abstains")
    answer: str | None
    confidence: float
    handoff: bool
    suggestions: list[SuggestionOut] = Field(default_factory=list, description="close candidates when unsure")
