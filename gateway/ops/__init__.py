"""Operations: liveness, readiness and metrics routes."""
