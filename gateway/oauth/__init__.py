"""OAuth2 as standard clients expect it: client-credentials tokens, introspection, revocation,
server metadata (RFC 6749 §4.4, 7662, 7009, 8414), on authlib's server components."""
