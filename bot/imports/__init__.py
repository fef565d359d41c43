"""Imports of a retailer's own data from the files it already keeps (the business-profile
store sheet today; product and inventory feeds and CRM exports next): validated row by
row before anything is written, reported in French by line and column."""
