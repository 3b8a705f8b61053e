"""Logging in node_exporter's logfmt style: ts=... level=... msg=..."""

import logging
import time

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        msg = record.getMessage().replace('"', '\\"').replace("\n", "\\n")
        line = f'ts={ts} level={record.levelname.lower()} source={record.module}.py:{record.lineno} msg="{msg}"'
        if record.exc_info:
            line += ' err="' + self.formatException(record.exc_info).replace('"', "'").replace("\n", "\\n") + '"'
        return line


def setup(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
