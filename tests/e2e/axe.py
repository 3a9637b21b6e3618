"""axe-core in the browser tests: the WCAG 2.1 A and AA rules, run on the page as it is shown.

axe-core is vendored (tests/e2e/vendor/axe-core/, MPL-2.0, from the npm package ``axe-core``;
see its README there): nothing is fetched while the tests run. The script is evaluated through the
DevTools protocol, which the page's Content-Security-Policy does not govern, so the page under test
keeps its real policy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

AXE_DIR = Path(__file__).resolve().parent / "vendor" / "axe-core"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
WCAG_21_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_source: str | None = None


def axe_source() -> str:
    global _source
    if _source is None:
        data = (AXE_DIR / "axe.min.js").read_bytes()
        assert hashlib.sha256(data).hexdigest() == AXE_SHA256, "tests/e2e/vendor/axe-core/axe.min.js was changed"
        assert f"axe v{AXE_VERSION}" in data[:40].decode()
        _source = data.decode("utf-8")
    return _source


def axe_violations(page) -> list[dict]:
    """The WCAG 2.1 A/AA violations on ``page`` now: ``[{"id", "impact", "help", "targets"}]``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + (n.failureSummary || "")
                    .replace(/\\s+/g, " ").slice(0, 200))}));
        }""",
        WCAG_21_A_AA,
    )
    return result


def violations_report(found: dict[str, list[dict]]) -> str:
    """``{where: violations}`` as lines a person can act on."""
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
            lines.extend(f"    {target}" for target in v["targets"])
    return "\n".join(lines)
