"""The retailer's side: what the bot misunderstood, kept masked for review and turned
into training data, and what shoppers asked for (analytics and demand signals)."""
