"""What the Lambda handlers share: Powertools REST responses and metrics helpers."""
