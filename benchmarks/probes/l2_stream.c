/* How fast can each core re-read its own slice of a weight matrix, step after
 * step, with a barrier between steps? That is the whole memory traffic of a
 * batch-1 recurrent step on the CPU team kernel (each thread's slice of W_hh
 * stays in its core's L2), so it bounds any fp32 kernel's batch-1 LSTM from
 * below. Used by benchmarks/lstm_b1_floor.py.
 *
 *   l2_stream BYTES_PER_THREAD THREADS ITERS  ->  prints microseconds per step
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

typedef float vec __attribute__((vector_size(64)));  /* zmm with AVX-512, two ymm with AVX2 */

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s BYTES_PER_THREAD THREADS ITERS\n", argv[0]);
    return 2;
  }
  const long n = atol(argv[1]) / (long)sizeof(vec);
  const int threads = atoi(argv[2]), iters = atoi(argv[3]), warm = 100;
  if (n < 4 || threads < 1 || iters < 1) {
    fprintf(stderr, "need BYTES_PER_THREAD >= 256, THREADS >= 1, ITERS >= 1\n");
    return 2;
  }
  double t0 = 0, t1 = 0;
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    vec* a = aligned_alloc(64, n * sizeof(vec)); /* each thread's own slice, first touched by it */
    for (long i = 0; i < n; ++i) a[i] = (vec){} + 1e-7f * (float)i;
    vec s0 = {}, s1 = {}, s2 = {}, s3 = {}; /* four chains: the adds' latency never limits */
    for (int it = 0; it < warm + iters; ++it) {
      if (it == warm) {
#pragma omp barrier
#pragma omp master
        t0 = omp_get_wtime();
      }
      for (long i = 0; i + 4 <= n; i += 4) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
      }
#pragma omp barrier
    }
#pragma omp master
    t1 = omp_get_wtime();
    vec s = s0 + s1 + s2 + s3;
    for (int j = 0; j < (int)(sizeof(vec) / sizeof(float)); ++j) sink += s[j];
    free(a);
  }
  printf("%.4f %g\n", (t1 - t0) / iters * 1e6, sink);
  return 0;
}
