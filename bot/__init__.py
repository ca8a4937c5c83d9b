"""The shared bot: one interface for voice and chat. The knowledge engine behind it is its own package."""

from bot.interface import Bot, BotAnswer, BotRequest, KeywordBot

__all__ = ["Bot", "BotAnswer", "BotRequest", "KeywordBot"]
