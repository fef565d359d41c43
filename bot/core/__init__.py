"""The bottom layer: settings, database and schema, chat identities, outboxes, text and
time helpers, signing. Knows nothing of stock, offers, privacy or handover."""
