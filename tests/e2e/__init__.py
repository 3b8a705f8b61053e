"""Helpers of the monitoring tests: the generator, a real Prometheus, dashboard queries."""
