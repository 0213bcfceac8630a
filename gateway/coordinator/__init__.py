"""The consumer-group coordinator, for every way a member reaches it.

`assignors.py` and `membership.py` are pure (plain data in, decisions out,
time passed in as `now_ms`): the HTTP group routes, a stream's group mode and
a Kafka wire-protocol listener can all drive them. `service.py` runs them over
the `GroupStore`, so membership and positions live in the store, not in a
process. Nothing here knows HTTP.
"""
