def frame(
    data: bytes,
    count: int,
    first_timestamp: int,
    max_timestamp: int,
    identity: bytes | None,
    appended_ms: int,
    /,
) -> bytes: ...
