# Step 15 · A GELU kernel in Mojo.
#
# Step 04's MLP called MAX's GELU. Here you write that op yourself: a Mojo function that
# computes GELU on a SIMD vector of numbers, and the kernel MAX runs on a tensor, one row
# per worker, a vector's worth of numbers at a time and the rest of each row one by one.
# The course registers it as the op "gpt2_gelu" and puts it into your MLP (gpt2/kernels.py).
from std.math import tanh
from std.sys import simd_width_of
from max.algorithm import parallelize
from extensibility import register, InputTensor, OutputTensor, foreach, Coord
from max.gpu.host import DeviceContext


# ANCHOR: gelu
@always_inline
def gelu[dtype: DType, width: SIMDLength, //](x: SIMD[dtype, width]) -> SIMD[dtype, width]:
    """GPT-2's GELU, in its tanh form, of `width` numbers at once."""
    comptime assert dtype.is_floating_point(), "GELU takes floating-point numbers"
    # ---- your code starts here ----
    return x  # TODO: GPT-2's GELU of x, in its tanh form
    # ---- your code ends here ----
# ANCHOR_END: gelu


# ANCHOR: kernel
@register("gpt2_gelu")
struct GELU:
    @staticmethod
    def execute[target: StaticString](
        output: OutputTensor,
        x: InputTensor[dtype = output.dtype, rank = output.rank, static_spec=_],
        ctx: DeviceContext,
    ) raises:
        comptime if target == "cpu":
            comptime simd = simd_width_of[output.dtype]()
            var n = x.dim_size(x.rank - 1)  # one row's length
            var src = x.unsafe_ptr()
            var dst = output.unsafe_ptr()

            def row(r: Int) {src, dst, n}:
                var start = r * n
                # ---- your code starts here ----
                pass  # TODO: dst gets the GELU of the row at src + start, all n numbers of it
                # ---- your code ends here ----

            parallelize(row, x.size() // n)
        else:  # a GPU: MAX maps the function over every element
            def each[width: Int](idx: Coord) {x} -> SIMD[output.dtype, width]:
                return gelu(x.load[width](idx))

            foreach[target=target](each, output, ctx)
# ANCHOR_END: kernel
