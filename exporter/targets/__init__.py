"""Which processes are watched, and under which group name.

``config`` loads and validates the YAML (process-exporter's ``process_names``
format is accepted as it is); ``match`` assigns a process to its group.
"""

from exporter.targets.config import Config, ConfigError, GroupRule, default_config, load_config
from exporter.targets.match import Matcher, ProcessFacts

__all__ = ["Config", "ConfigError", "GroupRule", "Matcher", "ProcessFacts", "default_config", "load_config"]
