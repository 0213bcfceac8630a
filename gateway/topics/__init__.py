"""Topics: create, list, describe, reconfigure and delete a tenant's topics."""
