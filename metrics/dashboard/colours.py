"""One colour per model, provider, episode and workflow, the same on every page and filter.

The colour comes from the name alone (a hash into the palette of its kind), never from its
place in a chart's legend, so adding a model does not re-colour gpt-4o. Each kind has its
own palette, so orange is never an episode in one chart and a model in the next; blue and
red stay free for "succeeded" and "failed". When two names of one chart land on the same
colour, the later ones (in name order) get a bar pattern or line dash on top of it, so they
stay apart without either changing colour.
"""

import hashlib
from collections.abc import Iterable

PALETTES = {
    # cool colours for episodes
    "episode": ("#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#0b4f6c", "#6b8e23", "#7f7fff",
                "#00897b", "#5e35b1", "#4db6ac"),
    # warm colours for models
    "model": ("#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#f4a261", "#b5477b", "#c49c94",
              "#e6ab02", "#a0522d", "#ff9896"),
    # muted colours for providers and workflows
    "provider": ("#5c6bc0", "#455a64", "#8d6e63", "#26a69a", "#ab47bc", "#78909c"),
    "workflow": ("#3f51b5", "#607d8b", "#795548", "#009688", "#9c27b0", "#546e7a"),
}
PATTERNS = ("", "/", "x", ".", "+", "\\")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def colour_for(kind: str, name: str) -> str:
    """The colour of one name of a kind ("episode", "model", "provider", "workflow")."""
    palette = PALETTES[kind]
    digest = hashlib.sha256(f"{kind}:{name}".encode()).digest()
    return palette[int.from_bytes(digest[:4], "big") % len(palette)]


def styles_for(kind: str, names: Iterable[str]) -> dict[str, dict]:
    """Each name's colour, and a pattern and dash telling apart names that share one."""
    seen: dict[str, int] = {}
    styles = {}
    for name in sorted(set(names)):
        colour = colour_for(kind, name)
        n = seen.get(colour, 0)
        seen[colour] = n + 1
        styles[name] = {"colour": colour, "pattern": PATTERNS[n % len(PATTERNS)],
                        "dash": DASHES[n % len(DASHES)]}
    return styles
