"""Agents, queues and the automatic call distributor (ACD), shared by calls and chats."""
