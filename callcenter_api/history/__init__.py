"""The omnichannel customer history: identities, contacts and merges, conversations and their messages, the
timeline. Voice (through the call log) and chat (through the API) both write through here."""
