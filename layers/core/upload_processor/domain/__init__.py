"""Contracts and domain rules: what a job, a plan, a report and an archived asset are.

Pure Python and pydantic: nothing here calls AWS (no boto3, botocore or Powertools clients),
so every rule can be tested without a cloud and reused by the CLI.
"""
