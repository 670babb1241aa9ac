/* BLIS for the engine: the runtime object of every GEMM (thread count, no threaded sup
 * path: see gemm.h) and the choice of the kernel set (cz_engine_init, engine.h). */
#include "chainz/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

rntm_t cz_gemm_rntm, cz_gemm_rntm_small;
int cz_gemm_rntm_ready;

void cz_gemm_runtime_setup(int threads)
{
    bli_rntm_init(&cz_gemm_rntm);
    bli_rntm_set_num_threads(threads > 0 ? threads : 1, &cz_gemm_rntm);
    bli_rntm_disable_l3_sup(&cz_gemm_rntm); /* why: see gemm.h */
    bli_rntm_init(&cz_gemm_rntm_small);
    bli_rntm_set_num_threads(1, &cz_gemm_rntm_small);
    cz_gemm_rntm_ready = 1;
}

/* also BLIS's global count, for BLIS calls outside the engine (bench_step's sgemm reference
 * must run on as many threads as the step it is compared with) */
void cz_engine_set_threads(int n)
{
    cz_gemm_runtime_setup(n);
    bli_thread_set_num_threads(n > 0 ? n : 1);
}

int cz_engine_threads(void)
{
    return cz_gemm_rntm_ready ? (int)bli_rntm_num_threads(&cz_gemm_rntm) : 1;
}

int cz_par_threads(size_t work) { return work >= CZ_PAR_MIN_WORK ? cz_engine_threads() : 1; }

static char kernel_choice[200] = "BLIS's choice for this CPU";

const char *cz_engine_blas_arch(void) { return bli_arch_string(bli_arch_query_id()); }
const char *cz_engine_blas_choice(void) { return kernel_choice; }
const char *cz_engine_blas_version(void) { return bli_info_get_version_str(); }

#if defined(__x86_64__) && defined(__GNUC__)
/* What an x86-64 kernel set needs from the CPU (and the OS, which gcc's test includes). */
static int cpu_runs(const char *name)
{
    __builtin_cpu_init();
    if (!strcmp(name, "generic")) return 1;
    if (!strcmp(name, "skx"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (!strcmp(name, "haswell") || !strcmp(name, "zen") || !strcmp(name, "zen2") ||
        !strcmp(name, "zen3"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(name, "sandybridge")) return __builtin_cpu_supports("avx");
    if (!strcmp(name, "penryn")) return __builtin_cpu_supports("ssse3");
    if (!strcmp(name, "excavator") || !strcmp(name, "steamroller") || !strcmp(name, "piledriver"))
        return __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma");
    if (!strcmp(name, "bulldozer")) return __builtin_cpu_supports("fma4");
    return 0; /* knl and the rest: not offered */
}

/* BLIS 0.9.0's own CPU test (frame/base/bli_cpuid.c, not exported by the shared
 * library) ends in its generic kernels for AMD families other than 0x15/0x17/0x19
 * (e.g. Zen 5, family 0x1A), for other vendors, and for Intel CPUs before SSSE3. Only
 * there does chainz choose instead, because generic kernels are about 5x slower
 * (docs/BENCHMARKS.md); everywhere else BLIS's choice stands. */
static int blis090_falls_back_to_generic(char *cpu, size_t len)
{
    unsigned a, b, c, d;
    char vendor[13] = {0};
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    snprintf(cpu, len, "%s family 0x%x", vendor, family);
    if (!strcmp(vendor, "GenuineIntel")) return !cpu_runs("penryn");
    if (!strcmp(vendor, "AuthenticAMD")) return family != 0x15 && family != 0x17 && family != 0x19;
    return 1;
}
#else
static int cpu_runs(const char *name) { return !strcmp(name, "generic"); }
static int blis090_falls_back_to_generic(char *cpu, size_t len)
{
    snprintf(cpu, len, "this CPU");
    return 0;
}
#endif

static int arch_id_of(const char *name)
{
    for (int id = 0; id < (int)BLIS_NUM_ARCHS; id++)
        if (!strcmp(bli_arch_string((arch_t)id), name)) return id;
    return -1;
}

int cz_engine_init(const char *kernels, cz_error *err)
{
    static int done;
    if (done) return 0; /* BLIS latches its kernel set at the first init */
    const char *user_env = getenv("BLIS_ARCH_TYPE");
    char saved[32] = "", cpu[64] = "this CPU", id[16];
    int force = -1;
    if (user_env) snprintf(saved, sizeof saved, "%s", user_env);
    if (kernels && !*kernels)
        return cz_error_set(err, CZ_EINVAL, "--kernels '': give auto or a kernel set name (e.g. haswell)");
    if (kernels && strcmp(kernels, "auto")) {
        force = arch_id_of(kernels);
        if (force < 0 || !cpu_runs(kernels)) {
            char list[256] = "";
            for (int i = 0; i < (int)BLIS_NUM_ARCHS; i++)
                if (cpu_runs(bli_arch_string((arch_t)i)) && strlen(list) + 16 < sizeof list)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s, ",
                             bli_arch_string((arch_t)i));
            return cz_error_set(err, CZ_EINVAL, "--kernels %s: %s; this CPU runs %sor auto", kernels,
                                force < 0 ? "not a BLIS kernel set" : "this CPU lacks its instructions",
                                list);
        }
        snprintf(kernel_choice, sizeof kernel_choice, "--kernels %s", kernels);
    } else if (user_env) {
        /* BLIS itself reads any text as a number (empty as 0 = skx) and dies of SIGILL
         * or an abort on a kernel set the CPU cannot run or the library lacks */
        char *end;
        long v = strtol(user_env, &end, 10);
        const char *name = (end != user_env && !*end && v >= 0 && v < (long)BLIS_NUM_ARCHS)
                               ? bli_arch_string((arch_t)v) : NULL;
        if (!name || !cpu_runs(name))
            return cz_error_set(err, CZ_EINVAL,
                                "BLIS_ARCH_TYPE='%s' in the environment: %s%s%s (unset it, or use "
                                "--kernels NAME)",
                                user_env, name ? "kernel set " : "not a BLIS kernel set id",
                                name ? name : "", name ? " needs instructions this CPU lacks" : "");
        snprintf(kernel_choice, sizeof kernel_choice, "BLIS_ARCH_TYPE=%s from the environment",
                 user_env);
    } else if (!strcmp(bli_info_get_version_str(), "0.9.0") &&
               blis090_falls_back_to_generic(cpu, sizeof cpu)) {
        const char *pick = cpu_runs("skx") ? "skx" : cpu_runs("haswell") ? "haswell" : NULL;
        if (pick) {
            force = arch_id_of(pick);
            snprintf(kernel_choice, sizeof kernel_choice,
                     "BLIS 0.9.0 would use its generic kernels on %s; chainz uses %s (about 5x faster)",
                     cpu, pick);
        }
    }
    if (force >= 0) {
        /* BLIS reads BLIS_ARCH_TYPE once, in bli_init; the variable is put back at once so
         * that it does not leak into processes this one starts */
        snprintf(id, sizeof id, "%d", force);
        setenv("BLIS_ARCH_TYPE", id, 1);
    }
    bli_init();
    if (force >= 0) {
        if (user_env) setenv("BLIS_ARCH_TYPE", saved, 1);
        else unsetenv("BLIS_ARCH_TYPE");
    }
    if (!cz_gemm_rntm_ready) cz_gemm_runtime_setup(1);
    done = 1;
    return 0;
}
