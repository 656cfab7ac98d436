"""Logging set-up (loguru): human-readable on a terminal, JSON lines when
configured. Every record names its component (``logger.bind(component=...)``);
records without one are tagged ``engine``. Never log secrets."""

from __future__ import annotations

import sys

from loguru import logger

HUMAN_FORMAT = ("<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
                "<cyan>{extra[component]: <8}</cyan> {message}")


def setup(level: str = "INFO", json_lines: bool = False, stream=None) -> None:
    logger.remove()
    logger.configure(extra={"component": "engine"})
    out = stream if stream is not None else sys.stderr
    if json_lines:
        logger.add(out, level=level, serialize=True, enqueue=False)
    else:
        colorize = hasattr(out, "isatty") and out.isatty()
        logger.add(out, level=level, format=HUMAN_FORMAT, colorize=colorize, enqueue=False)
