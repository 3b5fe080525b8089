"""R7's corpus: hostile strings that must be shown as the text they are, and never run.

``NAMES`` are all valid names (at most 250 characters, no control characters, no leading
'/' or '..' segment), so each can be a run name, an experiment, a tag, a param or metric
key, a dataset or artifact name, a column or a class label. ``LONG_TEXT`` is longer than
any name or value may be: it is refused cleanly where a limit applies and used where text
of any length is kept (column names, cell source).
"""

from __future__ import annotations

PWNED = "window.__pwned"
XSS_NAME = "<img src=x onerror=alert(1)>"

NAMES: list[str] = [
    "<script>alert(1)</script>",
    XSS_NAME,
    f'<img src=x onerror="{PWNED}=1">',
    f'<svg onload="{PWNED}=1">',
    '"><b>x</b>',
    "'><a href=\"javascript:alert(1)\">",
    f"</script><script>{PWNED}=1</script>",
    f'<iframe src="javascript:{PWNED}=1"></iframe>',
    f'<math><mi xlink:href="javascript:{PWNED}=1">m</mi></math>',
    "<!--",
    "<style>*{display:none}</style>",
    "&lt;b&gt;entity&lt;/b&gt;",
    "{{7*7}}",
    "${alert(1)}",
    "lr $x^$ run",
    "a $\\foo$ b",
    "\u202egnp.exe",
    "zero\u200dwidth\u200bjoin",
    "emoji 🚀👩\u200d💻 run",
    "実験 模型 CJK",
    # The longest name allowed, with markup inside it.
    ("<b>" + "long name " * 25)[:250],
]

LONG_TEXT = ("<img src=x onerror=alert(1)> " + "x" * 10_000)[:10_000]

# Strings matplotlib's mathtext cannot parse: drawn with math parsing on, they raise.
MATH_TRAPS = ["lr $x^$ run", "a $\\foo$ b"]


def label(payload: str) -> str:
    """A short printable id for test names: the position in the corpus."""
    return f"p{NAMES.index(payload):02d}" if payload in NAMES else "long"
