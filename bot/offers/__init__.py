"""Loyalty and birthday offers: the offer rules, vouchers and their codes, birthday
pushes, loyalty cards, and the offers answer desk."""
