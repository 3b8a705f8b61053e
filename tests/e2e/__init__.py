"""Helpers of the monitoring tests: the mixin's renderer, a real Prometheus, dashboard queries."""
