// Dropout keep decisions from Philox4x32-10, torch-free and host/device
// agnostic: the same bits as bigkernels/ops/philox.py (and Triton's
// tl.randint): key = the seed's 32-bit halves, counter = (index_lo,
// index_hi, 0, 0), first output word. An element is kept iff its word,
// folded to [0, 2^31) as tl.rand folds it, is >= threshold = floor(p * 2^31):
// an integer test, so every backend decides identically.
#pragma once
#include <stdint.h>

#include "common/activation.h"  // BK_HD

namespace bk {

BK_HD uint32_t philox_word0(uint64_t seed, uint64_t index) {
  uint32_t c0 = uint32_t(index), c1 = uint32_t(index >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// floor(p * 2^31), computed in double on every backend.
BK_HD int64_t dropout_threshold(double p) { return int64_t(p * 2147483648.0); }

BK_HD bool dropout_keep(uint64_t seed, uint64_t index, int64_t threshold) {
  const int32_t x = int32_t(philox_word0(seed, index));
  const int64_t folded = x < 0 ? -int64_t(x) - 1 : int64_t(x);
  return folded >= threshold;
}

}  // namespace bk
