"""Stores: the store directory with opening hours and closures, and places (cities,
postcodes, shared positions) with distances."""
