"""Two LLVM intrinsics Numba lacks.

``prefetch(array, i)`` hints the CPU to load ``array[i]``'s cache line: forward-index
reads are random, and issuing the loads of a whole block first lets them overlap.
``f16_bits_to_f32(bits)`` decodes a float16 bit pattern in one instruction.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):  # noqa: ARG001 (Numba intrinsic signature)
    """``llvm.prefetch`` (read, high locality) of ``array[index]``; no bounds check."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        arr_t, idx_t = signature.args
        ary = context.make_array(arr_t)(context, builder, args[0])
        idx = context.cast(builder, args[1], idx_t, types.intp)
        ptr = cgutils.get_item_pointer(context, builder, arr_t, ary, [idx], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def f16_bits_to_f32(typingctx, bits):  # noqa: ARG001 (Numba intrinsic signature)
    """float32 value of a float16 bit pattern (uint16): one ``fpext half`` instruction
    (F16C ``vcvtph2ps`` where the CPU has it), no lookup table."""
    if not isinstance(bits, types.Integer) or bits.bitwidth != 16:
        return None
    sig = types.float32(bits)

    def codegen(context, builder, signature, args):
        half = builder.bitcast(args[0], ir.HalfType())
        return builder.fpext(half, ir.FloatType())

    return sig, codegen
