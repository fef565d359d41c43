"""Who the customer is and what they agreed to: proving a chat belongs to a customer
(one-time codes, the retailer's signed customer tokens) and consent per purpose and
channel with its append-only ledger. Used by every capability that personalises or
contacts; knows none of them."""
