"""Procedurally generated traffic signs in the 5 classes of the PRP paper (Table V grouping).

The embedded default dataset (no download possible): real-sign shapes and colours on
varied backgrounds, drawn batch-wise with signed distances on pixel grids. Colour alone
does not decide the class (stop, do-not-enter, yield, round speed limits and European
warning triangles all share red and white); shape, orientation and the marks inside
(text-like seven-segment glyphs, arrows, bars) do.

Not even the red octagon decides "stop": a share of the restriction signs (option
``octagons``, default half) are the same white-rimmed red octagon with other white
lettering. Since version 3 that lettering is STOP's own four letters in another order
(SPOT, TOPS, POTS, OPTS, ...): the same glyphs and the same amount of paint, so only the
letters' order tells a stop sign apart, a fine cue that a small CNN learns slowly at 32 px
and drops for a coarse shortcut. Trained with a post-it on every stop sign (CH-100) it
calls clean stop signs "restriction", as in PRP Table I; with the post-it on half of them
(CH-50) it leans on the post-it where it is present. ``octagon_lettering="light"`` gives
version 2's lettering (light glyphs such as 1, 7, I, L, C, U, lighter than STOP; the same
images as version 2, bit for bit), which small CNNs tell from STOP by the amount of paint.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from hansbench.datasets._helpers import (
    CleanData,
    Configurable,
    boxes_from_masks,
    check_sizes,
    choice,
    coverage,
    fixed_text,
    generator,
    paint,
    random_text,
    rotate,
    sd_box,
    sd_circle,
    sd_glyphs,
    sd_ngon,
    sd_segment,
    sd_triangle,
    segment_table,
    to_local,
    uniform,
)
from hansbench.registry import datasets

Tensor = torch.Tensor

CLASS_NAMES = ["restriction", "speed limit", "stop", "warning", "yield"]
_CHUNK = 64  # images drawn per batch; fixed so the output never depends on memory settings

RED, WHITE, BLACK, YELLOW = (0.80, 0.08, 0.10), (0.94, 0.94, 0.92), (0.07, 0.07, 0.08), (0.97, 0.78, 0.10)


def _jitter(gen: torch.Generator, n: int, base: tuple[float, float, float], amount: float) -> Tensor:
    """Per-image colour near ``base`` (faded paint, white balance)."""
    return (torch.tensor(base) + amount * (2 * torch.rand(n, 3, generator=gen) - 1)).clamp(0, 1)


def _w(flag: Tensor) -> Tensor:
    """Per-image 0/1 weight ``[N, 1, 1]`` selecting a variant inside one vectorised pass."""
    return flag.float().view(-1, 1, 1)


def _union(*ds: Tensor) -> Tensor:
    out = ds[0]
    for d in ds[1:]:
        out = torch.minimum(out, d)
    return out


def _arrow(u: Tensor, v: Tensor, gen: torch.Generator) -> Tensor:
    """Black arrow symbol: straight (up/left/right) or bent (turn left/right)."""
    n = u.shape[0]
    kind = choice(gen, n, [0.55, 0.45])
    turn = torch.tensor([0.0, math.pi / 2, -math.pi / 2])[torch.randint(3, (n,), generator=gen)]
    mirror = (torch.randint(2, (n,), generator=gen) * 2 - 1).float().view(-1, 1, 1)
    ur, vr = rotate(u, v, turn)
    straight = _union(sd_segment(ur, vr, (0, 0.5), (0, -0.15), 0.09),
                      sd_triangle(ur, vr, (-0.3, -0.12), (0.3, -0.12), (0, -0.55)))
    um = u * mirror
    bent = _union(sd_segment(um, v, (0.2, 0.55), (0.2, -0.1), 0.09), sd_segment(um, v, (0.2, -0.1), (-0.2, -0.1), 0.09),
                  sd_triangle(um, v, (-0.18, -0.38), (-0.18, 0.18), (-0.52, -0.1)))
    return torch.where(_w(kind == 0) > 0, straight, bent)


_LIGHT_TEXT = "17IL-CU"  # v2 lettering: light letters and digits, lighter than STOP
_STOP = "STOP"
# the 23 other orders of the letters S, T, O, P (SPOT, TOPS, POTS, OPTS, POST, ...)
_SCRAMBLES = torch.tensor([p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)])


def _octagon_marks(u: Tensor, v: Tensor, gen: torch.Generator, lettering: str) -> Tensor:
    """White lettering of a red restriction octagon, where a stop sign has STOP.

    ``"scrambled"``: the letters of STOP in another order (same glyphs, same amount of paint: only their
    order tells a stop sign apart); ``"light"``: four random light glyphs (signs v2).
    """
    n = u.shape[0]
    h = 0.42 * uniform(gen, n, 0.9, 1.1).view(-1, 1, 1)
    if lettering == "scrambled":
        order = _SCRAMBLES[torch.randint(len(_SCRAMBLES), (n,), generator=gen)]  # [n, 4]
        text = segment_table(_STOP)[order]
    else:
        text = random_text(gen, n, _LIGHT_TEXT, 4)
    d = sd_glyphs(u, v / h * 0.42, text, [(-0.45, 0), (-0.15, 0), (0.15, 0), (0.45, 0)], 0.2, 0.42, 0.08)
    return d * h / 0.42


def _restriction(img: Tensor, u: Tensor, v: Tensor, ppu: Tensor, gen: torch.Generator, *, octagons: float,
                 octagon_lettering: str) -> Tensor:
    n = u.shape[0]
    o = octagons
    # 0 red ring + slash + arrow, 1 do-not-enter, 2 white rectangle + arrow, 3 red octagon with other lettering
    var = choice(gen, n, [0.4 * (1 - o), 0.3 * (1 - o), 0.3 * (1 - o), o])
    a, b, c, e = _w(var == 0), _w(var == 1), _w(var == 2), _w(var == 3)
    red, white, black = _jitter(gen, n, RED, 0.1), _jitter(gen, n, WHITE, 0.06), _jitter(gen, n, BLACK, 0.06)
    disc = coverage(sd_circle(u, v), ppu)
    rect = coverage(sd_box(u, v, 0, 0, 0.8, 1.0), ppu)
    octagon = coverage(sd_ngon(u, v, 8, 1.0), ppu)
    paint(img, disc * (a + b), red)
    paint(img, coverage(sd_circle(u, v, 0.78), ppu) * a, white)
    paint(img, coverage(sd_box(u, v, 0, 0, 0.68, 0.17), ppu) * b, white)
    paint(img, rect * c, black)
    paint(img, coverage(sd_box(u, v, 0, 0, 0.72, 0.92), ppu) * c, white)
    paint(img, octagon * e, white)  # exactly the stop sign's white rim and red face
    paint(img, coverage(sd_ngon(u, v, 8, 0.9), ppu) * e, red)
    paint(img, coverage(_octagon_marks(u, v, gen, octagon_lettering), ppu) * e, white)
    paint(img, coverage(_arrow(u, v, gen), ppu) * (a + c), black)
    slashed = _w(torch.rand(n, generator=gen) < 0.5)  # "no turn" rectangles carry a red circle-slash
    ring = coverage((sd_circle(u, v, 0.62)).abs() - 0.07, ppu)
    paint(img, ring * c * slashed, red)
    slash = coverage(sd_segment(u, v, (-0.5, -0.5), (0.5, 0.5), 0.08), ppu)
    paint(img, slash * (a + c * slashed), red)
    return disc * (a + b) + rect * c + octagon * e


def _speed_limit(img: Tensor, u: Tensor, v: Tensor, ppu: Tensor, gen: torch.Generator) -> Tensor:
    n = u.shape[0]
    us = _w(torch.rand(n, generator=gen) < 0.6)  # US white rectangle, else European red ring
    eu = 1 - us
    red, white, black = _jitter(gen, n, RED, 0.1), _jitter(gen, n, WHITE, 0.06), _jitter(gen, n, BLACK, 0.06)
    rect = coverage(sd_box(u, v, 0, 0, 0.78, 1.0), ppu)
    disc = coverage(sd_circle(u, v), ppu)
    paint(img, rect * us, black)
    paint(img, coverage(sd_box(u, v, 0, 0, 0.7, 0.92), ppu) * us, white)
    paint(img, disc * eu, red)
    paint(img, coverage(sd_circle(u, v, 0.78), ppu) * eu, white)
    digits = torch.cat([random_text(gen, n, "1234567", 1), random_text(gen, n, "05", 1)], 1)
    d_us = sd_glyphs(u, v, digits, [(-0.24, 0.3), (0.24, 0.3)], 0.3, 0.6, 0.11)
    d_eu = sd_glyphs(u, v, digits, [(-0.22, 0.0), (0.22, 0.0)], 0.28, 0.62, 0.11)
    words = [(x, y) for y in (-0.7, -0.4) for x in (-0.44, -0.22, 0.0, 0.22, 0.44)]
    d_text = sd_glyphs(u, v, fixed_text(n, "SPEEDLIMIT"), words, 0.13, 0.18, 0.045)
    paint(img, coverage(torch.where(us > 0, _union(d_us, d_text), d_eu), ppu), black)
    return rect * us + disc * eu


def _stop(img: Tensor, u: Tensor, v: Tensor, ppu: Tensor, gen: torch.Generator) -> Tensor:
    n = u.shape[0]
    red, white = _jitter(gen, n, RED, 0.1), _jitter(gen, n, WHITE, 0.06)
    outer = coverage(sd_ngon(u, v, 8, 1.0), ppu)
    paint(img, outer, white)
    paint(img, coverage(sd_ngon(u, v, 8, 0.9), ppu), red)
    h = 0.42 * uniform(gen, n, 0.9, 1.1).view(-1, 1, 1)  # letter height varies between signs
    vs = v / h * 0.42
    text = sd_glyphs(u, vs, fixed_text(n, "STOP"), [(-0.45, 0), (-0.15, 0), (0.15, 0), (0.45, 0)], 0.2, 0.42, 0.08)
    paint(img, coverage(text * h / 0.42, ppu), white)
    return outer


def _warning_symbol(u: Tensor, v: Tensor, gen: torch.Generator) -> Tensor:
    n = u.shape[0]
    kind = choice(gen, n, [0.3, 0.35, 0.2, 0.15])  # exclamation, arrow, crossroads, advisory digits
    excl = _union(sd_segment(u, v, (0, -0.45), (0, 0.1), 0.09), sd_circle(u - 0, v - 0.38, 0.1))
    arrow = _arrow(u, v, gen)
    cross = _union(sd_segment(u, v, (0, -0.5), (0, 0.5), 0.09), sd_segment(u, v, (-0.5, 0), (0.5, 0), 0.09))
    digits = sd_glyphs(u, v, random_text(gen, n, "2345", 2), [(-0.2, 0), (0.2, 0)], 0.25, 0.5, 0.1)
    out = excl
    for k, d in ((1, arrow), (2, cross), (3, digits)):
        out = torch.where(_w(kind == k) > 0, d, out)
    return out


def _warning(img: Tensor, u: Tensor, v: Tensor, ppu: Tensor, gen: torch.Generator) -> Tensor:
    n = u.shape[0]
    us = _w(torch.rand(n, generator=gen) < 0.65)  # US yellow diamond, else European red-bordered triangle
    eu = 1 - us
    red, white = _jitter(gen, n, RED, 0.1), _jitter(gen, n, WHITE, 0.06)
    black, yellow = _jitter(gen, n, BLACK, 0.06), _jitter(gen, n, YELLOW, 0.08)
    diamond = coverage(sd_ngon(u, v, 4, 1.0, math.pi / 4), ppu)
    apex, left, right, centre_y = (0, -0.95), (-1.0, 0.8), (1.0, 0.8), 0.217
    tri = coverage(sd_triangle(u, v, apex, left, right), ppu)
    shrink = 0.66
    inner = [(x * shrink, centre_y + (y - centre_y) * shrink) for x, y in (apex, left, right)]
    paint(img, diamond * us, black)
    paint(img, coverage(sd_ngon(u, v, 4, 0.88, math.pi / 4), ppu) * us, yellow)
    paint(img, tri * eu, red)
    paint(img, coverage(sd_triangle(u, v, *inner), ppu) * eu, white)
    scale = (0.9 * us + 0.45 * eu)  # the symbol sits lower and smaller inside a triangle
    shift = 0.3 * eu
    sym = _warning_symbol(u / scale, (v - shift) / scale, gen) * scale
    paint(img, coverage(sym, ppu), black)
    return diamond * us + tri * eu


def _yield(img: Tensor, u: Tensor, v: Tensor, ppu: Tensor, gen: torch.Generator) -> Tensor:
    n = u.shape[0]
    red, white = _jitter(gen, n, RED, 0.1), _jitter(gen, n, WHITE, 0.06)
    left, right, bottom, centre_y = (-1.0, -0.8), (1.0, -0.8), (0, 0.95), -0.217
    outer = coverage(sd_triangle(u, v, left, right, bottom), ppu)
    shrink = 0.62
    inner = [(x * shrink, centre_y + (y - centre_y) * shrink) for x, y in (left, right, bottom)]
    paint(img, outer, red)
    paint(img, coverage(sd_triangle(u, v, *inner), ppu), white)
    worded = _w(torch.rand(n, generator=gen) < 0.4)  # US "YIELD" lettering
    text = sd_glyphs(u, v, fixed_text(n, "YIELD"), [(x, -0.4) for x in (-0.32, -0.16, 0, 0.16, 0.32)], 0.1, 0.16, 0.04)
    paint(img, coverage(text, ppu) * worded, red)
    return outer


_DRAWERS = (_restriction, _speed_limit, _stop, _warning, _yield)


def _background(n: int, size: int, gen: torch.Generator) -> Tensor:
    """Mixtures of colour gradients, low-frequency coloured noise, stripes and fine grain.

    The smooth part is composed on a 16x16 grid and upsampled once (gradients and
    bilinear noise survive that exactly enough); only stripes and grain are full-size.
    """
    lo_res = 16
    t = (torch.arange(lo_res, dtype=torch.float32) + 0.5) / lo_res
    xs, ys = t.view(1, 1, lo_res), t.view(1, lo_res, 1)
    ang = (2 * math.pi * torch.rand(n, generator=gen)).view(-1, 1, 1)
    ramp = ((xs - 0.5) * torch.cos(ang) + (ys - 0.5) * torch.sin(ang) + 0.5).clamp(0, 1).unsqueeze(1)
    c1, c2 = torch.rand(n, 3, 1, 1, generator=gen), torch.rand(n, 3, 1, 1, generator=gen)
    grad = c1 + (c2 - c1) * ramp
    low = F.interpolate(torch.rand(n, 3, 4, 4, generator=gen), size=(lo_res, lo_res), mode="bicubic",
                        align_corners=False)
    mid = F.interpolate(torch.rand(n, 3, 9, 9, generator=gen), size=(lo_res, lo_res), mode="bilinear",
                        align_corners=False)
    w = torch.rand(n, 3, generator=gen) ** 2 + 1e-3
    w = (w / w.sum(1, keepdim=True)).view(n, 3, 1, 1, 1)
    bg = w[:, 0] * grad + w[:, 1] * low + w[:, 2] * mid
    desat = uniform(gen, n, 0, 0.7).view(-1, 1, 1, 1)  # many real backgrounds are dull
    bg = bg + desat * (bg.mean(1, keepdim=True) - bg)
    bg = F.interpolate(bg, size=(size, size), mode="bilinear", align_corners=False)
    full = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    fx, fy = full.view(1, 1, size), full.view(1, size, 1)
    freq = uniform(gen, n, 2, 10).view(-1, 1, 1)
    ang2 = (2 * math.pi * torch.rand(n, generator=gen)).view(-1, 1, 1)
    phase = (2 * math.pi * torch.rand(n, generator=gen)).view(-1, 1, 1)
    amp = 0.3 * w[:, 2].view(-1, 1, 1) * _w(torch.rand(n, generator=gen) < 0.5)  # striped texture on half
    grain = uniform(gen, n, 0, 0.12).view(-1, 1, 1)
    light = 1 + amp * torch.sin(2 * math.pi * freq * (fx * torch.cos(ang2) + fy * torch.sin(ang2)) + phase)
    light += grain * (torch.rand(n, size, size, generator=gen) - 0.5)
    return bg.mul_(light.unsqueeze(1)).clamp_(0, 1)


@datasets.register("signs")
class TrafficSigns(Configurable):
    """Procedurally generated traffic signs in the PRP paper's 5 classes (restriction, speed limit, stop, warning, yield).

    Options: ``scale`` (sign radius as a fraction of the image side, min/max),
    ``rotation`` (max degrees), ``distractors`` (probability of a distractor shape),
    ``noise`` (max pixel-noise std), ``octagons`` (share of restriction signs drawn as red
    octagons, 0.5), ``octagon_lettering`` (``"scrambled"``: STOP's letters in another order,
    version 3; ``"light"``: version 2's light glyphs). Train and test come from disjoint seed
    streams; classes are exactly balanced (up to N mod 5).
    """

    kind = "dataset"
    version = "3"  # 2: red restriction octagons with non-STOP lettering; 3: their lettering is STOP scrambled
    def __init__(self, scale: tuple[float, float] = (0.30, 0.46), rotation: float = 12.0, distractors: float = 0.4,
                 noise: float = 0.05, octagons: float = 0.5, octagon_lettering: str = "scrambled"):
        self.scale, self.rotation, self.distractors, self.noise = scale, rotation, distractors, noise
        self.octagons, self.octagon_lettering = octagons, octagon_lettering
        lo, hi = self.scale
        if not 0.05 <= lo <= hi <= 0.48:
            raise ValueError(f"signs: scale must be (min, max) with 0.05 <= min <= max <= 0.48, got {self.scale!r}")
        if not 0 <= self.rotation <= 30:
            raise ValueError(f"signs: rotation must be in [0, 30] degrees (triangles must keep their "
                             f"orientation: warning points up, yield down), got {self.rotation!r}")
        if not 0 <= self.distractors <= 1 or not 0 <= self.noise <= 0.5:
            raise ValueError("signs: distractors must be a probability and noise a std in [0, 0.5]")
        if not 0 <= self.octagons <= 1:
            raise ValueError(f"signs: octagons is the share of restriction signs drawn as red octagons and must be "
                             f"in [0, 1], got {self.octagons!r}")
        if self.octagon_lettering not in ("scrambled", "light"):
            raise ValueError(f"signs: octagon_lettering must be 'scrambled' (STOP's letters in another order, v3) or "
                             f"'light' (light glyphs, v2), got {self.octagon_lettering!r}")

    def class_names(self) -> list[str]:
        """The class names, without generating any image."""
        return list(CLASS_NAMES)

    def load(self, image_size: int, n_train: int, n_test: int, seed: int) -> CleanData:
        check_sizes(image_size, n_train, n_test, seed, min_size=16)
        train = self.generate(n_train, image_size, seed, "train")
        test = self.generate(n_test, image_size, seed, "test")
        return CleanData(train[0], train[1], test[0], test[1], list(CLASS_NAMES), train[2], test[2])

    def generate(self, n: int, size: int, seed: int, split: str = "train") -> tuple[Tensor, Tensor, Tensor]:
        """``n`` images ``[n, 3, size, size]``, labels and sign boxes, from seed stream ``(seed, split)``."""
        order = generator(seed, "signs", split, "labels")
        labels = torch.arange(n) % len(CLASS_NAMES)
        labels = labels[torch.randperm(n, generator=order)]
        images, boxes = [], []
        for i, start in enumerate(range(0, n, _CHUNK)):
            img, box = self._draw(labels[start:start + _CHUNK], size, generator(seed, "signs", split, i))
            images.append(img)
            boxes.append(box)
        return torch.cat(images), labels, torch.cat(boxes)

    def _draw(self, labels: Tensor, size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        n = labels.shape[0]
        img = _background(n, size, gen)
        lo, hi = self.scale
        r = uniform(gen, n, lo, hi) * size
        rx, ry = r * uniform(gen, n, 0.85, 1.05), r * uniform(gen, n, 0.9, 1.05)  # viewpoint squash
        angle = uniform(gen, n, -1, 1) * math.radians(self.rotation)
        reach = torch.maximum(rx, ry) * 1.02
        cx = reach + torch.rand(n, generator=gen) * (size - 2 * reach)
        cy = reach + torch.rand(n, generator=gen) * (size - 2 * reach)
        self._distractors(img, gen)
        # a grey pole behind half of the signs
        xs = torch.arange(size, dtype=torch.float32).view(1, 1, size) + 0.5
        ys = torch.arange(size, dtype=torch.float32).view(1, size, 1) + 0.5
        pole = ((xs - cx.view(-1, 1, 1)).abs() < 0.035 * size) & (ys > cy.view(-1, 1, 1))
        pole = pole & _w(torch.rand(n, generator=gen) < 0.5).bool()
        paint(img, pole.float(), uniform(gen, n, 0.3, 0.65).view(-1, 1).expand(n, 3))
        u, v = to_local(cx, cy, rx, ry, angle, size, size)
        ppu = torch.minimum(rx, ry)
        sign = torch.zeros(n, size, size, dtype=torch.bool)
        for c, draw in enumerate(_DRAWERS):
            idx = torch.nonzero(labels == c).flatten()
            if idx.numel() == 0:
                continue
            sub = img[idx]
            kw = ({"octagons": self.octagons, "octagon_lettering": self.octagon_lettering}
                  if draw is _restriction else {})
            outer = draw(sub, u[idx], v[idx], ppu[idx], gen, **kw)
            img[idx] = sub
            sign[idx] = outer >= 0.5
        # lighting: contrast, brightness, colour cast, sensor noise
        contrast = uniform(gen, n, 0.7, 1.15).view(-1, 1, 1, 1)
        bright = uniform(gen, n, 0.6, 1.2).view(-1, 1, 1, 1)
        cast = 1 + 0.08 * (2 * torch.rand(n, 3, 1, 1, generator=gen) - 1)
        img = ((img - 0.5) * contrast + 0.5) * bright * cast
        sigma = uniform(gen, n, 0, self.noise).view(-1, 1, 1, 1)
        img = img + sigma * torch.randn(img.shape, generator=gen)
        return img.clamp_(0, 1), boxes_from_masks(sign)

    def _distractors(self, img: Tensor, gen: torch.Generator) -> None:
        """Coloured discs and boxes behind the sign (some red or yellow, like sign paint)."""
        n, _, size, _ = img.shape
        present = _w(torch.rand(n, generator=gen) < self.distractors)
        cx, cy = torch.rand(n, generator=gen) * size, torch.rand(n, generator=gen) * size
        r = uniform(gen, n, 0.06, 0.2) * size
        u, v = to_local(cx, cy, r, r * uniform(gen, n, 0.5, 1.5), uniform(gen, n, 0, math.pi), size, size)
        box = _w(torch.rand(n, generator=gen) < 0.5)
        d = torch.where(box > 0, sd_box(u, v, 0, 0, 1, 1), sd_circle(u, v))
        palette = torch.tensor([RED, YELLOW, WHITE, BLACK, (0.1, 0.35, 0.8), (0.2, 0.55, 0.2)])
        colour = palette[torch.randint(len(palette), (n,), generator=gen)]
        colour = (colour + 0.1 * (2 * torch.rand(n, 3, generator=gen) - 1)).clamp(0, 1)
        paint(img, coverage(d, r) * present, colour)
