"""How figures look: one colour, marker and line style per method, the same in every figure; the
page style (font sizes legible at page width) and how a figure is written (PNG at :data:`DPI` and an
SVG twin).

A method's style is a function of its name alone, so a method keeps its look across figures,
runs and suites, whichever other methods are drawn beside it (a palette indexed by the position
in one figure's legend gives lrp one colour here and another there). The built-in explainers
and clusterer inputs have hand-picked, pairwise distinct styles (Okabe-Ito and Paul Tol colours,
readable by colour-blind readers, each with its own marker, so a greyscale print still tells
them apart); any other name (a plugin) gets a style hashed from its name (SHA-256, not Python's
salted ``hash``), stable across processes, drawn dash-dotted so it never passes for a built-in.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Style:
    """How one method is drawn: ``color`` (hex), ``marker`` (matplotlib), ``linestyle``."""

    color: str
    marker: str
    linestyle: str = "-"

    def line(self) -> dict:
        """Keyword arguments for ``Axes.plot``."""
        return {"color": self.color, "marker": self.marker, "ls": self.linestyle}


# The built-in methods; the reference (random) is black and dashed, as the reader expects of a baseline.
BUILTIN: dict[str, Style] = {
    "random": Style("#000000", "x", "--"),
    "gradcam": Style("#E69F00", "s"),
    "integrated-gradients": Style("#56B4E9", "^"),
    "lrp": Style("#009E73", "o"),
    "lrp-epsilon-plus-flat": Style("#D55E00", "D"),
    "lrp-epsilon-gamma-box": Style("#CC79A7", "v"),
    "crp": Style("#0072B2", "P"),
    "prp": Style("#882255", "*"),
    "protopnet-upsampling": Style("#999933", "h"),
    "protopnet-lrp": Style("#332288", "<"),
    "cladec": Style("#8C564B", ">"),
    "cladec-diff": Style("#7F7F7F", "p"),
    # the clusterers' raw inputs (baselines, drawn dashed in detection figures): neutral dark grey and purple, not
    # two more greens beside lrp's (four greens in one legend could not be told apart)
    "activations": Style("#555555", "X"),
    "pixels": Style("#AA4499", "d"),
}

# For names not in BUILTIN: darker shades than the built-ins' and markers they use less.
_PLUGIN_COLORS = ("#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#BCBD22", "#17BECF", "#E377C2",
                  "#AEC7E8", "#FFBB78", "#98DF8A", "#FF9896")
_PLUGIN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p", "d", "8")


def method_style(name: str) -> Style:
    """The style of method ``name``: the built-in table, else a hash of the name."""
    if name in BUILTIN:
        return BUILTIN[name]
    h = int.from_bytes(hashlib.sha256(str(name).encode()).digest()[:8], "big")
    return Style(_PLUGIN_COLORS[h % len(_PLUGIN_COLORS)],
                 _PLUGIN_MARKERS[(h // len(_PLUGIN_COLORS)) % len(_PLUGIN_MARKERS)], "-.")


# -- how every figure is laid out and written ----------------------------------------------------
DPI = 200  # print resolution of the PNGs; the SVG twin is resolution-free
VECTOR_SUFFIX = ".svg"
PAGE_WIDTH = 7.0  # inches: a figure at most this wide is printed at (about) its own size
TRUTH_COLORS = {False: "#4477AA", True: "#CC3311"}  # clean, poisoned (Paul Tol's bright blue / red)
TRUTH_MARKERS = {False: "o", True: "^"}
FLAGGED_COLOR, OTHER_CLUSTER_COLORS = "#EE7733", ("#777777", "#33BBEE", "#AA3377", "#009988", "#BBBBBB")


def vector_twin(name: str) -> str:
    """The SVG written beside the PNG ``name``."""
    return str(Path(name).with_suffix(VECTOR_SUFFIX))


@contextmanager
def page_style():
    """Seaborn's white grid with font sizes that stay legible when a figure is printed at page width,
    and SVGs whose ids do not change between runs (so a rerun rewrites identical files)."""
    import seaborn as sns

    rc = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 8, "xtick.labelsize": 7,
          "ytick.labelsize": 7, "figure.titlesize": 10, "figure.labelsize": 8, "svg.hashsalt": "hansbench"}
    with sns.axes_style("whitegrid"), matplotlib.rc_context(rc):
        yield


DENSE_POINTS = 200  # a scatter with more points than this is drawn as an image inside the SVG twin


def rasterize_dense(fig) -> None:
    """Draw the scatters of every panel of more than :data:`DENSE_POINTS` points as an embedded image in vector output.

    One path per point made the embedding figures of a 2,000-image quick run weigh up to 3.5 MB; an image per
    panel (axes, ticks and text stay vector) looks the same at print size and is lighter (quick's clean-control
    embedding: 1.29 MB -> 1.00 MB, measured by redrawing it from the run's cache).
    """
    for ax in fig.axes:
        if sum(len(artist.get_offsets()) for artist in ax.collections) > DENSE_POINTS:
            for artist in ax.collections:
                artist.set_rasterized(True)


def save(fig, out: Path, name: str) -> str:
    """Write ``name`` (PNG at :data:`DPI`) and its SVG twin into ``out``; close the figure; return ``name``."""
    fig.savefig(out / name, dpi=DPI)
    rasterize_dense(fig)
    fig.savefig(out / vector_twin(name), dpi=DPI, metadata={"Date": None})
    plt.close(fig)
    return name
