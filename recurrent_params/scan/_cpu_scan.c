/* Compiled CPU kernel of the diagonal linear scan h_t = lam_t * h_{t-1} + u_t.
 *
 * Built at first use by recurrent_params/scan/_compiled.py with the system C compiler and
 * called through ctypes (no Python or torch headers, so it compiles in well under a second).
 *
 * Layout: u, out (and lam when lam_full) are contiguous (B, L, d) arrays; lam otherwise (d,);
 * h0 is (B, d) or NULL. Complex numbers are interleaved (re, im) pairs of T, so a time step is
 * a row of n = d (real) or 2 d (complex) reals. For each batch row the kernel walks through
 * time and computes a whole row from the previous output row (still in L1 cache) and the
 * input row: every access streams through contiguous memory, and the state is never copied.
 *
 * Complex products are written lane by lane so that they vectorise without complex
 * arithmetic: with a shared lam, out[j] = LR[j] * prev[j] + LI[j] * prev[j ^ 1] + u[j], where
 * LR = (re, re) and LI = (-im, +im) per complex number are precomputed once per call.
 *
 * dot (optional, (B, L, d)): also accumulate acc[j] += sum_{b,t} out[b,t,j] * conj(dot[b,t',j])
 * with t' = t + 1 (forward) or t - 1 (reverse): the gradient of a shared lam, computed in the
 * same pass as the adjoint scan. Per batch row, lane-wise partial sums P[j] += out[j] * dot[j]
 * and (complex) Q[j] += out[j] * dot[j ^ 1] are kept in T and folded into the double
 * accumulator once per row: re = P[2k] + P[2k+1], im = Q[2k+1] - Q[2k].
 *
 * Instruction sets: on x86-64 Linux (glibc) with GCC >= 12 each entry point is cloned for
 * x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline (SSE2), and the dynamic loader
 * picks the best one the CPU supports (target_clones), so one cached library runs on every
 * x86-64 machine; elsewhere (clang, musl, other CPUs, RP_NO_CLONES defined) the plain -O3
 * build runs.
 * The instruction set changes only the speed and the last bits of rounding (fused
 * multiply-adds), never which operations are done.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* target_clones needs GNU ifunc support: GCC >= 12 (for the x86-64-v3/v4 names) and glibc
 * (musl's loader has no ifunc); __GLIBC__ is defined by the libc headers included above. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) &&   \
    !defined(__clang__) && (__GNUC__ >= 12) && !defined(RP_NO_CLONES)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define KERNEL(NAME, T, CPLX)                                                                 \
    CLONES int NAME(const T *restrict lam, int lam_full, const T *restrict u,                \
                    const T *restrict h0, T *restrict out, long B, long L, long d,           \
                    int reverse, const T *restrict dot, double *restrict acc)                \
    {                                                                                         \
        long n = (CPLX ? 2 : 1) * d; /* reals per time step */                               \
        T *buf = (T *)malloc(4 * (size_t)n * sizeof(T));                                      \
        if (!buf) return -1; /* out of memory: the caller raises MemoryError */               \
        T *restrict LR = buf, *restrict LI = buf + n, *restrict P = buf + 2 * n;              \
        T *restrict Q = buf + 3 * n;                                                          \
        if (!lam_full) {                                                                      \
            for (long j = 0; j < n; ++j) LR[j] = CPLX ? lam[j & ~1L] : lam[j];                \
            for (long j = 0; j < n; ++j) LI[j] = CPLX ? ((j & 1) ? lam[j] : -lam[j + 1]) : 0; \
        }                                                                                     \
        long step = reverse ? -n : n; /* pointer step from one time row to the next */        \
        for (long b = 0; b < B; ++b) {                                                        \
            long t0 = reverse ? L - 1 : 0;                                                    \
            const T *ut = u + (b * L + t0) * n;                                               \
            const T *lt = lam_full ? lam + (b * L + t0) * n : lam;                            \
            T *ot = out + (b * L + t0) * n;                                                   \
            const T *prev = h0 ? h0 + b * n : NULL;                                           \
            if (dot) {                                                                        \
                memset(P, 0, (size_t)n * sizeof(T));                                          \
                memset(Q, 0, (size_t)n * sizeof(T));                                          \
            }                                                                                 \
            for (long s = 0; s < L; ++s) {                                                    \
                if (!prev) {                                                                  \
                    memcpy(ot, ut, (size_t)n * sizeof(T));                                    \
                } else if (!lam_full) {                                                       \
                    STEP_SHARED_##CPLX(T, ot, prev, ut);                                      \
                } else {                                                                      \
                    STEP_FULL_##CPLX(T, ot, prev, ut, lt);                                    \
                }                                                                             \
                if (s + 1 == L) break; /* no pointer ever leaves its array */                 \
                if (dot) DOT_##CPLX(T, ot, ot - out + dot + step);                            \
                prev = ot;                                                                    \
                ut += step;                                                                   \
                ot += step;                                                                   \
                if (lam_full) lt += step;                                                     \
            }                                                                                 \
            if (dot) FOLD_##CPLX                                                              \
        }                                                                                     \
        free(buf);                                                                            \
        return 0;                                                                             \
    }

/* One time row: o = lam * p + x (restrict rows: the output row never aliases its inputs) */
#define STEP_SHARED_0(T, o, p, x) SPAN(T, row_shared_##T, reverse, n, o, p, x, LR, LI)
#define STEP_SHARED_1(T, o, p, x) SPAN(T, crow_shared_##T, reverse, n, o, p, x, LR, LI)
#define STEP_FULL_0(T, o, p, x, l) SPAN(T, row_full_##T, reverse, n, o, p, x, l, l)
#define STEP_FULL_1(T, o, p, x, l) SPAN(T, crow_full_##T, reverse, n, o, p, x, l, l)
#define DOT_0(T, o, q) SPAN(T, rdot_##T, reverse, n, P, Q, o, q, q)
#define DOT_1(T, o, q) SPAN(T, cdot_##T, reverse, n, P, Q, o, q, q)
#define FOLD_0                                                                                \
    for (long j = 0; j < n; ++j) acc[j] += (double)P[j];
#define FOLD_1                                                                                \
    for (long j = 0; j < n; j += 2) {                                                         \
        acc[j] += (double)P[j] + (double)P[j + 1];                                            \
        acc[j + 1] += (double)Q[j + 1] - (double)Q[j];                                        \
    }

/* Row operations over lanes [0, m). The reverse scan walks each row from its last cache line
 * to its first (DESC below), so that all its memory streams descend: a stream that descends
 * row by row but ascends within each row defeats the hardware prefetcher (measured on an AMD
 * EPYC: 2.5x slower than ascending; a fully descending stream is as fast as an ascending one). */
#define ROWS(T)                                                                               \
    static inline void row_shared_##T(T *restrict o, const T *restrict p, const T *restrict x, \
                                      const T *restrict lr, const T *restrict li, long m)     \
    {                                                                                         \
        (void)li;                                                                             \
        for (long j = 0; j < m; ++j) o[j] = lr[j] * p[j] + x[j];                              \
    }                                                                                         \
    static inline void crow_shared_##T(T *restrict o, const T *restrict p,                    \
                                       const T *restrict x, const T *restrict lr,             \
                                       const T *restrict li, long m)                          \
    {                                                                                         \
        for (long j = 0; j < m; j += 2) {                                                     \
            o[j] = (lr[j] * p[j] + li[j] * p[j + 1]) + x[j];                                  \
            o[j + 1] = (lr[j + 1] * p[j + 1] + li[j + 1] * p[j]) + x[j + 1];                  \
        }                                                                                     \
    }                                                                                         \
    static inline void row_full_##T(T *restrict o, const T *restrict p, const T *restrict x,  \
                                    const T *restrict l, const T *restrict unused, long m)    \
    {                                                                                         \
        (void)unused;                                                                         \
        for (long j = 0; j < m; ++j) o[j] = l[j] * p[j] + x[j];                               \
    }                                                                                         \
    static inline void crow_full_##T(T *restrict o, const T *restrict p, const T *restrict x, \
                                     const T *restrict l, const T *restrict unused, long m)   \
    {                                                                                         \
        (void)unused;                                                                         \
        for (long j = 0; j < m; j += 2) {                                                     \
            o[j] = (l[j] * p[j] - l[j + 1] * p[j + 1]) + x[j];                                \
            o[j + 1] = (l[j] * p[j + 1] + l[j + 1] * p[j]) + x[j + 1];                        \
        }                                                                                     \
    }                                                                                         \
    static inline void rdot_##T(T *restrict P, T *restrict Q, const T *restrict o,            \
                                const T *restrict q, const T *restrict unused, long m)        \
    {                                                                                         \
        (void)Q, (void)unused;                                                                \
        for (long j = 0; j < m; ++j) P[j] += o[j] * q[j];                                     \
    }                                                                                         \
    static inline void cdot_##T(T *restrict P, T *restrict Q, const T *restrict o,            \
                                const T *restrict q, const T *restrict unused, long m)        \
    {                                                                                         \
        (void)unused;                                                                         \
        for (long j = 0; j < m; j += 2) {                                                     \
            P[j] += o[j] * q[j];                                                              \
            P[j + 1] += o[j + 1] * q[j + 1];                                                  \
            Q[j] += o[j] * q[j + 1];                                                          \
            Q[j + 1] += o[j + 1] * q[j];                                                      \
        }                                                                                     \
    }

/* Apply FN(a + j, b + j, c + j, e + j, f + j, width) over lanes [0, n): in one call when
 * ascending, else cache line by cache line from the end (a constant width the compiler
 * unrolls), the leftover head last. */
#define SPAN(T, FN, desc, n, a, b, c, e, f)                                                   \
    do {                                                                                      \
        if (!(desc)) {                                                                        \
            FN(a, b, c, e, f, n);                                                             \
            break;                                                                            \
        }                                                                                     \
        const long line = 64 / (long)sizeof(T);                                              \
        long j = n;                                                                           \
        for (; j >= line; j -= line)                                                          \
            FN((a) + j - line, (b) + j - line, (c) + j - line, (e) + j - line,                \
               (f) + j - line, line);                                                         \
        if (j) FN(a, b, c, e, f, j);                                                          \
    } while (0)

ROWS(float)
ROWS(double)

KERNEL(scan_f32, float, 0)
KERNEL(scan_f64, double, 0)
KERNEL(scan_c64, float, 1)
KERNEL(scan_c128, double, 1)
