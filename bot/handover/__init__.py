"""Handing a conversation to a person: tickets, their messages and notes, support hours,
and the support agents with their logins."""
