"""Stock: the catalog index, availability per store and online, holds, back-in-stock
alerts, stock imports, and the stock answer desk."""
