/* `chainz prep corrupt`: options, messages and exit codes of the image-corruption
 * generator; the work is in src/prep/corrupt.c (include/chainz/corrupt.h). cmd_prep.c
 * hands over when the format is "corrupt". */
#include "chainz/corrupt.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORRUPT_DEFAULT_SEED 1

static void corrupt_usage(FILE *f)
{
    fprintf(f,
"usage: chainz prep corrupt IN.h5 -o OUT.h5 --kind K --severity S [--seed N] [--image RxC]\n"
"       chainz prep corrupt IN.h5 -o PREFIX --all-kinds [--severities A-B] [--seed N]\n"
"\n"
"Applies one seeded corruption to every image of a chainz-data image set (as written by\n"
"chainz prep idx: features in [0, 1], attributes image_rows / image_cols), clips to\n"
"[0, 1] and writes a new set with the same labels (complete, or not at all). In the\n"
"manner of CIFAR-10-C (Hendrycks and Dietterich 2019); docs/PREP.md has the table.\n"
"\n"
"  -o, --output OUT      output file (required); with --all-kinds a prefix: files\n"
"                        PREFIX-<kind>-<severity>.h5 (a .h5 suffix of PREFIX is dropped).\n"
"      --kind K          gaussian_noise  sigma 0.08 0.12 0.18 0.26 0.38\n"
"                        gaussian_blur   sigma 0.5 0.75 1 1.25 1.5 pixels (edges clamped)\n"
"                        contrast        (x - mean) * c + mean, c 0.75 0.5 0.4 0.3 0.15\n"
"                        pixelate        mean of b x b blocks, b 2 3 4 5 7\n"
"                        impulse_noise   salt and pepper on a fraction 0.03 0.06 0.09\n"
"                                        0.17 0.27 of the pixels\n"
"      --severity S      1..5 (the columns above).\n"
"      --seed N          unsigned 64-bit seed of the noise kinds; the noise of an image\n"
"                        depends only on (seed, kind, severity, its row): the same bytes\n"
"                        on any machine. Default: %d.\n"
"      --image RxC       the image shape, for a file without image_rows / image_cols\n"
"                        (R*C must be d). Default: from the file.\n"
"      --all-kinds       every kind (or only --kind K) at every severity of --severities.\n"
"      --severities A-B  with --all-kinds: severities A..B (or one, S). Default: 1-5.\n"
"  -h, --help            print this help and exit\n"
"\n"
"Prints one line per output: images, kind, severity, mean |corrupted - clean|, seconds.\n"
"Exit status: 0 done, 1 usage or input error (message on stderr), 2 out of memory.\n",
            CORRUPT_DEFAULT_SEED);
}

static int corrupt_usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "chainz prep corrupt: %s%s%s%s\n(chainz prep corrupt --help for the options)\n", msg,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return 1;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (!*s || *e || errno == ERANGE || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int run_one(const char *in, const char *out, const cz_corrupt_opts *o)
{
    cz_corrupt_report rep;
    cz_error err = {0};
    int rc = cz_corrupt_file(in, out, o, &rep, &err);
    if (rc) {
        fprintf(stderr, "chainz prep corrupt: %s\n", err.msg);
        return rc == CZ_ENOMEM ? 2 : 1;
    }
    char seed[48] = ", deterministic";
    if (cz_corrupt_is_random(o->kind)) snprintf(seed, sizeof seed, ", seed %llu", (unsigned long long)o->seed);
    printf("chainz prep corrupt: %zu images %zux%zu, %s severity %d (%s %g)%s, mean |change| %.6f -> %s; "
           "%.2f s\n",
           rep.n, rep.rows, rep.cols, cz_corrupt_kind_name(o->kind), o->severity,
           cz_corrupt_param_name(o->kind), cz_corrupt_param(o->kind, o->severity), seed,
           rep.mean_abs_change, out, rep.seconds);
    return 0;
}

int cz_cmd_prep_corrupt(int argc, char **argv)
{
    enum { O_KIND = 256, O_SEVERITY, O_SEED, O_IMAGE, O_ALL, O_SEVERITIES };
    static const struct option long_opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"kind", required_argument, NULL, O_KIND},
        {"severity", required_argument, NULL, O_SEVERITY},
        {"seed", required_argument, NULL, O_SEED},
        {"image", required_argument, NULL, O_IMAGE},
        {"all-kinds", no_argument, NULL, O_ALL},
        {"severities", required_argument, NULL, O_SEVERITIES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *kind_name = NULL, *sev_arg = NULL, *sevs_arg = NULL;
    cz_corrupt_opts o = {.kind = CZ_CORRUPT_GAUSSIAN_NOISE, .severity = 0, .seed = CORRUPT_DEFAULT_SEED};
    int all = 0, c;
    long sev_lo = 1, sev_hi = CZ_CORRUPT_SEVERITIES;
#ifdef __GLIBC__
    optind = 0;
#else
    optind = 1;
#endif
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_KIND: kind_name = optarg; break;
        case O_SEVERITY: sev_arg = optarg; break;
        case O_SEED: {
            char *e;
            errno = 0;
            unsigned long long v = strtoull(optarg, &e, 10);
            if (!*optarg || *optarg == '-' || *optarg == '+' || *e || errno == ERANGE)
                return corrupt_usage_error("--seed needs an unsigned 64-bit integer, got", optarg);
            o.seed = (uint64_t)v;
            break;
        }
        case O_IMAGE: {
            unsigned long r, cc;
            char tail;
            if (sscanf(optarg, "%lux%lu%c", &r, &cc, &tail) != 2 || r < 1 || cc < 1 || r > 65536 ||
                cc > 65536 || optarg[0] == '-' || strchr(optarg, ' '))
                return corrupt_usage_error("--image needs ROWSxCOLS (e.g. 28x28, 1..65536 each), got", optarg);
            o.image_rows = r;
            o.image_cols = cc;
            break;
        }
        case O_ALL: all = 1; break;
        case O_SEVERITIES: sevs_arg = optarg; break;
        case 'h': corrupt_usage(stdout); return 0;
        case ':': return corrupt_usage_error("missing value for option", argv[optind - 1]);
        default: return corrupt_usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return corrupt_usage_error("expected exactly one input file IN.h5", NULL);
    const char *in = argv[optind];
    if (!out) return corrupt_usage_error("missing -o OUT.h5", NULL);
    if (kind_name && cz_corrupt_kind_parse(kind_name, &o.kind)) {
        fprintf(stderr, "chainz prep corrupt: %s: unknown --kind '%s': expected one of %s\n", in, kind_name,
                cz_corrupt_kind_list());
        return 1;
    }
    if (sev_arg) {
        long s;
        if (parse_int(sev_arg, 1, CZ_CORRUPT_SEVERITIES, &s)) {
            fprintf(stderr, "chainz prep corrupt: %s: --severity '%s': expected an integer 1..%d\n", in,
                    sev_arg, CZ_CORRUPT_SEVERITIES);
            return 1;
        }
        o.severity = (int)s;
    }
    if (!all) {
        if (sevs_arg) return corrupt_usage_error("--severities goes with --all-kinds", NULL);
        if (!kind_name) return corrupt_usage_error("missing --kind K (or --all-kinds)", NULL);
        if (!sev_arg) return corrupt_usage_error("missing --severity S (1..5)", NULL);
        int st = run_one(in, out, &o);
        if (st) return st;
    } else {
    if (all && sev_arg) return corrupt_usage_error("--all-kinds takes --severities A-B, not --severity", NULL);
    if (sevs_arg) {
        char a[16], b[16];
        const char *dash = strchr(sevs_arg, '-');
        size_t la = dash ? (size_t)(dash - sevs_arg) : strlen(sevs_arg);
        if (la >= sizeof a || (dash && strlen(dash + 1) >= sizeof b)) la = sizeof a; /* refused below */
        int okp = la < sizeof a;
        if (okp) {
            memcpy(a, sevs_arg, la);
            a[la] = '\0';
            snprintf(b, sizeof b, "%s", dash ? dash + 1 : a);
            okp = !parse_int(a, 1, CZ_CORRUPT_SEVERITIES, &sev_lo) &&
                  !parse_int(b, 1, CZ_CORRUPT_SEVERITIES, &sev_hi) && sev_lo <= sev_hi;
        }
        if (!okp) {
            fprintf(stderr, "chainz prep corrupt: %s: --severities '%s': expected A-B or S with 1 <= A <= B <= %d\n",
                    in, sevs_arg, CZ_CORRUPT_SEVERITIES);
            return 1;
        }
    }
    size_t plen = strlen(out);
    if (plen > 3 && !strcmp(out + plen - 3, ".h5")) plen -= 3;
    int k0 = kind_name ? (int)o.kind : 0, k1 = kind_name ? (int)o.kind : CZ_CORRUPT_KINDS - 1;
    for (int k = k0; k <= k1; k++)
        for (long s = sev_lo; s <= sev_hi; s++) {
            char path[4200];
            int w = snprintf(path, sizeof path, "%.*s-%s-%ld.h5", (int)plen, out,
                             cz_corrupt_kind_name((cz_corrupt_kind)k), s);
            if (w < 0 || (size_t)w >= sizeof path) return corrupt_usage_error("output prefix too long:", out);
            o.kind = (cz_corrupt_kind)k;
            o.severity = (int)s;
            int st = run_one(in, path, &o);
            if (st) return st;
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "chainz prep corrupt: cannot write to standard output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
