# Step 16 · Fused decode attention in Mojo.
#
# One new token's query against everything the cache holds, for every head: the scores and
# their running maximum, a softmax kept stable by subtracting it, and the weighted sum of
# the values, each cached number read once. The course registers it as the op
# "gpt2_decode_attention" and runs it in gpt2.fast's one-token decode step, in place of
# MAX's composed ops (gpt2/kernels.py).
from std.math import exp, sqrt
from std.memory import Pointer
from std.utils.numerics import nan
from std.sys import simd_width_of
from max.algorithm import parallelize
from extensibility import register, InputTensor, OutputTensor
from max.gpu import block_idx
from max.gpu.host import DeviceContext

comptime f32 = DType.float32
comptime simd = simd_width_of[f32]()
comptime Row = Pointer[Float32, MutAnyOrigin]  # where a row of numbers starts in memory


# ANCHOR: helpers
@always_inline
def dot(a: Row, b: Row, n: Int) -> Float32:
    """The sum of a[i] · b[i] for i < n."""
    var vector_end = n - n % simd
    var sums = SIMD[f32, simd](0)
    for i in range(0, vector_end, simd):
        sums += a.unsafe_load[width=simd](i) * b.unsafe_load[width=simd](i)
    var total = sums.reduce_add()
    for i in range(vector_end, n):
        total += a[unsafe_offset=i] * b[unsafe_offset=i]
    return total
# ANCHOR_END: helpers


# ANCHOR: head
def head(
    h: Int, q_: Row, k_: Row, v_: Row, keys_: Row, values_: Row, out_: Row, scores_: Row,
    head_dim: Int, capacity: Int, cached: Int, scale: Float32,
):
    """Head h's attention: its query against its cached keys and its own, into its output row."""
    var query = q_.unsafe_offset(h * head_dim)
    var out_row = out_.unsafe_offset(h * head_dim)
    var w = scores_.unsafe_offset(h * (capacity + 1))  # w[t]: position t's; w[cached]: the new token's
    # ---- your code starts here ----
    var top = dot(query, k_.unsafe_offset(h * head_dim), head_dim) * scale
    w[unsafe_offset=cached] = top
    for t in range(cached):
        var key = keys_.unsafe_offset((h * capacity + t) * head_dim)
        w[unsafe_offset=t] = dot(query, key, head_dim) * scale
        top = max(top, w[unsafe_offset=t])
    # ---- your code ends here ----
    var total: Float32 = 0
    # ---- your code starts here ----
    for t in range(cached + 1):
        w[unsafe_offset=t] = exp(w[unsafe_offset=t] - top)
        total += w[unsafe_offset=t]
    for i in range(head_dim):  # number i of the weighted sum: row i of values_t
        var row = values_.unsafe_offset((h * head_dim + i) * capacity)
        var own = w[unsafe_offset=cached] * v_[unsafe_offset=h * head_dim + i]
        out_row[unsafe_offset=i] = (dot(w, row, cached) + own) / total
    # ---- your code ends here ----
# ANCHOR_END: head


# ANCHOR: kernel
@register("gpt2_decode_attention")
struct DecodeAttention:
    @staticmethod
    def execute[target: StaticString](
        output: OutputTensor[dtype=f32, rank=2, static_spec=_],  # [n_head, head_dim]
        scores: OutputTensor[dtype=f32, rank=2, static_spec=_],  # [n_head, capacity + 1]: room to work
        q: InputTensor[dtype=f32, rank=2, static_spec=_],  # the new token's [n_head, head_dim]
        k: InputTensor[dtype=f32, rank=2, static_spec=_],  # its key
        v: InputTensor[dtype=f32, rank=2, static_spec=_],  # its value
        keys: InputTensor[dtype=f32, rank=3, static_spec=_],  # [n_head, capacity, head_dim]
        values_t: InputTensor[dtype=f32, rank=3, static_spec=_],  # [n_head, head_dim, capacity]
        length: InputTensor[dtype=DType.int64, rank=1, static_spec=_],  # [1]: positions cached
        ctx: DeviceContext,
    ) raises:
        var n_head, head_dim, capacity = q.dim_size(0), q.dim_size(1), keys.dim_size(1)
        var scale = 1 / sqrt(Float32(head_dim))
        var q_, k_, v_, keys_, values_, out_, scores_ = (
            q.unsafe_ptr(), k.unsafe_ptr(), v.unsafe_ptr(), keys.unsafe_ptr(),
            values_t.unsafe_ptr(), output.unsafe_ptr(), scores.unsafe_ptr(),
        )
        comptime if target == "cpu":
            var cached = Int(length[0])
            if cached < 0 or cached > capacity:
                raise Error("the cache holds ", cached, " positions, its capacity is ", capacity)

            def one(h: Int) {q_, k_, v_, keys_, values_, out_, scores_, head_dim, capacity, cached, scale}:
                head(h, q_, k_, v_, keys_, values_, out_, scores_, head_dim, capacity, cached, scale)

            parallelize(one, n_head)
        else:  # a GPU (untested: none was at hand): one thread per head
            heads_on_gpu(
                ctx, n_head, q_, k_, v_, keys_, values_, out_, scores_, length.unsafe_ptr(),
                head_dim, capacity, scale,
            )
# ANCHOR_END: kernel


# ANCHOR: gpu
def gpu_head(
    q_: Row, k_: Row, v_: Row, keys_: Row, values_: Row, out_: Row, scores_: Row,
    length: Pointer[Int64, MutAnyOrigin], head_dim: Int64, capacity: Int64, scale: Float32,
):
    """One GPU thread: head block_idx.x. The length is in the GPU's memory, read here; a GPU
    thread cannot raise, so a length past the capacity leaves NaN in the head's output."""
    var h, cached = Int(block_idx.x), Int(length[unsafe_offset=0])
    if cached < 0 or cached > Int(capacity):
        for i in range(Int(head_dim)):
            out_[unsafe_offset=h * Int(head_dim) + i] = nan[f32]()
        return
    head(h, q_, k_, v_, keys_, values_, out_, scores_, Int(head_dim), Int(capacity), cached, scale)


def heads_on_gpu(
    ctx: DeviceContext, n_head: Int, q_: Row, k_: Row, v_: Row, keys_: Row, values_: Row,
    out_: Row, scores_: Row, length: Pointer[Int64, MutAnyOrigin], head_dim: Int, capacity: Int,
    scale: Float32,
) raises:
    """gpu_head on n_head blocks of one thread each (a GPU takes Int64, not Int, arguments)."""
    ctx.enqueue_function[gpu_head](
        q_, k_, v_, keys_, values_, out_, scores_, length, Int64(head_dim), Int64(capacity),
        scale, grid_dim=n_head, block_dim=1,
    )
# ANCHOR_END: gpu
