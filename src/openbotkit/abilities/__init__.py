"""Abilities: ChatBotKit's instruction format, parsed into what a tool needs (instruction.py)."""
