// Forward kernel instantiations for padded head dim 160 (fp16 and bf16).
#include "cuda/attention/attention_fwd_kernel.cuh"

BK_INSTANTIATE_ATTENTION_FWD(160)
