/* Compiled CPU kernel of the diagonal linear scan h_t = lam_t * h_{t-1} + u_t.
 *
 * Built at first use by recurrent_params/scan/_compiled.py with the system C compiler and
 * called through ctypes (no Python or torch headers, so it compiles in well under a second).
 *
 * Layout: u, out (and lam when lam_full) are contiguous (B, L, d) arrays; lam otherwise (d,);
 * h0 is (B, d) or NULL. Complex numbers are interleaved (re, im) pairs of T. The recurrence
 * runs per batch row over time with the d lanes innermost, so every access streams through
 * contiguous memory and the previous state row stays in cache.
 *
 * dot (optional, (B, L, d)): also accumulate acc[j] += sum_{b,t} out[b,t,j] * conj(dot[b,t',j])
 * with t' = t + 1 (forward) or t - 1 (reverse), in double precision: the gradient of a shared
 * lam, computed in the same pass as the adjoint scan.
 */
#include <stddef.h>
#include <string.h>

#define REAL_SCAN(NAME, T)                                                                    \
    void NAME(const T *restrict lam, int lam_full, const T *restrict u,                       \
              const T *restrict h0, T *restrict out, long B, long L, long d, int reverse,     \
              const T *restrict dot, double *restrict acc)                                    \
    {                                                                                         \
        for (long b = 0; b < B; ++b) {                                                        \
            const T *ub = u + b * L * d;                                                      \
            T *ob = out + b * L * d;                                                          \
            const T *lb = lam_full ? lam + b * L * d : lam;                                   \
            const T *db = dot ? dot + b * L * d : NULL;                                       \
            const T *prev = h0 ? h0 + b * d : NULL;                                           \
            for (long s = 0; s < L; ++s) {                                                    \
                long t = reverse ? L - 1 - s : s;                                             \
                const T *ut = ub + t * d;                                                     \
                const T *lt = lam_full ? lb + t * d : lb;                                     \
                T *ot = ob + t * d;                                                           \
                if (prev) {                                                                   \
                    for (long j = 0; j < d; ++j) ot[j] = lt[j] * prev[j] + ut[j];             \
                } else {                                                                      \
                    memcpy(ot, ut, (size_t)d * sizeof(T));                                    \
                }                                                                             \
                long tn = reverse ? t - 1 : t + 1;                                            \
                if (db && tn >= 0 && tn < L) {                                                \
                    const T *dn = db + tn * d;                                                \
                    for (long j = 0; j < d; ++j) acc[j] += (double)ot[j] * (double)dn[j];     \
                }                                                                             \
                prev = ot;                                                                    \
            }                                                                                 \
        }                                                                                     \
    }

#define COMPLEX_SCAN(NAME, T)                                                                 \
    void NAME(const T *restrict lam, int lam_full, const T *restrict u,                       \
              const T *restrict h0, T *restrict out, long B, long L, long d, int reverse,     \
              const T *restrict dot, double *restrict acc)                                    \
    {                                                                                         \
        for (long b = 0; b < B; ++b) {                                                        \
            const T *ub = u + 2 * b * L * d;                                                  \
            T *ob = out + 2 * b * L * d;                                                      \
            const T *lb = lam_full ? lam + 2 * b * L * d : lam;                               \
            const T *db = dot ? dot + 2 * b * L * d : NULL;                                   \
            const T *prev = h0 ? h0 + 2 * b * d : NULL;                                       \
            for (long s = 0; s < L; ++s) {                                                    \
                long t = reverse ? L - 1 - s : s;                                             \
                const T *ut = ub + 2 * t * d;                                                 \
                const T *lt = lam_full ? lb + 2 * t * d : lb;                                 \
                T *ot = ob + 2 * t * d;                                                       \
                if (prev) {                                                                   \
                    for (long j = 0; j < d; ++j) {                                            \
                        T lr = lt[2 * j], li = lt[2 * j + 1];                                 \
                        T pr = prev[2 * j], pi = prev[2 * j + 1];                             \
                        ot[2 * j] = (lr * pr - li * pi) + ut[2 * j];                          \
                        ot[2 * j + 1] = (lr * pi + li * pr) + ut[2 * j + 1];                  \
                    }                                                                         \
                } else {                                                                      \
                    memcpy(ot, ut, (size_t)(2 * d) * sizeof(T));                              \
                }                                                                             \
                long tn = reverse ? t - 1 : t + 1;                                            \
                if (db && tn >= 0 && tn < L) {                                                \
                    const T *dn = db + 2 * tn * d;                                            \
                    for (long j = 0; j < d; ++j) {                                            \
                        double ar = ot[2 * j], ai = ot[2 * j + 1];                            \
                        double dr = dn[2 * j], di = dn[2 * j + 1];                            \
                        acc[2 * j] += ar * dr + ai * di;                                      \
                        acc[2 * j + 1] += ai * dr - ar * di;                                  \
                    }                                                                         \
                }                                                                             \
                prev = ot;                                                                    \
            }                                                                                 \
        }                                                                                     \
    }

REAL_SCAN(scan_f32, float)
REAL_SCAN(scan_f64, double)
COMPLEX_SCAN(scan_c64, float)
COMPLEX_SCAN(scan_c128, double)
