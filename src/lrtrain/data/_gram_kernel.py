"""The numba kernel of :mod:`lrtrain.data.fused`, imported only where numba is installed (the
``fast`` extra). Module-level functions, so that numba's on-disk cache keeps them compiled
between processes (``cache=True``)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

# fastmath limited to reassociation and contraction: the sums vectorise; NaN and inf keep
# their meaning (the range checks upstream rely on them)
FLAGS = {"reassoc", "contract"}


@numba.njit(fastmath=FLAGS, inline="always", cache=True)
def tile(buf: Any, jt: int, kt: int, m: int, acc: Any) -> None:
    a0, a1, a2 = buf[jt], buf[jt + 1], buf[jt + 2]
    b0, b1, b2 = buf[kt], buf[kt + 1], buf[kt + 2]
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = 0.0
    for i in range(m):
        u0, u1, u2, v0, v1, v2 = a0[i], a1[i], a2[i], b0[i], b1[i], b2[i]
        s00 += u0 * v0
        s01 += u0 * v1
        s02 += u0 * v2
        s10 += u1 * v0
        s11 += u1 * v1
        s12 += u1 * v2
        s20 += u2 * v0
        s21 += u2 * v1
        s22 += u2 * v2
    acc[jt, kt] += s00
    acc[jt, kt + 1] += s01
    acc[jt, kt + 2] += s02
    acc[jt + 1, kt] += s10
    acc[jt + 1, kt + 1] += s11
    acc[jt + 1, kt + 2] += s12
    acc[jt + 2, kt] += s20
    acc[jt + 2, kt + 1] += s21
    acc[jt + 2, kt + 2] += s22


@numba.njit(fastmath=FLAGS, inline="always", cache=True)
def tile_diagonal(buf: Any, jt: int, m: int, acc: Any) -> None:
    # a tile on the diagonal: its six products above it, not nine (d = 8: 45 products a
    # row, not 54; the products are half the pass's time on float32 rows)
    a0, a1, a2 = buf[jt], buf[jt + 1], buf[jt + 2]
    s00 = s01 = s02 = s11 = s12 = s22 = 0.0
    for i in range(m):
        u0, u1, u2 = a0[i], a1[i], a2[i]
        s00 += u0 * u0
        s01 += u0 * u1
        s02 += u0 * u2
        s11 += u1 * u1
        s12 += u1 * u2
        s22 += u2 * u2
    acc[jt, jt] += s00
    acc[jt, jt + 1] += s01
    acc[jt, jt + 2] += s02
    acc[jt + 1, jt + 1] += s11
    acc[jt + 1, jt + 2] += s12
    acc[jt + 2, jt + 2] += s22


@numba.njit(fastmath=FLAGS, cache=True)  # called, not inlined: inlined, its loop did not
def centre_four(  # vectorise (40 against 23 ms for 4M × 8 float32 rows on one thread)
    x: Any, x_bits: Any, magnitude: Any, shift: Any, w_ref: Any, use_ref: bool, j: int,
    lo: int, m: int, buf: Any, top: Any, sums: Any,
) -> None:  # fmt: skip
    # features j … j + 3 of rows lo … lo + m: each value's peak, centred into the buffer,
    # summed, and its reference prediction taken out of z = buf[d]. Four at a time, z is read
    # and written once per four features, not per feature: the pass over 4M × 8 float32 rows
    # went from 29 to 23 ms on one thread, 15.2 to 12.7 ms on two (float64: 21.4 to 17.9)
    z = buf[x.shape[0]]
    s0, s1, s2, s3 = shift[j], shift[j + 1], shift[j + 2], shift[j + 3]
    w0, w1, w2, w3 = w_ref[j], w_ref[j + 1], w_ref[j + 2], w_ref[j + 3]
    r0, r1 = x[j, lo : lo + m], x[j + 1, lo : lo + m]
    r2, r3 = x[j + 2, lo : lo + m], x[j + 3, lo : lo + m]
    b0, b1 = x_bits[j, lo : lo + m], x_bits[j + 1, lo : lo + m]
    b2, b3 = x_bits[j + 2, lo : lo + m], x_bits[j + 3, lo : lo + m]
    c0, c1, c2, c3 = buf[j], buf[j + 1], buf[j + 2], buf[j + 3]
    t0, t1, t2, t3 = top[j], top[j + 1], top[j + 2], top[j + 3]
    a0 = a1 = a2 = a3 = 0.0
    for i in range(m):
        t0 = max(t0, b0[i] & magnitude)
        t1 = max(t1, b1[i] & magnitude)
        t2 = max(t2, b2[i] & magnitude)
        t3 = max(t3, b3[i] & magnitude)
        v0, v1, v2, v3 = r0[i] - s0, r1[i] - s1, r2[i] - s2, r3[i] - s3
        c0[i], c1[i], c2[i], c3[i] = v0, v1, v2, v3
        a0 += v0
        a1 += v1
        a2 += v2
        a3 += v3
        if use_ref:  # (not 0 · v: an infinite x would make z NaN)
            z[i] -= (w0 * v0 + w1 * v1) + (w2 * v2 + w3 * v3)
    top[j], top[j + 1], top[j + 2], top[j + 3] = t0, t1, t2, t3
    sums[j] += a0
    sums[j + 1] += a1
    sums[j + 2] += a2
    sums[j + 3] += a3


@numba.njit(parallel=True, fastmath=FLAGS, cache=True)
def gram(
    x: Any, y: Any, x_bits: Any, y_bits: Any, magnitude: Any, shift: Any, y_center: float,
    w_ref: Any, use_ref: bool, block: int, threads: int,
) -> Any:  # fmt: skip
    # x [d, n], x_bits the same memory as unsigned integers of its width, magnitude the mask
    # that drops the sign bit; the result ([P + 1, P], [d + 1]): the upper triangle of Σ vvᵀ
    # for v = [x̃, z] padded to P columns (a multiple of the tile), the sums Σ v in row P; and
    # the bits of max |x_j| and max |y|. Without the sign, a float's bits are ordered as its
    # value, inf above every finite value and NaN above inf; an integer maximum vectorises
    # where a NaN-aware float one does not (1.4 against 5.9 ms for 4M values alone; in the
    # loop that reads each value anyway, ~2-3 ms of a 4M-row pass)
    d, n = x.shape
    size = ((d + 1 + 2) // 3) * 3
    blocks = (n + block - 1) // block
    per = (blocks + threads - 1) // threads
    parts = np.zeros((threads, size + 1, size))
    tops = np.zeros((threads, d + 1), dtype=x_bits.dtype)
    for t in numba.prange(threads):
        buf = np.zeros((size, block))  # the padding columns stay zero
        acc = parts[t]
        for b in range(t * per, min(blocks, (t + 1) * per)):
            lo = b * block
            m = min(block, n - lo)
            z = buf[d]
            rows_y = y[lo : lo + m]  # slices, not lo + i: the loops then vectorise
            bits = y_bits[lo : lo + m]
            top = tops[t, d]
            for i in range(m):
                top = max(top, bits[i] & magnitude)
                z[i] = rows_y[i] - y_center
            tops[t, d] = top
            grouped = (d // 4) * 4
            for j in range(0, grouped, 4):
                centre_four(x, x_bits, magnitude, shift, w_ref, use_ref, j, lo, m, buf, tops[t],
                            acc[size])  # fmt: skip
            for j in range(grouped, d):
                s = shift[j]
                rows_x = x[j, lo : lo + m]
                bits = x_bits[j, lo : lo + m]
                top = tops[t, j]
                column = buf[j]
                total = 0.0
                if use_ref:
                    w = w_ref[j]
                    for i in range(m):  # each value once: its peak, centred, summed, into z
                        top = max(top, bits[i] & magnitude)
                        v = rows_x[i] - s
                        column[i] = v
                        total += v
                        z[i] -= w * v
                else:  # (not 0 · v: an infinite x would make z NaN)
                    for i in range(m):
                        top = max(top, bits[i] & magnitude)
                        v = rows_x[i] - s
                        column[i] = v
                        total += v
                acc[size, j] += total
                tops[t, j] = top
            total = 0.0
            for i in range(m):
                total += z[i]
            acc[size, d] += total
            for jt in range(0, size, 3):
                tile_diagonal(buf, jt, m, acc)
                for kt in range(jt + 3, size, 3):
                    tile(buf, jt, kt, m, acc)
    out = np.zeros((size + 1, size))
    top = tops[0].copy()
    for t in range(threads):
        out += parts[t]
        for j in range(d + 1):
            top[j] = max(top[j], tops[t, j])
    return out, top
