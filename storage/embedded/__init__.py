"""The embedded engine: segment files on local disk, sharded writers, group commit."""
