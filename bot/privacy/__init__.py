"""Personal-data rights: access, export, correction and erasure requests with their
deadlines, consent changes and STOP per channel, the proof check every personal act asks
first (`proof.py`), and the privacy answer desk."""
