"""Explicit requests for a person ("agent please", "can I talk to a real person", 转人工).

They are recognised before any retrieval and always win: a caller who asks for a human must never be given
an FAQ answer instead. Mentions of people that are not requests ("will a human read my complaint?",
人工智能) are not handoffs: a request needs a request verb, or the person word has to be most of what was said.
"""

from __future__ import annotations

import re

from bot.text import normalize

_PERSON = (
    r"(?:agent|agents|adviser|advisor|advisors|advisers|operator|representative|rep|human|humans|human being|"
    r"real person|actual person|live person|person|someone|somebody|anyone|member of staff|staff|"
    r"customer service|customer services|customer care|support team|team|department|dept|desk|manager|"
    r"supervisor|live agent|real human)"
)
_REQUEST = re.compile(
    rf"\b(?:speak|speaking|talk|talking|chat|connect|connected|transfer|transferred|put|get|want|need|give|"
    rf"have|reach|let)\b(?:\W+\w+){{0,5}}?\W+(?:to|with|me|through)?\W*(?:an?\W+|the\W+|some\W+)?(?:real\W+|"
    rf"actual\W+|live\W+)?{_PERSON}\b"
)
_BARE = re.compile(rf"^(?:\W*(?:um|uh|erm|er|hi|hello|yes|yeah|ok|okay|please|just|can i|could i|i want|an|a|the|"
                   rf"real|actual|live|get me|give me|talk|speak|to|me))*\W*{_PERSON}(?:\W+(?:please|now|thanks|"
                   rf"thank you|pls|plz))*\W*$")  # fmt: skip
# what speech recognition makes of "operator" / "agent" on a phone line
_MISHEARD = re.compile(r"\b(?:opera tour|opera tor|operate her|a gent|agence)\b")
# requests that name no person: "transfer me", "put me through", "connect me"
_BARE_REQUEST = re.compile(r"^\W*(?:please\W+)?(?:transfer|put|connect)\W+me(?:\W+through)?(?:\W+please)?\W*$")
_ANYONE = re.compile(rf"\b{_PERSON}\W+(?:there\W+)?(?:i|we)\W+(?:can|could)\W+(?:talk|speak|chat)\b")
# questions *about* people ("what time can I speak to someone?", "will a human read it?") are not requests
_NOT_REQUEST = re.compile(
    r"\b(?:read|reads|look at|reviewed|review|check|checks|handled by|answered by|what time|which hours|"
    r"opening hours|open|when can|when are|is there a person|or is it just|or just|do i have to|do i need to)\b"
)
_ZH = re.compile(
    r"转人工|人工客服|人工服务|找人工|接人工|要人工|找个人|找个真人|真人|接线员|客服人员|人工坐席|坐席|仁工|人工(?!智能)|"
    r"找客服|要客服|转客服|接客服|转接客服|找你们客服"
)
_ZH_NOT_REQUEST = re.compile(r"几点|什么时候|时间|周末|能找到.*吗|有没有人工|会有.*吗|处理吗")
_ZH_INSIST = re.compile(r"转人工|我要|给我|马上|立刻")


def is_handoff_request(text: str, language: str = "en") -> bool:
    said = normalize(text).strip()
    if not said:
        return False
    if _ZH.search(said):
        return not _ZH_NOT_REQUEST.search(said) or bool(_ZH_INSIST.search(said))
    if _BARE.match(said) or _MISHEARD.search(said) or _BARE_REQUEST.match(said):
        return True
    if _NOT_REQUEST.search(said):
        return False
    return bool(_REQUEST.search(said) or _ANYONE.search(said))
