"""Operating the app: liveness and readiness probes, Prometheus metrics (docs/operations.md).

- `probes`: /healthz (the process answers; no database) and /readyz (the database, the
  broker when configured, beat's heartbeat when asked to), JSON, unauthenticated.
- `exposition`: /metrics in Prometheus's text format, behind METRICS_TOKEN or
  METRICS_ALLOWED_IPS; the load counters come from `cards.loading.metrics`, the gauges
  are read at scrape time.
- `middleware`: answers those three paths first, before host checks, redirects, sessions
  or authentication, so probes from a load balancer or Kubernetes (which use the pod's
  address as Host) cost nothing but the check itself.
"""
