"""axe-core on every page the browser tests visit.

How it works (docs/architecture.md, "Audits"):

- Every browser context the tests open gets a small init script: when an HTML
  document is parsed (DOMContentLoaded) or htmx settles a swap, it marks the
  document `<html data-axe-pending>`.
- Every page gets a Playwright locator handler on that mark. Playwright runs it
  before each action (click, fill, ...) and each auto-waiting assertion
  (`expect`), so a marked document is audited, synchronously for the test,
  before the test touches it: axe-core (vendored beside this file, injected
  through the DevTools protocol, which the Content-Security-Policy does not
  restrict, and never served by the portal) runs on the whole document.
- Before a page navigates by `goto`/`reload`/`go_back`, closes, or its context
  closes, and when the test ends, whatever is still marked is audited too.
- The violations are collected; conftest.py fails the test with their list
  once its body has passed.

The rules: WCAG 2.0 and 2.1, levels A and AA, and axe's best practices (the
empty table header, the landmarks, the heading levels, ...), all of them but
IGNORED below, each with its reason.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

AXE_SOURCE = Path(__file__).with_name("vendor").joinpath("axe-4.14.1.min.js").read_text(encoding="utf-8")

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

# Rules left out, each with its reason (none so far for the portal's own pages).
IGNORED: dict[str, str] = {}

# Pages not audited, by path, each with its reason: none (the admin's pages are
# audited like the others when a test visits them).
NOT_AUDITED: list[tuple[re.Pattern[str], str]] = []

# Rules let through on some pages, each with its reason: what Django's own admin
# templates write, which we do not override.
IGNORED_ON: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"^/admin/"),
        "empty-table-header",
        "Django's tabular inlines leave empty the header cells of their object and delete columns",
    ),
]

MARK = "data-axe-pending"

# AXE=0: no audit (to tell whether a browser test's trouble comes from it).
ENABLED = os.environ.get("AXE", "1") != "0"

# AXE_REVIEW=<file>: also write there every page audited and what axe-core
# leaves "to review" (incomplete), which never fails a test.
REVIEW_FILE = os.environ.get("AXE_REVIEW")

# Runs in every document before its own scripts (CDP, so outside the CSP).
MARK_SCRIPT = f"""
(() => {{
  if (window !== window.top) return;
  const mark = () => {{
    if (document.contentType === "text/html" && document.documentElement) {{
      document.documentElement.setAttribute("{MARK}", "");
    }}
  }};
  document.addEventListener("DOMContentLoaded", mark);
  document.addEventListener("htmx:afterSettle", mark, true);
}})();
"""

# Set once per document after axe is injected: a count such as a lone "0" is
# text to read like any other (axe leaves one-character text "to review" else).
# The check's options are replaced whole, hence its defaults first.
CONFIGURE_SCRIPT = """
() => {
  const defaults = window.axe._audit.checks["color-contrast"].options;
  window.axe.configure({checks: [{id: "color-contrast", options: {...defaults, ignoreLength: true}}]});
}
"""

RUN_SCRIPT = r"""
async ({mark, tags, ignored, review}) => {
  const root = document.documentElement;
  if (!root || !root.hasAttribute(mark)) return null;
  // Unmarked first: a swap that settles while axe runs marks it again.
  root.removeAttribute(mark);
  const rules = Object.fromEntries(ignored.map((id) => [id, {enabled: false}]));
  const results = await window.axe.run(document, {
    runOnly: {type: "tag", values: tags},
    rules,
    resultTypes: review ? ["violations", "incomplete"] : ["violations"],
  });
  const found = (list) => list.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    helpUrl: violation.helpUrl,
    nodes: violation.nodes.map((node) => ({
      target: node.target.join(" "),
      html: node.html,
      summary: node.failureSummary || node.any.concat(node.all, node.none).map((check) => check.message).join("; "),
    })),
  }));
  // axe leaves an aria-describedby that names no element "to review" (the element
  // may come later); on these server-rendered pages it is a mistake: a violation.
  const selector = (element) => {
    const parts = [];
    for (let node = element; node && node !== root; node = node.parentElement) {
      if (node.id) {
        parts.unshift(`#${CSS.escape(node.id)}`);
        break;
      }
      const same = [...(node.parentElement?.children || [])].filter((other) => other.localName === node.localName);
      parts.unshift(same.length > 1 ? `${node.localName}:nth-of-type(${same.indexOf(node) + 1})` : node.localName);
    }
    return parts.join(" > ");
  };
  const dangling = [];
  for (const element of document.querySelectorAll("[aria-describedby], [aria-labelledby]")) {
    for (const name of ["aria-describedby", "aria-labelledby"]) {
      for (const id of (element.getAttribute(name) || "").split(/\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) dangling.push({element, name, id});
      }
    }
  }
  const violations = found(results.violations);
  if (dangling.length) {
    violations.push({
      id: "idref-exists",
      impact: "serious",
      help: "aria-describedby and aria-labelledby must name elements of the page (a check of the portal's own)",
      helpUrl: "https://www.w3.org/TR/wai-aria-1.2/#aria-describedby",
      nodes: dangling.map(({element, name, id}) => ({
        target: selector(element),
        html: element.outerHTML.slice(0, 200),
        summary: `${name} names "${id}": no element has that id`,
      })),
    });
  }
  return {violations, incomplete: review ? found(results.incomplete) : []};
}
"""

# Errors meaning the document went away while it was audited (its next one is
# marked and audited in turn).
GONE = ("Execution context was destroyed", "Target page, context or browser has been closed", "navigating")


@dataclass
class Violation:
    path: str
    rule: str
    impact: str
    help: str
    help_url: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # target -> (html, summary)


class AxeAudit:
    """Watches the contexts and pages of one test and keeps what axe-core found."""

    def __init__(self) -> None:
        self.violations: dict[tuple[str, str], Violation] = {}
        self.audited: list[str] = []
        self.contexts: list = []

    # -- wiring ----------------------------------------------------------------

    def watch_browser(self, browser) -> None:
        if not ENABLED:
            return
        new_context = browser.new_context

        def watched_new_context(*args, **kwargs):
            return self.watch_context(new_context(*args, **kwargs))

        browser.new_context = watched_new_context

    def watch_context(self, context):
        context.add_init_script(MARK_SCRIPT)
        self.contexts.append(context)
        new_page, close = context.new_page, context.close

        def watched_new_page(*args, **kwargs):
            return self.watch_page(new_page(*args, **kwargs))

        def watched_close(*args, **kwargs):
            self.flush_context(context)
            return close(*args, **kwargs)

        context.new_page = watched_new_page
        context.close = watched_close
        return context

    def watch_page(self, page):
        # no_wait_after: a document that is marked again meanwhile (a navigation
        # the action started, a swap) is audited on the action's next retry.
        page.add_locator_handler(page.locator(f"html[{MARK}]"), lambda: self.audit(page), no_wait_after=True)
        for name in ("goto", "reload", "go_back", "go_forward", "close"):
            self._audit_before(page, name)
        return page

    def _audit_before(self, page, name: str) -> None:
        method = getattr(page, name)

        def watched(*args, **kwargs):
            self.audit(page)
            return method(*args, **kwargs)

        setattr(page, name, watched)

    # -- auditing --------------------------------------------------------------

    def audit(self, page, *, again: bool = True) -> None:
        """Audits the page's document if it is marked (else does nothing). A
        document replaced while it was audited (a navigation under way): the
        new one is awaited and audited in turn, so that nothing else (a close,
        the test's next action) lands in the middle of that navigation."""
        if page.is_closed():
            return
        url = page.url
        if not url.startswith(("http:", "https:")):  # about:blank, data: and the like
            return
        path = self._path(url)
        if any(pattern.search(path) for pattern, _ in NOT_AUDITED):
            return
        try:
            if not page.evaluate("(mark) => !!document.documentElement?.hasAttribute(mark)", MARK):
                return
            if not page.evaluate("() => typeof window.axe === 'object'"):
                page.evaluate(AXE_SOURCE)
                page.evaluate(CONFIGURE_SCRIPT)
            found = page.evaluate(
                RUN_SCRIPT, {"mark": MARK, "tags": TAGS, "ignored": list(IGNORED), "review": bool(REVIEW_FILE)}
            )
        except Exception as error:  # the document went away meanwhile
            if not any(text in str(error) for text in GONE):
                raise
            if again and not page.is_closed():
                with contextlib.suppress(Exception):  # not loaded in time: audited as far as it can be
                    page.wait_for_load_state("load", timeout=10_000)
                self.audit(page, again=False)
            return
        if found is None:
            return
        self.audited.append(path)
        if REVIEW_FILE:
            with open(REVIEW_FILE, "a", encoding="utf-8") as review:
                review.write(f"AUDITED {path}\n")
                for item in found["incomplete"]:
                    for node in item["nodes"]:
                        summary = " ".join(node["summary"].split())
                        review.write(f"REVIEW {path} {item['id']} {node['target']} | {summary}\n")
        for item in found["violations"]:
            if any(pattern.search(path) and item["id"] == rule for pattern, rule, _ in IGNORED_ON):
                continue
            key = (self._page_name(path), item["id"])
            violation = self.violations.setdefault(
                key,
                Violation(path, item["id"], item["impact"] or "", item["help"], item["helpUrl"]),
            )
            for node in item["nodes"]:
                violation.nodes.setdefault(node["target"], (node["html"], node["summary"]))

    def flush_context(self, context) -> None:
        for page in list(context.pages):
            self.audit(page)

    def flush(self) -> None:
        """Audits what is still marked on every open page of the test."""
        for context in self.contexts:
            try:
                pages = list(context.pages)
            except Exception:  # closed
                continue
            for page in pages:
                try:
                    self.audit(page)
                except Exception as error:
                    if "closed" not in str(error):
                        raise

    def clear(self) -> None:
        self.violations.clear()

    # -- reporting -------------------------------------------------------------

    @staticmethod
    def _path(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def _page_name(path: str) -> str:
        # One entry per kind of page: the numbers in a path (orders, quotes) vary.
        return re.sub(r"/\d+(?=/|$)", "/<id>", path.split("?")[0])

    def report(self, *, nodes_shown: int = 4) -> str:
        count = sum(len(violation.nodes) for violation in self.violations.values())
        lines = [
            f"axe-core {AXE_VERSION}: {len(self.violations)} rule(s) violated, {count} element(s), "
            f"on the pages this test visited (WCAG 2.1 A/AA and best practices):"
        ]
        for (page_name, _), violation in sorted(self.violations.items()):
            lines.append("")
            lines.append(f"{page_name}  (first seen on {violation.path})")
            lines.append(f"  {violation.rule} [{violation.impact}]: {violation.help}")
            lines.append(f"  {violation.help_url}")
            for target, (html, summary) in list(violation.nodes.items())[:nodes_shown]:
                lines.append(f"  - {target}")
                lines.append(f"    {html[:200]}")
                for summary_line in summary.splitlines():
                    lines.append(f"      {summary_line.strip()}")
            if len(violation.nodes) > nodes_shown:
                lines.append(f"  ... and {len(violation.nodes) - nodes_shown} more element(s)")
        return "\n".join(lines)


AXE_VERSION = re.search(r"axe v([\d.]+)", AXE_SOURCE[:200]).group(1)  # type: ignore[union-attr]
