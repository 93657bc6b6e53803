"""What operators do with jobs after the fact: read their status, retry, cancel, redrive."""
