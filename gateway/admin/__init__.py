"""Administration: tenants, API keys and quotas (operator), usage and short-lived tokens."""
