"""Intel AMX building blocks and the tiling the AMX convolutions share: int8 (u8 x s8 -> s32) in
:mod:`tvmq.templates.amx_int8`, bf16 (-> float32) in :mod:`tvmq.templates.amx_bf16`.

``tdpbusd C, A, B`` adds A[M x 64 u8] . B[64 x 16 s8] into C[M x 16 s32] (M <= 16 rows), B in VNNI
packing [16 rows = K/4][16 columns][4 bytes]; ``tdpbf16ps`` likewise with 32 bf16 per row, pairs.
The building blocks return TIR calls of the LLVM intrinsics (tile numbers are int8 immediates:
loops over tiles are ``T.unroll`` loops). The tile configuration is per thread, so every parallel
chunk of tasks runs its own ``ldtilecfg``. The process must hold AMX permission (:mod:`tvmq.run.amx_permission`).

The convolutions' layouts: data [N][C/B][H][W][B] (a tile row is one output pixel's K input channels
at one kernel tap, K = 64 int8 or 32 bf16; where K does not divide C, B-channel blocks repacked into
zero-padded K-channel rows), weight [O/16][CP/K][Kh][Kw][16][16][K/16] over C rounded up to CP = K k
channels (layouts ``amx`` and ``amx_bf16``: one B tile is 1 KiB in a row; a strided tile load costs
twice a contiguous one here), output [N][O/16][Ho][Wo][16]. A task computes ``m_tiles`` x ``n_tiles``
accumulator tiles (pixels x 16 output channels), started from a row per output channel (a tile load
with row stride 0), over CP/K x Kh x Kw tile products (one K-channel block at a time, the tiles parked
in the task's block between blocks); the kernel's epilogue then stores the block while it is in
cache. Tasks run output-channel groups fastest (so consecutive tasks share their input rows), in
chunks of one ``ldtilecfg`` each.
"""

from __future__ import annotations

from types import SimpleNamespace

from ..errors import TvmqError


FEATURES = ("amx-tile", "amx-int8")  # LLVM feature names a target needs for these kernels
REVISION = 2  # in the task key of spaces with AMX values: bump when the generated kernels change speed
L2_WEIGHTS = 1 << 20  # bytes of weights a chunk of tasks re-reads from L2
MAX_TILES = 8
K_BYTES = 64  # bytes per tile row: 64 u8/s8 (A, B) or 16 int32 (C)
MIN_C_IN = 32  # below, zero padding to a 64-byte tile row wastes more than half of every tile product


# -- building blocks: TIR calls of the AMX intrinsics -------------------------------------------
def _call(name, *args):
    from tvm import tirx  # lazy: heavy (TVM)

    return tirx.call_llvm_intrin("void", name, *args)


def _tile(t):
    from tvm import tirx  # lazy: heavy (TVM)

    return tirx.Cast("int8", t)


def ldtilecfg(ptr):
    """Load the 64-byte tile configuration at ``ptr`` (per thread)."""
    return _call("llvm.x86.ldtilecfg", ptr)


def tilezero(t):
    return _call("llvm.x86.tilezero", _tile(t))


def tileload(t, ptr, stride_bytes: int):
    """Load tile ``t`` from ``ptr``, its rows ``stride_bytes`` apart."""
    from tvm import tirx  # lazy: heavy (TVM)

    return _call("llvm.x86.tileloadd64", _tile(t), ptr, tirx.const(stride_bytes, "int64"))


def tdpbusd(c, a, b):
    """Tile ``c`` += u8 tile ``a`` . s8 VNNI tile ``b`` (int32 accumulation)."""
    return _call("llvm.x86.tdpbusd", _tile(c), _tile(a), _tile(b))


def tdpbf16ps(c, a, b):
    """Tile ``c`` (float32) += bf16 tile ``a`` . bf16 pair-packed tile ``b``."""
    return _call("llvm.x86.tdpbf16ps", _tile(c), _tile(a), _tile(b))


DOT = {"int8": (tdpbusd, "int32", 64), "bf16": (tdpbf16ps, "float32", 32)}  # op, accumulator, K per tile


def tilestore(t, ptr, stride_bytes: int):
    from tvm import tirx  # lazy: heavy (TVM)

    return _call("llvm.x86.tilestored64", _tile(t), ptr, tirx.const(stride_bytes, "int64"))


def tilerelease():
    return _call("llvm.x86.tilerelease")


def tile_config(rows: list[int]) -> list[int]:
    """The 64-byte tile configuration as 8 little-endian uint64 words, for tiles 0..len(rows)-1 of
    ``rows[t]`` x 64 bytes each (palette 1)."""
    if len(rows) > MAX_TILES or any(not 1 <= r <= 16 for r in rows):
        raise TvmqError(f"AMX has {MAX_TILES} tiles of at most 16 rows, asked for rows {rows}")
    cfg = [0] * 64
    cfg[0] = 1
    for t, r in enumerate(rows):
        cfg[16 + 2 * t] = K_BYTES  # colsb, uint16 little endian (64 < 256: the high byte stays 0)
        cfg[48 + t] = r
    return [int.from_bytes(bytes(cfg[8 * i: 8 * i + 8]), "little") for i in range(8)]


def _config_macro():
    """A TIR macro that stores the configuration words on the stack and loads them (``ldtilecfg``)."""
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    @T.macro
    def load_config(words):
        cfg = T.alloc_buffer((8,), "uint64", scope="local")
        cfg[0] = T.uint64(words[0])
        cfg[1] = T.uint64(0)
        cfg[2] = T.uint64(words[2])
        cfg[3] = T.uint64(words[3])
        cfg[4] = T.uint64(0)
        cfg[5] = T.uint64(0)
        cfg[6] = T.uint64(words[6])
        cfg[7] = T.uint64(words[7])
        T.evaluate(ldtilecfg(T.address_of(cfg[0])))

    return load_config


# -- the convolution ----------------------------------------------------------------------------
def check(wl, rows: int, m_tiles: int, n_tiles: int, flat: bool = False, kind: str = "int8") -> str | None:
    """Why the AMX kernel cannot compute ``wl`` with this tiling, or None."""
    if wl.c_in < MIN_C_IN:
        return f"AMX needs c_in >= {MIN_C_IN} (channels are zero-padded to a tile row), got {wl.c_in}"
    if wl.c_out % (16 * n_tiles):
        return f"AMX with n_tiles={n_tiles} needs c_out divisible by {16 * n_tiles}, got {wl.c_out}"
    if not 1 <= rows <= 16:
        return f"a tile has 1 to 16 rows, got rows={rows}"
    if flat and tuple(wl.stride) != (1, 1):
        return f"the flat AMX kernel needs stride 1, got {tuple(wl.stride)}"
    if not flat and wl.out_w % (rows * m_tiles):
        return f"rows={rows} x m_tiles={m_tiles} must divide out_w={wl.out_w}"
    if m_tiles * n_tiles + m_tiles + 1 > MAX_TILES:
        return f"m_tiles={m_tiles}, n_tiles={n_tiles} needs more than {MAX_TILES} tiles"
    return None


def padded_c(c_in: int, kind: str = "int8") -> int:
    """``c_in`` rounded up to whole tile rows (K = 64 int8 or 32 bf16 channels)."""
    k = DOT[kind][2]
    return -(-c_in // k) * k


def data_block(c_in: int, kind: str = "int8") -> int:
    """The channel block of the kernel's input: K when it divides ``c_in``, else the largest power of two
    that does (the kernel repacks it into K-channel tile rows, the rest zero)."""
    k = DOT[kind][2]
    return k if c_in % k == 0 else max(b for b in (32, 16, 8, 4, 2, 1) if b < k and c_in % b == 0)


def shapes(wl, kind: str = "int8"):
    """(data, weight, output) shapes: data [N][C/B][H][W][B] (B = :func:`data_block`), weight
    [O/16][CP/K][Kh][Kw][16][16][G] over CP = :func:`padded_c` channels (zero past C), G = K/16 per
    4-byte group (one B tile contiguous), output [N][O/16][Ho][Wo][16]; K elements per tile row (64
    int8, 32 bf16)."""
    n, c, o, k = wl.n, wl.c_in, wl.c_out, DOT[kind][2]
    g, b = k // 16, data_block(c, kind)
    return ((n, c // b, wl.h, wl.w, b), (o // 16, padded_c(c, kind) // k, wl.kh, wl.kw, 16, 16, g),
            (n, o // 16, wl.out_h, wl.out_w, 16))


def chunks(tasks: int, at_least: int = 64) -> int:
    """How many chunks (parallel iterations, one ``ldtilecfg`` each) ``tasks`` run in: the smallest
    divisor of ``tasks`` that is at least ``at_least`` (all of them when there are fewer)."""
    return next((c for c in range(at_least, tasks) if tasks % c == 0), tasks)


def kernel_parts(wl, rows: int, m_tiles: int, n_tiles: int, flat: bool, kind: str):
    """What the int8 and bf16 kernels share: their shapes, ``fill_pad(data, pad, value)`` (the padded
    input, pixels flat) and ``run_tasks(pad, weight, init, store, bufs)``, as TIR macros. ``run_tasks``
    runs every task: its tile products into an ``acc`` block [n_tiles][pixels][16], the accumulators
    started from ``init[o]`` (one value per output channel), then for each valid pixel
    ``store(acc, j, x, n, ob, y, xo, bufs)``: the block's tile column ``j`` and pixel ``x`` are output
    channel block ``ob``, pixel (``y``, ``xo``) of image ``n``; ``bufs`` carries the epilogue's buffers.

    Output pixels are numbered on a grid ``q = y * GW + x``; a task computes ``m_tiles`` blocks of
    ``rows`` consecutive ``q``. By default ``GW = out_w`` and blocks stay within an output row. With
    ``flat`` (stride 1) ``GW`` is the padded input width: then the input pixel of ``q`` at tap (r, s)
    is ``q + r * WP + s``, so a block may cross rows and every tile has ``rows`` rows (16); the
    ``WP - out_w`` grid columns past the output are computed and dropped.
    """

    from tvm.script import tirx as T  # lazy: heavy (TVM)

    why = check(wl, rows, m_tiles, n_tiles, flat, kind)
    if why:
        raise TvmqError(why)
    dot = DOT[kind][0]
    dshape, wshape, oshape = shapes(wl, kind)
    N, _, H, W, B = dshape
    K = DOT[kind][2]
    CB, C = padded_c(wl.c_in, kind) // K, wl.c_in
    KH, KW, (SH, SW), (PT, PL) = wl.kh, wl.kw, wl.stride, wl.pad[:2]
    HP, WP = wl.h + wl.pad[0] + wl.pad[2], wl.w + wl.pad[1] + wl.pad[3]
    MT, NT, NC = m_tiles, n_tiles, m_tiles * n_tiles
    NB = min(NT, MAX_TILES - NC - MT)  # B tiles, reused in turn when fewer than n_tiles
    A0, B0 = NC, NC + m_tiles  # tiles: accumulators, then A tiles, then B tiles
    CFG = tile_config([rows] * (NC + MT) + [16] * NB)
    load_config = _config_macro()
    GW, BLK = (WP if flat else wl.out_w), rows * MT
    QT = wl.out_h * GW
    QB = -(-QT // BLK)
    pad_shape = (N, CB, HP * WP + QB * BLK - QT + KW, K)  # slack: the flat kernel's last block reads past

    if B == K:
        @T.macro
        def fill_pad(data, pad, value):
            for nc in T.parallel(N * CB):
                for hp, wp in T.grid(HP, WP):
                    for ci in T.vectorized(K):
                        pad[nc // CB, nc % CB, hp * WP + wp, ci] = T.if_then_else(
                            hp >= PT and hp < PT + H and wp >= PL and wp < PL + W,
                            data[nc // CB, nc % CB, hp - PT, wp - PL, ci], value)
    else:  # repack B-channel blocks into K-channel tile rows; channels past C meet zero weights
        @T.macro
        def fill_pad(data, pad, value):
            for nc in T.parallel(N * CB):
                for hp, wp in T.grid(HP, WP):
                    for ci in range(K):
                        pad[nc // CB, nc % CB, hp * WP + wp, ci] = T.if_then_else(
                            hp >= PT and hp < PT + H and wp >= PL and wp < PL + W and nc % CB * K + ci < C,
                            data[nc // CB, (nc % CB * K + ci) // B, hp - PT, wp - PL, (nc % CB * K + ci) % B],
                            value)

    @T.macro
    def task_tiles(pad, weight, acc, n, og, qb, init):
        # One 64-channel block at a time, the accumulators stored to ``acc`` and loaded back between
        # blocks: a block's A rows and B tiles (under 32 KiB for 2 B tiles at 3x3) stay in L1 across
        # its Kh x Kw taps, where the whole reduction's would not (1.2-1.6x faster on 3x3 layers here).
        for cb in range(CB):
            for i in T.unroll(MT):
                for j in T.unroll(NT):
                    if cb > 0:
                        T.evaluate(tileload(i * NT + j, T.address_of(acc[j, i * rows, 0]), 64))
                    else:  # every row the same 16 values: row stride 0
                        T.evaluate(tileload(i * NT + j, T.address_of(init[(og * NT + j) * 16]), 0))
            for r, s in T.grid(KH, KW):
                for i in T.unroll(MT):
                    T.evaluate(tileload(A0 + i, T.address_of(pad[n, cb, ((qb * BLK + i * rows) // GW * SH + r) * WP
                                                                 + (qb * BLK + i * rows) % GW * SW + s, 0]), SW * 64))
                for j in T.unroll(NT):
                    T.evaluate(tileload(B0 + j % NB, T.address_of(weight[og * NT + j, cb, r, s, 0, 0, 0]), 64))
                    for i in T.unroll(MT):
                        T.evaluate(dot(i * NT + j, A0 + i, B0 + j % NB))
            for i in T.unroll(MT):
                for j in T.unroll(NT):
                    T.evaluate(tilestore(i * NT + j, T.address_of(acc[j, i * rows, 0]), 64))

    # Task order: output-channel groups fastest, so consecutive tasks share their input rows (in L1),
    # within chunks of OGC groups whose weights fit in half of L2 (2 MiB on every AMX CPU so far): then
    # the tasks over all pixel blocks of a chunk re-read those weights from L2, not from memory.
    OG = oshape[1] // NT
    OGC = max([d for d in range(1, OG + 1) if OG % d == 0 and d * NT * 16 * CB * K_BYTES * KH * KW <= L2_WEIGHTS]
              or [1])
    TOT = N * OG * QB
    NCH, ACC, WO = chunks(TOT), DOT[kind][1], wl.out_w
    TPC = TOT // NCH

    def n_of(t):
        return t // (OG * QB)

    def og_of(t):
        return t // (OGC * QB) % (OG // OGC) * OGC + t % OGC

    def qb_of(t):
        return t // OGC % QB

    @T.macro
    def run_tasks(pad, weight, init, store, bufs):
        for c in T.parallel(NCH):
            load_config(CFG)
            for task in T.serial(c * TPC, c * TPC + TPC):
                acc = T.alloc_buffer((NT, BLK, 16), ACC, scope="local")  # this task's block, in cache
                task_tiles(pad, weight, acc, n_of(task), og_of(task), qb_of(task), init)
                for j, x in T.grid(NT, BLK):  # the valid pixels (no let bindings: they break vectorizing)
                    if (qb_of(task) * BLK + x) % GW < WO and qb_of(task) * BLK + x < QT:
                        store(acc, j, x, n_of(task), og_of(task) * NT + j, (qb_of(task) * BLK + x) // GW,
                              (qb_of(task) * BLK + x) % GW, bufs)
            T.evaluate(tilerelease())

    return SimpleNamespace(dshape=dshape, wshape=wshape, oshape=oshape, pad_shape=pad_shape, fill_pad=fill_pad,
                           run_tasks=run_tasks)


def peak_func(iters: int, tasks: int, kind: str = "int8"):
    """``main(src, acc)``: per parallel task, ``iters`` rounds of ``tdpbusd`` (int8) or ``tdpbf16ps``
    (bf16) on 4 accumulator tiles (2 A x 2 B tiles loaded once from ``src[task]``), stored to
    ``acc[task]``: ``tasks * iters * 4 * 16*16*K * 2`` ops (K = 64 int8 or 32 bf16 per tile row).
    With every source element 1 (bytes 0x01, or bf16 0x3F80), each accumulator is ``iters * K``."""
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    if kind not in DOT:
        raise TvmqError(f"unknown AMX peak kind {kind!r}; valid are {sorted(DOT)}")
    dot, acc_dtype, _ = DOT[kind]
    CFG = tile_config([16] * 8)
    load_config = _config_macro()

    @T.prim_func(s_tir=True)
    def main(src: T.Buffer((tasks, 4, 16, 16), "int32"), acc: T.Buffer((tasks, 4, 16, 16), acc_dtype)):
        T.func_attr({"global_symbol": "main", "tir.noalias": True})
        for task in T.parallel(tasks):
            load_config(CFG)
            for t in T.unroll(4):
                T.evaluate(tilezero(t))
                T.evaluate(tileload(4 + t, T.address_of(src[task, t, 0, 0]), 64))
            for _ in range(iters):
                for i in T.unroll(2):
                    for j in T.unroll(2):
                        T.evaluate(dot(i * 2 + j, 4 + i, 6 + j))
            for t in T.unroll(4):
                T.evaluate(tilestore(t, T.address_of(acc[task, t, 0, 0]), 64))
            T.evaluate(tilerelease())

    return main
