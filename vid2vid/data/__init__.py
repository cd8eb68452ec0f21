"""Data: frame sequences and videos."""
