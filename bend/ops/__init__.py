"""Operations: Prometheus metrics, liveness and readiness, and each process's ops server."""

__all__ = ["health", "metrics", "server"]
