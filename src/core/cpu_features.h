/*
 * cpu_features.h — which instruction sets the kernels may use.
 *
 * Read once from the CPU (cpuid through __builtin_cpu_supports), then
 * narrowed by CAMEMBERT_KERNELS in the environment, for tests and
 * benchmarks that force a code path:
 *
 *     avx512   everything the CPU has (the default)
 *     avx2     no AVX-512 of any kind: float32 products on AVX2+FMA, int8
 *              products on AVX-VNNI when the CPU has it, bfloat16 products
 *              on the portable path
 *     blas     no x86 extension at all: float32 products through
 *              cblas_sgemm, bfloat16 and int8 on the portable C paths
 *
 * A value never enables what the CPU lacks, so no setting can cause SIGILL.
 * Code compiled for an extension (target attributes) is only ever called
 * when its flag here is true.
 */
#ifndef CB_CPU_FEATURES_H
#define CB_CPU_FEATURES_H

#include <stdbool.h>

/* x86-64 with GCC or clang: kernels for AVX-512 / AVX2 / VNNI / BF16 are
 * compiled with target attributes and chosen at run time.
 * -DCB_NO_X86_KERNELS builds the portable code only. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(CB_NO_X86_KERNELS)
#define CB_HAVE_X86_KERNELS 1
#endif

typedef struct cb_cpu_features
{
	bool		avx2;			/* AVX2 + FMA + F16C */
	bool		avx512;			/* AVX512F + BW + VL + DQ */
	bool		avx512_bf16;	/* AVX512_BF16 (and avx512) */
	bool		avx512_vnni;	/* AVX512_VNNI (and avx512) */
	bool		avx_vnni;		/* AVX-VNNI, 256-bit VEX (and avx2) */
} cb_cpu_features;

/* The instruction sets in use (the CPU's, narrowed by CAMEMBERT_KERNELS). */
const cb_cpu_features *cb_cpu(void);

#endif							/* CB_CPU_FEATURES_H */
