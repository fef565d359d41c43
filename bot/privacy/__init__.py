"""Personal data: proving who one is (one-time codes, customer tokens), consent per
purpose and channel with its ledger, access, export, correction and erasure requests, and
the privacy answer desk."""
