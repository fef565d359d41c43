"""The gateway: one aiohttp application that hosts the channels, turns each customer
message into a Rasa turn, routes handed-over conversations, and runs the periodic jobs."""
