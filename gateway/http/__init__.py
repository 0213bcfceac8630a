"""The plumbing every feature shares: settings, the runtime, problems, bodies, auth, routing.

Nothing here imports a feature (`records`, `topics`, `admin`, `ops`, ...).
"""
