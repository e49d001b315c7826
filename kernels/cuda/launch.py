"""Launch configurations: how many blocks of how many threads each kind of kernel gets.

Pure arithmetic on sizes (no CuPy, no GPU), so it is unit-tested on any machine. The
constants must match ``common.cuh`` and ``gemm.cu``; ``tests/test_cuda_compile.py`` reads
them from the headers to keep the two sides equal.
"""
WARP_SIZE = 32
WARPS_PER_BLOCK = 8            # row kernels: blockDim = (32, 8), one warp per row
THREADS = 256                  # elementwise and per-parameter kernels
MAX_GRID_STRIDE_BLOCKS = 8192  # grid-stride kernels: enough blocks to fill any current GPU
REDUCE_BLOCK = 256             # reduce_rows_block threads
SEGMENT = 16 * REDUCE_BLOCK    # elements one block reduces in the first pass of a long total
MIDDLE_TARGET_BLOCKS = 512     # reduce_middle: blocks worth splitting the reduced axis for (H200: 132 SMs)
MIN_CHUNK = 256                # reduce_middle: the fewest reduced indices a chunk takes (32 per warp)
BIAS_GRAD_ROW_BLOCKS = 64      # activation_grad_bias: at most this many partial sums per column
BIAS_GRAD_ONE_BLOCK_ROWS = 512  # activation_grad_bias: rows one block row sums alone
ROWS_PER_THREAD = 4            # bias_activation: rows each thread walks (loads in flight per thread)
MAX_GRID_Y = 65535             # CUDA's limit on gridDim.y
GEMM_TILE = 128                # gemm_tiled: C tile per block
GEMM_THREADS_SIDE = 16         # gemm_tiled: blockDim = (16, 16)
MAX_GRID_Z = 65535             # CUDA's limit on gridDim.z (the GEMM batch)
MAX_GRID_X = 2**31 - 1         # CUDA's limit on gridDim.x
MIN_CHUNK_ROWS = 256           # norm.cu: the fewest rows a per-column partial sum takes
MAX_CHUNKS = 1024              # norm.cu: at most this many partial sums per column


def ceil_div(a, b):
    """The smallest integer >= a / b for non-negative a and positive b."""
    return -(-a // b)


def grid_stride(n):
    """(grid, block) for a grid-stride loop over ``n`` elements (at least one block)."""
    blocks = min(max(ceil_div(n, THREADS), 1), MAX_GRID_STRIDE_BLOCKS)
    return (blocks,), (THREADS,)


def rows(n_rows):
    """(grid, block) for a one-warp-per-row kernel over ``n_rows`` rows."""
    return (max(ceil_div(n_rows, WARPS_PER_BLOCK), 1),), (WARP_SIZE, WARPS_PER_BLOCK)


def long_rows(n_rows):
    """(grid, block) for reduce_rows_block: one block of REDUCE_BLOCK threads per row."""
    return (max(n_rows, 1),), (REDUCE_BLOCK,)


def use_block_per_row(n_rows, row_length):
    """Whether a row reduction should give a block (True) or a warp (False) to each row.

    Long rows have work for 256 threads; short or numerous rows are better served by warps.
    """
    return row_length > 4 * REDUCE_BLOCK or (row_length > REDUCE_BLOCK and n_rows < 1024)


def columns(n_rows, n_cols):
    """(grid, block) for activation_grad_bias: 32 columns per block; up to BIAS_GRAD_ONE_BLOCK_ROWS rows
    one block row walks alone (its sums are the result), more are shared among up to BIAS_GRAD_ROW_BLOCKS."""
    row_blocks = min(max(ceil_div(n_rows, BIAS_GRAD_ONE_BLOCK_ROWS), 1), BIAS_GRAD_ROW_BLOCKS)
    return (max(ceil_div(n_cols, WARP_SIZE), 1), row_blocks), (WARP_SIZE, WARPS_PER_BLOCK)


def matrix(n_rows, n_cols):
    """(grid, block) for bias_activation: 32 columns per block on x, rows strided over y (at most 65535)."""
    row_blocks = min(max(ceil_div(n_rows, WARPS_PER_BLOCK * ROWS_PER_THREAD), 1), MAX_GRID_Y)
    return (max(ceil_div(n_cols, WARP_SIZE), 1), row_blocks), (WARP_SIZE, WARPS_PER_BLOCK)


def middle(outer, chunks, inner):
    """(grid, block) for reduce_middle: one block per (outer index, chunk, group of 32 inner indices)."""
    return (max(outer * chunks * ceil_div(inner, WARP_SIZE), 1),), (WARP_SIZE, WARPS_PER_BLOCK)


def middle_chunk(outer, reduced, inner):
    """How many of the ``reduced`` indices one reduce_middle block takes (all of them: one chunk).

    When the outputs give fewer than MIDDLE_TARGET_BLOCKS blocks, the reduced axis is cut into chunks of
    at least MIN_CHUNK indices so that about MIDDLE_TARGET_BLOCKS blocks share it; a (100000, 10) sum
    over axis 0 then runs on ~512 blocks instead of one.
    """
    blocks = max(outer * ceil_div(inner, WARP_SIZE), 1)
    wanted = min(ceil_div(MIDDLE_TARGET_BLOCKS, blocks), ceil_div(reduced, MIN_CHUNK))
    return reduced if wanted <= 1 else ceil_div(reduced, wanted)


def column_chunks(rows):
    """(chunk_rows, chunks) for norm.cu's per-column partial sums: chunks of at least MIN_CHUNK_ROWS rows,
    at most MAX_CHUNKS of them, covering every row (set by the row count alone: deterministic)."""
    chunk_rows = max(MIN_CHUNK_ROWS, ceil_div(rows, MAX_CHUNKS))
    return chunk_rows, max(ceil_div(rows, chunk_rows), 1)


def gemm(m, n, batch):
    """(grid, block) for gemm_tiled on a batch of at most MAX_GRID_Z (m, n) products.

    The tiles of C are numbered along x, whose limit (2^31 - 1 blocks) allows products of any
    size memory can hold; y would stop at 65535 tiles, i.e. about 8.4 million rows.
    """
    if not 1 <= batch <= MAX_GRID_Z:
        raise ValueError(f"gemm_tiled launches 1 to {MAX_GRID_Z} products at once, got {batch}")
    tiles = max(ceil_div(m, GEMM_TILE), 1) * max(ceil_div(n, GEMM_TILE), 1)
    if tiles > MAX_GRID_X:
        raise ValueError(f"gemm_tiled: a ({m}, {n}) product has {tiles} tiles, more than CUDA's {MAX_GRID_X} blocks")
    return (tiles, 1, batch), (GEMM_THREADS_SIDE, GEMM_THREADS_SIDE)
