// Stand-in for the header that a CUDA build of torch generates at build time
// (absent from the CPU wheel): lets tests/test_cuda_glue.py syntax-check our
// CUDA glue against torch's c10/cuda headers on a CPU-only machine.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
