"""Reports of a run: terminal (rich), JUnit XML, JSON and HTML."""

from redtest.report.console import ConsoleReporter, make_console
from redtest.report.html import write_html
from redtest.report.json_report import to_json_dict, write_json
from redtest.report.junit import write_junit

__all__ = ["ConsoleReporter", "make_console", "to_json_dict", "write_html", "write_json", "write_junit"]
