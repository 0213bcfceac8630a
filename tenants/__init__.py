"""Tenants, credentials, scopes and quotas."""
