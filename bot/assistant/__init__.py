"""The assistant as Rasa runs it: our NLU component, the gateway's input channel into
Rasa, the client the gateway talks to Rasa with, and what the bot says when it did not
understand."""
