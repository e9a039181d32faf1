/*
 * cpu_features.c — the instruction sets the kernels may use (see
 * cpu_features.h).
 */
#include "cpu_features.h"

#include <pthread.h>
#ifdef CB_HAVE_X86_KERNELS
#include <cpuid.h>
#endif
#include <stdlib.h>
#include <string.h>

static cb_cpu_features
detect(void)
{
	cb_cpu_features f;
	const char *want = getenv("CAMEMBERT_KERNELS");

	memset(&f, 0, sizeof(f));
#ifdef CB_HAVE_X86_KERNELS
	{
		unsigned int a,
					b,
					c,
					d,
					b7 = 0,
					c7 = 0,
					a71 = 0,
					max,
					c1;
		unsigned long long xcr0 = 0;
		bool		os_avx,
					os_avx512;

		max = __get_cpuid_max(0, NULL);
		if (max < 1 || !__get_cpuid(1, &a, &b, &c, &d))
			return f;
		c1 = c;
		/* the OS saves the AVX (and AVX-512) registers: OSXSAVE, then XCR0 */
		if (c1 & (1u << 27))
		{
			unsigned int lo,
						hi;

			__asm__ volatile ("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
			xcr0 = ((unsigned long long) hi << 32) | lo;
		}
		os_avx = (xcr0 & 0x6) == 0x6 && (c1 & (1u << 28));
		os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
		if (max >= 7)
		{
			__cpuid_count(7, 0, a, b7, c7, d);
			__cpuid_count(7, 1, a71, b, c, d);
		}
		f.avx2 = os_avx && (b7 & (1u << 5)) && (c1 & (1u << 12)) && (c1 & (1u << 29));
		f.avx512 = f.avx2 && os_avx512 && (b7 & (1u << 16)) && (b7 & (1u << 17)) &&
			(b7 & (1u << 30)) && (b7 & (1u << 31));
		f.avx512_vnni = f.avx512 && (c7 & (1u << 11));
		f.avx512_bf16 = f.avx512 && (a71 & (1u << 5));
		f.avx_vnni = f.avx2 && (a71 & (1u << 4));
	}
#endif
	/* the environment may only take away */
	if (want != NULL && strcmp(want, "blas") == 0)
		memset(&f, 0, sizeof(f));
	else if (want != NULL && strcmp(want, "avx2") == 0)
		f.avx512 = f.avx512_bf16 = f.avx512_vnni = false;
	return f;
}

static cb_cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void
detect_once(void)
{
	features = detect();
}

const cb_cpu_features *
cb_cpu(void)
{
	pthread_once(&features_once, detect_once);
	return &features;
}
