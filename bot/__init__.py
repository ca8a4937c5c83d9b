"""The shared bot: one interface for voice and chat, and the knowledge engine behind it.

`bot.interface` is what flows and chat depend on; `bot.engine.KnowledgeBot` answers from the knowledge base
(`bot.knowledge` entries, `bot.retrieval` ranking, `bot.confidence` calibration, `bot.context` follow-ups).
"""

from bot.interface import Bot, BotAnswer, BotRequest, KeywordBot, Suggestion

__all__ = ["Bot", "BotAnswer", "BotRequest", "KeywordBot", "Suggestion"]
