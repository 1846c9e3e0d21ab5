"""Runtime startup logs: parse llama.cpp/Ollama and vLLM logs, compare them with our estimate.

Pure Python, no web imports: `check_log(text, catalog)` is the one door the API, the page and the CLI use.
"""

from app.logs.compare import LogReport, TermRow, check_log, parse_log
from app.logs.model import MAX_LOG_BYTES, Figure, ParsedLog, Setting

__all__ = ["MAX_LOG_BYTES", "Figure", "LogReport", "ParsedLog", "Setting", "TermRow", "check_log", "parse_log"]
