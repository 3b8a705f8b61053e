"""vma-exporter: per-process memory map areas, memory and hugepages for Prometheus."""

__version__ = "0.1.0"
