"""The response headers of console pages: a strict Content-Security-Policy and caching.

The console shows records that anyone with produce rights wrote, so a page
must not run anything but its own files even if a value were ever put into
the DOM as markup: no inline script or style attribute, no eval, no other
origin, no framing. The page talks to the API of its own origin only
(`connect-src`), which includes the WebSocket of that origin: `ws:`/`wss:`
of the same host are named explicitly, since browsers before CSP Level 3 do
not count them as `'self'`.

Files carry no content hash in their names (there is no build step), so every
response may be cached but is revalidated each time (`no-cache` with an
ETag): a new release is seen on the next load, and an unchanged file costs a
304.
"""

from __future__ import annotations

import re

# A Host header we are willing to repeat in the policy: a name or address and a port.
HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")

BASE_POLICY = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)

CACHE_CONTROL = "no-cache"


def content_security_policy(host: str | None) -> str:
    """The policy for a page served under `host` (the request's Host header)."""
    connect = ["'self'"]
    if host and HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join([*BASE_POLICY, "connect-src " + " ".join(connect)])


def console_headers(host: str | None) -> dict[str, str]:
    """Every header a console response carries besides its type and validators."""
    return {
        "Content-Security-Policy": content_security_policy(host),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": CACHE_CONTROL,
    }
