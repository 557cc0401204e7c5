// Split-KV decode instantiations for padded head dim 256 (fp16 and bf16).
#include "cuda/attention/attention_decode_kernel.cuh"

BK_INSTANTIATE_ATTENTION_DECODE(256)
