"""HTML view of a session's environment: interpreter, git state and distributions."""

from __future__ import annotations

from .html import escape, section, table, wrap


def git_text(environment) -> str:
    if not environment.git_commit:
        return "no git repository"
    branch = f" on {environment.git_branch}" if environment.git_branch else ""
    state = ", uncommitted changes" if environment.git_dirty else ", clean"
    return f"{environment.git_commit}{branch}{state}"


def summary_rows(environment) -> list[tuple[str, str]]:
    """The lines a run view shows about its session's environment."""
    return [
        ("python", f"{environment.python or ''} ({environment.implementation or '?'})"),
        ("platform", f"{environment.platform or ''} {environment.machine or ''}".strip()),
        ("git", git_text(environment)),
        ("distributions", str(len(environment.packages))),
        ("session", environment.session_id),
    ]


def environment_html(environment) -> str:
    parts = [f"<p>Environment of session {escape(environment.session_id)}"
             + (f" · {escape(environment.notebook)}" if environment.notebook else "") + "</p>",
             table(["", "value"], summary_rows(environment))]
    if environment.packages:
        parts.append(section(f"Distributions ({len(environment.packages)})", table(
            ["name", "version"], sorted(environment.packages.items(),
                                        key=lambda item: item[0].lower()))))
    return wrap("".join(parts))
