"""The arithmetic of our CUDA kernels, emulated in float32 numpy on any machine (no GPU).

``cuda_fake`` checks how the backend CALLS each kernel and applies the kernel's contract; these
tests check what the kernels COMPUTE: each emulation below does, in float32, what one kernel does
in the order it does it (lane-strided partial sums, the 5-step warp butterfly, Kahan compensation,
block partials, GEMM panels and tile edges, fused multiply-adds), and is compared with float64 at
the tolerance its GPU test in ``test_cuda_gpu.py`` uses. Index arithmetic (which thread touches
which element) is checked for exact coverage. Each emulation names its kernel; when a kernel
changes, its emulation changes with it.

``exp`` and ``log`` come from numpy (correctly rounded or within an ulp); CUDA's ``expf`` and
``logf`` are within 2 ulps, which the margins here allow for.
"""
import numpy as np
import pytest

from nnengine.kernels.cuda import launch, optim

F32 = np.float32
WARP = launch.WARP_SIZE


def fma(a, b, c):
    """a * b + c rounded once to float32, as the GPU's fused multiply-add (NVRTC contracts by default)."""
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(F32)


def lane_columns(x, fill):
    """(rows, k, 32): element [r, k, l] is x[r, l + 32 k], the k-th value lane l of the row's warp reads."""
    rows, cols = x.shape
    k = max(-(-cols // WARP), 1)
    padded = np.full((rows, k * WARP), fill, x.dtype)
    padded[:, :cols] = x
    return padded.reshape(rows, k, WARP)


def butterfly(values, op):
    """warp_sum / warp_max of common.cuh: 5 xor-shuffle steps over the last axis (32 lanes)."""
    lane = np.arange(WARP)
    for offset in (16, 8, 4, 2, 1):
        values = op(values, values[..., lane ^ offset]).astype(values.dtype)
    return values[..., 0]


def lane_sums(lanes):
    """Each lane's running float32 sum over its k values, in order (the loop of a row kernel)."""
    total = np.zeros(lanes.shape[0::2], F32)
    for k in range(lanes.shape[1]):
        total = (total + lanes[:, k, :]).astype(F32)
    return total


# -- nn.cu: softmax_rows and softmax cross-entropy ----------------------------------------------------
def row_shifted_log_sum(z):
    """row_shifted_log_sum of nn.cu: m = max, s = sum exp(z - m) (lane sums, then the butterfly), log s."""
    m = butterfly(lane_columns(z, -np.inf).max(axis=1), np.maximum)
    shifted = np.exp((z - m[:, None]).astype(F32)).astype(F32)
    s = butterfly(lane_sums(lane_columns(shifted, 0.0)), np.add)
    return m, s, np.log(s).astype(F32)


def softmax_rows(z):
    m, s, _ = row_shifted_log_sum(z)
    return (np.exp((z - m[:, None]).astype(F32)) / s[:, None]).astype(F32)


def softmax_xent_index(z, labels, folded_shift=False):
    """softmax_xent_index of nn.cu; ``folded_shift`` computes it the old way, through lse = m + log(s)."""
    m, _, log_s = row_shifted_log_sum(z)
    rows = np.arange(len(labels))
    one_hot = np.zeros_like(z)
    one_hot[rows, labels] = 1
    if folded_shift:
        lse = (m + log_s).astype(F32)
        loss = (lse - z[rows, labels]).astype(F32)
        p = np.exp((z - lse[:, None]).astype(F32)).astype(F32)
    else:
        loss = (log_s - (z[rows, labels] - m).astype(F32)).astype(F32)
        p = np.exp(((z - m[:, None]).astype(F32) - log_s[:, None]).astype(F32)).astype(F32)
    return loss, (p - one_hot).astype(F32)


def softmax_xent_dense(z, t):
    m, _, log_s = row_shifted_log_sum(z)
    per_element = (t * (log_s[:, None] - (z - m[:, None]).astype(F32)).astype(F32)).astype(F32)
    loss = butterfly(lane_sums(lane_columns(per_element, 0.0)), np.add)
    t_sum = butterfly(lane_sums(lane_columns(t, 0.0)), np.add)
    p = np.exp(((z - m[:, None]).astype(F32) - log_s[:, None]).astype(F32)).astype(F32)
    return loss, fma(p, t_sum[:, None], -t)


def reference_xent(z, t):
    """float64 loss and gradient for dense targets t."""
    z = z.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(t * log_p).sum(axis=1), np.exp(log_p) * t.sum(axis=1, keepdims=True) - t


GPU_TEST_SHAPES = [(1, 5000), (5000, 10), (333, 1025)]     # test_cuda_softmax_and_cross_entropy_on_wide_and_tall_inputs


def logits_of(rows, cols):
    rng = np.random.default_rng(2)
    return (rng.standard_normal((rows, cols)) * 30).astype(F32), rng.integers(0, cols, rows)


@pytest.mark.parametrize("rows, cols", GPU_TEST_SHAPES)
def test_softmax_cross_entropy_keeps_float32_precision(rows, cols):
    z, labels = logits_of(rows, cols)
    loss, grad = softmax_xent_index(z, labels)
    expected_loss, expected_grad = reference_xent(z, np.eye(cols)[labels])
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5, atol=1e-4)       # the GPU test's tolerances
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)
    z64 = z.astype(np.float64)
    e = np.exp(z64 - z64.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax_rows(z), e / e.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-7)


def test_the_old_folded_shift_loses_precision_the_gpu_test_would_catch():
    """Issue 13, item 1: lse = m + log(s) rounded to float32 puts up to half an ulp of |m| into every p."""
    worst, failing = 0.0, 0
    for rows, cols in GPU_TEST_SHAPES:
        z, labels = logits_of(rows, cols)
        _, grad = softmax_xent_index(z, labels, folded_shift=True)
        error = np.abs(grad - reference_xent(z, np.eye(cols)[labels])[1])
        worst, failing = max(worst, error.max()), failing + int((error > 1e-6).sum())
    assert worst > 3e-6 and failing > 100        # the GPU test's atol is 1e-6


@pytest.mark.parametrize("rows, cols", [(7, 3), (64, 10), (5, 300)])
def test_softmax_cross_entropy_with_soft_targets(rows, cols):
    rng = np.random.default_rng(rows)
    z = (rng.standard_normal((rows, cols)) * 10).astype(F32)
    t = rng.uniform(0, 1, (rows, cols)).astype(F32)
    loss, grad = softmax_xent_dense(z, t)
    expected_loss, expected_grad = reference_xent(z, t.astype(np.float64))
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-6 * cols ** 0.5)


# -- reduce.cu ---------------------------------------------------------------------------------------
def kahan_running_sums(columns, compensated=True):
    """Accumulator of reduce.cu over axis 0 of ``columns`` (one running sum per remaining index)."""
    total, lost = np.zeros(columns.shape[1:], F32), np.zeros(columns.shape[1:], F32)
    for x in columns:
        if not compensated:
            total = (total + x).astype(F32)
            continue
        y = (x - lost).astype(F32)
        t = (total + y).astype(F32)
        lost = np.where(np.isfinite(t), ((t - total).astype(F32) - y).astype(F32), F32(0))
        total = t
    return total


def reduce_middle_sum(x3, chunk, compensated=True):
    """reduce_middle of reduce.cu for op = sum: (outer, reduced, inner) -> (outer, chunks, inner)."""
    outer, reduced, inner = x3.shape
    chunks = -(-reduced // chunk)
    out = np.empty((outer, chunks, inner), F32)
    for c in range(chunks):
        part = x3[:, c * chunk:(c + 1) * chunk]
        warps = [kahan_running_sums(np.moveaxis(part[:, w::launch.WARPS_PER_BLOCK], 1, 0), compensated)
                 for w in range(launch.WARPS_PER_BLOCK)]
        combined = warps[0]
        for w in warps[1:]:                   # threadIdx.y == 0 adds the others in order
            combined = (combined + w).astype(F32)
        out[:, c] = combined
    return out


def backend_middle_sum(x3, compensated=True):
    """reduce.reduce3 for op = sum: the chunked first pass, then the chunks' results the same way."""
    outer, reduced, inner = x3.shape
    chunk = launch.middle_chunk(outer, reduced, inner)
    out = reduce_middle_sum(x3, chunk, compensated)
    return backend_middle_sum(out, compensated) if out.shape[1] > 1 else out[:, 0]


def reduce_rows_sum(x2, threads):
    """reduce_rows_warp (threads = 32) / reduce_rows_block (threads = 256) for op = sum."""
    rows, cols = x2.shape
    k = -(-cols // threads)
    padded = np.zeros((rows, k * threads), F32)
    padded[:, :cols] = x2
    per_thread = kahan_running_sums(np.moveaxis(padded.reshape(rows, k, threads), 1, 0))
    per_warp = butterfly(per_thread.reshape(rows, threads // WARP, WARP), np.add)
    if threads == WARP:
        return per_warp[:, 0]
    lanes = np.zeros((rows, WARP), F32)       # warp 0 combines the warps' results, other lanes hold 0
    lanes[:, :per_warp.shape[1]] = per_warp
    return butterfly(lanes, np.add)


@pytest.mark.parametrize("shape", [(100_000, 10), (2, 5000, 3), (64, 7, 129)])
def test_middle_axis_sums_stay_within_a_few_ulps(shape):
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(F32)
    x3 = x.reshape(1, shape[0], -1) if len(shape) == 2 else x
    expected = x3.astype(np.float64).sum(axis=1)
    got = backend_middle_sum(x3)
    tolerance = 1e-6 * np.sqrt(x.size)                     # the GPU test's atol
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=tolerance)
    # Kahan and chunks leave a wide margin: the error is a few ulps of the largest partial sum
    assert np.abs(got - expected).max() < tolerance / 20


def test_without_compensation_the_long_serial_sum_would_use_up_the_tolerance():
    x = np.random.default_rng(1).uniform(-1, 1, (100_000, 10)).astype(F32)
    expected = x.astype(np.float64).sum(axis=0)
    plain_one_block = reduce_middle_sum(x.reshape(1, 100_000, 10), chunk=100_000, compensated=False)[0, 0]
    compensated = backend_middle_sum(x.reshape(1, 100_000, 10))[0]
    assert np.abs(compensated - expected).max() * 10 < np.abs(plain_one_block - expected).max()


@pytest.mark.parametrize("shape, threads", [((4096, 300), 32), ((4, 3000), 256), ((3, 100_003), 256)])
def test_row_sums_of_warps_and_blocks(shape, threads):
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(F32)
    got = reduce_rows_sum(x, threads)
    np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-6 * np.sqrt(x.size))


# -- nn.cu: the dense epilogue's backward --------------------------------------------------------------
def activation_grad_bias_relu(out, grad_out):
    """activation_grad_bias of nn.cu (relu), then the backend's sum over block rows (reduce_middle)."""
    rows, cols = out.shape
    (_, block_rows), _ = launch.columns(rows, cols)
    dz = np.where(out > 0, grad_out, F32(0)).astype(F32)
    partial_b = np.empty((block_rows, cols), F32)
    row_of = np.arange(rows)
    for y in range(block_rows):
        warps = []
        for w in range(launch.WARPS_PER_BLOCK):   # thread (w, col): rows y*8 + w, then every 8 * block_rows
            mine = dz[(row_of // launch.WARPS_PER_BLOCK) % block_rows == y][w::launch.WARPS_PER_BLOCK]
            running = np.zeros(cols, F32)
            for row in mine:
                running = (running + row).astype(F32)
            warps.append(running)
        total = np.zeros(cols, F32)
        for running in warps:
            total = (total + running).astype(F32)
        partial_b[y] = total
    grad_b = partial_b[0] if block_rows == 1 else backend_middle_sum(partial_b.reshape(1, block_rows, cols))[0]
    return dz, grad_b


@pytest.mark.parametrize("rows, cols", [(32, 64), (2048, 517), (300, 5)])
def test_bias_gradient_from_block_partials(rows, cols):
    rng = np.random.default_rng(rows)
    out = np.maximum(rng.standard_normal((rows, cols)), 0).astype(F32)
    grad_out = rng.standard_normal((rows, cols)).astype(F32)
    dz, grad_b = activation_grad_bias_relu(out, grad_out)
    expected = np.where(out > 0, grad_out.astype(np.float64), 0).sum(axis=0)
    np.testing.assert_allclose(grad_b, expected, rtol=1e-4, atol=1e-5 * np.sqrt(rows))


def test_the_epilogue_grids_touch_every_element_once():
    for rows, cols in [(1, 1), (33, 65), (2048, 517), (300_000, 3)]:
        (gx, gy), (bx, by) = launch.matrix(rows, cols)          # bias_activation
        col = (np.arange(gx)[:, None] * bx + np.arange(bx)).reshape(-1)
        assert set(col[col < cols]) == set(range(cols))
        starts = (np.arange(gy)[:, None] * by + np.arange(by)).reshape(-1)
        rows_seen = np.concatenate([np.arange(start, rows, gy * by) for start in starts])
        assert len(rows_seen) == rows and set(rows_seen) == set(range(rows))
        (cx, cy), (tx, ty) = launch.columns(rows, cols)         # activation_grad_bias
        starts = (np.arange(cy)[:, None] * ty + np.arange(ty)).reshape(-1)
        rows_seen = np.concatenate([np.arange(start, rows, cy * ty) for start in starts])
        assert len(rows_seen) == rows and set(rows_seen) == set(range(rows)) and cx * tx >= cols


# -- gemm.cu -----------------------------------------------------------------------------------------
TILE, SLICE, SIDE = launch.GEMM_TILE, 8, launch.GEMM_THREADS_SIDE


def panel_mapping(transposed):
    """gemm_tiled's panel copy: which (i, k) of the 128 x 8 panel of op(A) each (thread, e) loads."""
    e = np.arange(TILE * SLICE)
    i = e % TILE if transposed else e // SLICE
    k = e // TILE if transposed else e % SLICE
    return i, k


def gemm_tiled(a, b, m, n, kdim):
    """gemm_tiled of gemm.cu for op(A) (m, k) and op(B) (k, n) given as plain matrices: per tile, per
    slice of 8 k, per k, one FMA into each thread's accumulator; zeros loaded outside the matrices."""
    c = np.zeros((m, n), F32)
    col_tiles = -(-n // TILE)
    for block in range(launch.gemm(m, n, 1)[0][0]):
        row0, col0 = block // col_tiles * TILE, block % col_tiles * TILE
        a_tile = np.zeros((TILE, -(-kdim // SLICE) * SLICE), F32)
        b_tile = np.zeros((-(-kdim // SLICE) * SLICE, TILE), F32)
        a_part, b_part = a[row0:row0 + TILE], b[:, col0:col0 + TILE]
        a_tile[:a_part.shape[0], :kdim] = a_part
        b_tile[:kdim, :b_part.shape[1]] = b_part
        acc = np.zeros((TILE, TILE), F32)
        for k in range(a_tile.shape[1]):
            acc = fma(a_tile[:, k:k + 1], b_tile[k:k + 1, :], acc)
        rows, cols = min(TILE, m - row0), min(TILE, n - col0)
        c[row0:row0 + rows, col0:col0 + cols] = acc[:rows, :cols]
    return c


def test_gemm_panels_and_tiles_cover_every_element_once():
    for transposed in (False, True):
        i, k = panel_mapping(transposed)
        assert len(set(zip(i.tolist(), k.tolist()))) == TILE * SLICE         # each panel element once
    for m, n in [(1, 1), (127, 129), (300, 257), (9_000, 130)]:
        (tiles, _, _), _ = launch.gemm(m, n, 1)
        col_tiles = -(-n // TILE)
        written = np.zeros((m, n), int)
        r = np.arange(TILE // SIDE)
        thread_rows = (np.arange(SIDE)[:, None] + SIDE * r).reshape(-1)     # ty + 16 r, every ty
        for block in range(tiles):
            rows = block // col_tiles * TILE + thread_rows
            cols = block % col_tiles * TILE + thread_rows                   # tx + 16 s: the same pattern
            rows, cols = rows[rows < m], cols[cols < n]
            written[np.ix_(rows, cols)] += 1
        assert (written == 1).all()


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (127, 129, 130), (300, 64, 257)])
def test_gemm_accumulation_in_float32(m, k, n):
    rng = np.random.default_rng(m + k + n)
    a, b = rng.standard_normal((m, k)).astype(F32), rng.standard_normal((k, n)).astype(F32)
    got = gemm_tiled(a, b, m, n, k)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4 * np.sqrt(k))


# -- optim.cu ----------------------------------------------------------------------------------------
def adam_element(p, g, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay):
    """adam_element of optim.cu in float32 (the compiler contracts a * b + c into FMAs)."""
    m = fma(one_minus_beta_1, (g - m).astype(F32), m)
    v = fma(one_minus_beta_2, fma(g, g, -v), v)
    step = (alpha * m / (np.sqrt(v).astype(F32) + epsilon)).astype(F32)
    return fma(p, decay, -step), m, v


def test_adam_in_float32_follows_the_float64_formula():
    from nnengine.backends.optimizer_scalars import adam_scalars
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal(10_000).astype(F32), rng.standard_normal(10_000).astype(F32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p64, m64, v64 = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    for step in range(1, 6):
        s = adam_scalars(step, 1e-3, 0.9, 0.999, 1e-7, 0.004)
        p, m, v = adam_element(p, g, m, v, *(F32(x) for x in s))
        m64 += s.one_minus_beta_1 * (g - m64)
        v64 += s.one_minus_beta_2 * (g.astype(np.float64) ** 2 - v64)
        p64 = p64 * s.decay - s.alpha * m64 / (np.sqrt(v64) + s.epsilon)
    np.testing.assert_allclose(p, p64, rtol=1e-5, atol=1e-6)


def owning_tensor(starts, count, k):
    """owning_tensor of optim.cu: the last t < count with starts[t] <= k (binary search)."""
    low, high = 0, count - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= k:
            low = middle
        else:
            high = middle - 1
    return low


@pytest.mark.parametrize("sizes", [[640, 64, 2048, 32, 320, 10], [1], [5] * optim.GROUP_SIZE, [3, 1, 1, 7]])
def test_a_multi_tensor_launch_gives_each_element_to_its_own_tensor(sizes):
    starts = np.concatenate([[0], np.cumsum(sizes)])
    owners = [owning_tensor(starts, len(sizes), k) for k in range(starts[-1])]
    expected = np.repeat(np.arange(len(sizes)), sizes)
    assert owners == expected.tolist()
    offsets = np.arange(starts[-1]) - starts[owners]
    assert (offsets >= 0).all() and (offsets < np.array(sizes)[owners]).all()


# -- nn.cu: softmax backward; reduce.cu: argmax; index.cu: the sorted scatter; optim.cu: the other optimizers --
def softmax_grad_rows(a, g):
    """softmax_grad_rows of nn.cu: dot = sum_j g_j a_j (lane sums, butterfly), dz = a (g - dot)."""
    dot = butterfly(lane_sums(lane_columns((g * a).astype(F32), 0.0)), np.add)
    return (a * (g - dot[:, None]).astype(F32)).astype(F32)


def test_softmax_backward_rows():
    rng = np.random.default_rng(9)
    for rows, cols in [(5, 3), (64, 10), (7, 1025)]:
        z = rng.standard_normal((rows, cols)).astype(F32)
        a = softmax_rows(z)
        g = rng.standard_normal((rows, cols)).astype(F32)
        a64, g64 = a.astype(np.float64), g.astype(np.float64)
        expected = a64 * (g64 - (g64 * a64).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(softmax_grad_rows(a, g), expected, rtol=1e-4, atol=2e-7 * np.sqrt(cols))


def better(a, ia, b, ib):
    """reduce.cu's rule: the first NaN wins, then the larger value, then the smaller index."""
    a_nan, b_nan = np.isnan(a), np.isnan(b)
    return np.where(a_nan | b_nan, a_nan & (~b_nan | (ia < ib)), (a > b) | ((a == b) & (ia < ib)))


def warp_argmax(x):
    """warp_argmax of reduce.cu on each row of x: every lane scans its columns, then 5 shuffle steps."""
    rows, cols = x.shape
    best = np.repeat(x[:, :1], WARP, axis=1)
    index = np.zeros((rows, WARP), np.int64)
    for start in range(0, cols, WARP):
        j = np.arange(start, start + WARP)
        inside = j < cols
        candidate = np.where(inside, x[:, np.minimum(j, cols - 1)], np.nan)
        take = inside & better(candidate, j, best, index)
        best, index = np.where(take, candidate, best), np.where(take, j, index)
    lane = np.arange(WARP)
    for offset in (16, 8, 4, 2, 1):
        other, other_index = best[:, lane ^ offset], index[:, lane ^ offset]
        take = better(other, other_index, best, index)
        best, index = np.where(take, other, best), np.where(take, other_index, index)
    return index[:, 0]


def test_argmax_follows_numpy_on_ties_and_nans_in_one_and_two_passes():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 4, (50, 77)).astype(F32)          # many ties
    x[3, [40, 5]] = np.nan
    assert warp_argmax(x).tolist() == np.argmax(x, axis=1).tolist()
    flat = rng.integers(0, 6, 3 * launch.SEGMENT + 11).astype(F32)
    segments = -(-flat.size // launch.SEGMENT)
    padded = np.full(segments * launch.SEGMENT, -np.inf, F32)
    padded[:flat.size] = flat
    per_segment = warp_argmax(padded.reshape(segments, -1))          # argmax_segments, then argmax_rows
    values = padded.reshape(segments, -1)[np.arange(segments), per_segment]
    best = warp_argmax(values.reshape(1, -1))[0]
    assert best * launch.SEGMENT + per_segment[best] == np.argmax(flat)


def scatter_add_sorted(target, positions, values):
    """scatter_add_sorted of index.cu: stably sorted positions; the first of each run adds the run in order."""
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    out = target.copy()
    for k in range(len(positions)):
        if k and sorted_positions[k - 1] == sorted_positions[k]:
            continue
        total, j = F32(0), k
        while j < len(positions) and sorted_positions[j] == sorted_positions[k]:
            total = F32(total + values[order[j]])
            j += 1
        out[sorted_positions[k]] = F32(out[sorted_positions[k]] + total)
    return out


def test_the_deterministic_scatter_add_sums_each_position_in_its_original_order():
    rng = np.random.default_rng(11)
    positions = rng.integers(0, 7, 500)
    values = rng.standard_normal(500).astype(F32)
    got = scatter_add_sorted(np.zeros(7, F32), positions, values)
    in_order = np.zeros(7, F32)
    for p, v in zip(positions, values):                      # a serial loop in the original order
        in_order[p] = F32(in_order[p] + v)
    np.testing.assert_array_equal(got, in_order)             # the same bits: order fixed, no atomics


def test_sgd_rmsprop_and_adagrad_in_float32_follow_float64():
    from nnengine.backends.optimizer_scalars import adagrad_scalars, rmsprop_scalars, sgd_scalars
    rng = np.random.default_rng(12)
    p0, g = rng.standard_normal(5000).astype(F32), rng.standard_normal(5000).astype(F32)
    s = sgd_scalars(0.05, 0.9, 0.01)
    p, velocity = p0.copy(), np.zeros_like(p0)
    p64, v64 = p0.astype(np.float64), np.zeros(5000)
    for _ in range(5):                                       # sgd_update, Nesterov momentum
        decayed = (p * F32(s.decay)).astype(F32)
        velocity = fma(F32(s.momentum), velocity, -(F32(s.lr) * g).astype(F32))
        p = (decayed + fma(F32(s.momentum), velocity, -(F32(s.lr) * g).astype(F32))).astype(F32)
        v64 = s.momentum * v64 - s.lr * g
        p64 = p64 * s.decay + s.momentum * v64 - s.lr * g
    np.testing.assert_allclose(p, p64, rtol=1e-5, atol=1e-6)
    r = rmsprop_scalars(1e-3, 0.9, 0.0, 1e-7, 0.0)
    ms, ms64, p, p64 = np.zeros(5000, F32), np.zeros(5000), p0.copy(), p0.astype(np.float64)
    for _ in range(5):                                       # rmsprop_update, plain
        ms = fma(F32(r.rho), ms, (F32(r.one_minus_rho) * g * g).astype(F32))
        p = fma(p, F32(r.decay), -(F32(r.lr) * g / np.sqrt(ms + F32(r.epsilon))).astype(F32))
        ms64 = r.rho * ms64 + r.one_minus_rho * g.astype(np.float64) ** 2
        p64 = p64 * r.decay - r.lr * g / np.sqrt(ms64 + r.epsilon)
    np.testing.assert_allclose(p, p64, rtol=1e-5, atol=1e-6)
    a = adagrad_scalars(0.01, 1e-7, 0.0)
    acc, acc64, p, p64 = np.full(5000, 0.1, F32), np.full(5000, 0.1), p0.copy(), p0.astype(np.float64)
    for _ in range(5):                                       # adagrad_update
        acc = fma(g, g, acc)
        p = fma(p, F32(a.decay), -(F32(a.lr) * g / np.sqrt(acc + F32(a.epsilon))).astype(F32))
        acc64 = acc64 + g.astype(np.float64) ** 2
        p64 = p64 * a.decay - a.lr * g / np.sqrt(acc64 + a.epsilon)
    np.testing.assert_allclose(p, p64, rtol=1e-5, atol=1e-6)
