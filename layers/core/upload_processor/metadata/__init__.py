"""The metadata rules: parse, validate and merge a session's aind-data-schema files.

The only room that imports aind-data-schema's core models to validate and merge; it reads
bytes and returns a report, and calls no AWS service.
"""
