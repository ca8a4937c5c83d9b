"""System notes that more than one part reads: the channels write them into transcripts, the supervisor
view (routing/stats) and /metrics count them. One spelling, here."""

# A question the bot would not answer; the note's meta has the customer's "question" (voice and chat).
NO_ANSWER_NOTE = "bot: no confident answer"
