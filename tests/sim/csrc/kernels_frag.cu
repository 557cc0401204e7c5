// Probes of the tensor-core fragment layouts: the test computes each lane's
// registers itself (from the layout under test), the kernel only moves them
// through mma.sync / ldmatrix. One warp, no other logic.
#include "device/launch.cuh"
#include "kernels.h"

namespace simtest {

BK_GLOBAL void mma_kernel(int kind, const uint32_t* a_regs, const uint32_t* b_regs, const float* c, float* d) {
  const int l = threadIdx.x;
  uint32_t a[4], b[2];
  float acc[4];
  for (int i = 0; i < 4; ++i) a[i] = a_regs[4 * l + i], acc[i] = c[4 * l + i];
  for (int i = 0; i < 2; ++i) b[i] = b_regs[2 * l + i];
  if (kind == 0) bk::dev::mma_m16n8k16_f16f32(acc, a, b, acc);
  else if (kind == 1) bk::dev::mma_m16n8k16_bf16f32(acc, a, b, acc);
  else bk::dev::mma_m16n8k8_tf32f32(acc, a, b, acc);
  for (int i = 0; i < 4; ++i) d[4 * l + i] = acc[i];
}
cudaError_t mma_frag(int kind, const uint32_t* a, const uint32_t* b, const float* c, float* d) {
  return BK_LAUNCH(mma_kernel, dim3(1), dim3(32), 0, nullptr, kind, a, b, c, d);
}

// smem holds 4 stacked 8x8 matrices of b16 (32 rows of 8): value r*256 + c.
// Lane l points at row l (matrix l/8, row l%8); results go to out[4*l + j].
BK_GLOBAL void ldmatrix_kernel(int num, bool trans, uint32_t* out) {
  BK_SHARED(uint16_t, s, [32][8]);
  const int l = threadIdx.x;
  for (int c = 0; c < 8; ++c) s[l][c] = uint16_t(l * 256 + c);
  __syncwarp();
  uint32_t r[4] = {0, 0, 0, 0};
  const void* row = &s[l][0];
  if (num == 1) trans ? bk::dev::ldmatrix_x1_trans(r[0], row) : bk::dev::ldmatrix_x1(r[0], row);
  if (num == 2) trans ? bk::dev::ldmatrix_x2_trans(r[0], r[1], row) : bk::dev::ldmatrix_x2(r[0], r[1], row);
  if (num == 4)
    trans ? bk::dev::ldmatrix_x4_trans(r[0], r[1], r[2], r[3], row) : bk::dev::ldmatrix_x4(r[0], r[1], r[2], r[3], row);
  for (int j = 0; j < 4; ++j) out[4 * l + j] = r[j];
}
cudaError_t ldmatrix_probe(int num, bool trans, uint32_t* out) {
  return BK_LAUNCH(ldmatrix_kernel, dim3(1), dim3(32), 0, nullptr, num, trans, out);
}

}  // namespace simtest
