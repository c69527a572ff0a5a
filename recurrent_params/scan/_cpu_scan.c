/* Compiled CPU kernel of the diagonal linear scan h_t = lam_t * h_{t-1} + u_t.
 *
 * Built at first use by recurrent_params/scan/_compiled.py with the system C compiler and
 * called through ctypes (no Python or torch headers, so it compiles in well under a second).
 *
 * Layout: u, out (and lam when lam_full) are contiguous (B, L, d) arrays; lam otherwise (d,);
 * h0 is (B, d) or NULL. Complex numbers are interleaved (re, im) pairs of T. For each batch
 * row and each tile of TILE consecutive reals of a time step, the state lives in a small local
 * array (never aliased with the output, so the compiler vectorises the lane loop) while the
 * kernel walks through time; every access streams through contiguous memory.
 *
 * dot (optional, (B, L, d)): also accumulate acc[j] += sum_{b,t} out[b,t,j] * conj(dot[b,t',j])
 * with t' = t + 1 (forward) or t - 1 (reverse): the gradient of a shared lam, computed in the
 * same pass as the adjoint scan. Partial sums over time are kept in T per batch row and added
 * into the double accumulator acc once per row.
 */
#include <stddef.h>
#include <string.h>

#define TILE 1024 /* reals per tile (a whole time step up to d = 1024 real or 512 complex) */

/* Hardware prefetchers follow descending streams poorly on some CPUs (measured: the reverse
 * scan ran 2-4x slower than the forward one on an AMD EPYC), so the reverse scan prefetches the
 * rows it will touch PREFETCH_BYTES ahead. */
#define PREFETCH_BYTES 4096
#if defined(__GNUC__) || defined(__clang__)
#define PF(p, rw) __builtin_prefetch((p), (rw), 3)
#else
#define PF(p, rw) ((void)0)
#endif
#define PREFETCH_ROWS(ut, ot, db, t, w, ahead)                                                \
    {                                                                                         \
        long step = 64 / (long)sizeof(*ut);                                                   \
        for (long j = 0; j < w; j += step) {                                                  \
            PF(ut - ahead * n + j, 0);                                                        \
            PF(ot - ahead * n + j, 1);                                                        \
            if (db) PF(db + (t - 1 - ahead) * n + j, 0);                                      \
        }                                                                                     \
    }

/* One tile [j0, j0 + w) of batch row b; CPLX selects the complex product. */
#define SCAN_BODY(T, CPLX)                                                                    \
    T h[TILE], part[TILE];                                                                    \
    for (long b = 0; b < B; ++b) {                                                            \
        for (long j0 = 0; j0 < n; j0 += TILE) {                                               \
            long w = n - j0 < TILE ? n - j0 : TILE;                                           \
            const T *ub = u + b * L * n + j0;                                                 \
            T *ob = out + b * L * n + j0;                                                     \
            const T *lb = lam_full ? lam + b * L * n + j0 : lam + j0;                         \
            const T *db = dot ? dot + b * L * n + j0 : NULL;                                  \
            long ahead = (PREFETCH_BYTES / (long)sizeof(T) + w - 1) / w;                      \
            if (db) memset(part, 0, sizeof(part));                                            \
            for (long s = 0; s < L; ++s) {                                                    \
                long t = reverse ? L - 1 - s : s;                                             \
                const T *restrict ut = ub + t * n;                                            \
                const T *restrict lt = lam_full ? lb + t * n : lb;                            \
                T *restrict ot = ob + t * n;                                                  \
                if (reverse && t > ahead) PREFETCH_ROWS (ut, ot, db, t, w, ahead)            \
                if (s == 0) {                                                                 \
                    if (h0) {                                                                 \
                        memcpy(h, h0 + b * n + j0, (size_t)w * sizeof(T));                    \
                        STEP(CPLX)                                                            \
                    } else {                                                                  \
                        memcpy(h, ut, (size_t)w * sizeof(T));                                 \
                    }                                                                         \
                } else {                                                                      \
                    STEP(CPLX)                                                                \
                }                                                                             \
                memcpy(ot, h, (size_t)w * sizeof(T));                                         \
                long tn = reverse ? t - 1 : t + 1;                                            \
                if (db && tn >= 0 && tn < L) {                                                \
                    const T *restrict dn = db + tn * n;                                       \
                    DOT(CPLX)                                                                 \
                }                                                                             \
            }                                                                                 \
            if (db)                                                                           \
                for (long j = 0; j < w; ++j) acc[j0 + j] += (double)part[j];                  \
        }                                                                                     \
    }

#define STEP(CPLX) STEP_##CPLX
#define STEP_0 for (long j = 0; j < w; ++j) h[j] = lt[j] * h[j] + ut[j];
#define STEP_1                                                                                \
    for (long j = 0; j < w; j += 2) {                                                         \
        elem lr = lt[j], li = lt[j + 1], pr = h[j], pi = h[j + 1];                            \
        h[j] = (lr * pr - li * pi) + ut[j];                                                   \
        h[j + 1] = (lr * pi + li * pr) + ut[j + 1];                                           \
    }
#define DOT(CPLX) DOT_##CPLX
#define DOT_0 for (long j = 0; j < w; ++j) part[j] += h[j] * dn[j];
#define DOT_1                                                                                 \
    for (long j = 0; j < w; j += 2) {                                                         \
        part[j] += h[j] * dn[j] + h[j + 1] * dn[j + 1];                                       \
        part[j + 1] += h[j + 1] * dn[j] - h[j] * dn[j + 1];                                   \
    }

#define KERNEL(NAME, T, CPLX, WIDTH)                                                          \
    void NAME(const T *restrict lam, int lam_full, const T *restrict u,                       \
              const T *restrict h0, T *restrict out, long B, long L, long d, int reverse,     \
              const T *restrict dot, double *restrict acc)                                    \
    {                                                                                         \
        typedef T elem;                                                                       \
        (void)sizeof(elem);                                                                   \
        long n = WIDTH * d; /* reals per time step */                                         \
        SCAN_BODY(T, CPLX)                                                                    \
    }

KERNEL(scan_f32, float, 0, 1)
KERNEL(scan_f64, double, 0, 1)
KERNEL(scan_c64, float, 1, 2)
KERNEL(scan_c128, double, 1, 2)
