"""The edges: small clients around AWS services and the metadata services.

Each takes an injected boto3 client (or an HTTP transport), so the pipeline stages can be run
against moto, a fake or the real cloud alike. Adapters import the domain, never a stage.
"""
