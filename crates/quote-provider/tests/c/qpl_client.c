/*
 * A C client of libdcap_quoteprov.so.1 that loads it as Intel's DCAP quote library and quote
 * verification library do: dlopen("libdcap_quoteprov.so.1", RTLD_LAZY), then dlsym for each
 * function. Built by tests/c_program.rs with the system C compiler against the generated header.
 *
 * Usage: qpl_client MODE [ARGS]
 *   config QEID CPUSVN PCESVN PCEID OUT   sgx_ql_get_quote_config (hex QE id and CPUSVN, decimal
 *                                         PCESVN and PCE id, no encrypted PPID); writes the cert
 *                                         data (cert_data_size bytes) to OUT, then frees.
 *   collateral FMSPC CA OUTDIR            sgx_ql_get_quote_verification_collateral; writes every
 *                                         buffer (size bytes each) to OUTDIR/<field>, then frees.
 *   collateral_params FMSPC CA OUTDIR     the same through ..._with_params with a custom parameter.
 *   tdx FMSPC CA OUTDIR                   tdx_ql_get_quote_verification_collateral, written as above,
 *                                         freed with tdx_ql_free_quote_verification_collateral.
 *   clear CACHE_TYPE                      sgx_qpl_clear_cache (decimal bitmask).
 *   global [FMSPC CA OUTDIR]              sgx_qpl_global_cleanup, _init, _init, _cleanup, _cleanup,
 *                                         _init; with arguments, then the collateral as above.
 *   qve OUTDIR                            sgx_ql_get_qve_identity; writes both buffers.
 *   rootcrl OUT                           sgx_ql_get_root_ca_crl; writes the CRL.
 *   params                                every NULL-pointer and size check; prints each status.
 *   logging FMSPC                         registers a callback (two-argument form), makes a call
 *                                         that fails, then the one-argument form and
 *                                         sgx_ql_set_logging_function; prints what the callback
 *                                         received (messages go to stderr as "QPLLOG <level> ...").
 *
 * Output: one "name key=value ..." line per call; statuses in hex. Exit code 0 when the program ran
 * to its end (statuses are judged by the test), 2 on usage or loading errors.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgx_default_quote_provider.h"

/* Intel's layouts (sgx_ql_lib_common.h): two packed structures and one naturally aligned. */
_Static_assert(sizeof(sgx_ql_pck_cert_id_t) == 43, "sgx_ql_pck_cert_id_t is 43 bytes");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, qe3_id_size) == 8, "qe3_id_size at 8");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, p_platform_cpu_svn) == 12, "cpu svn at 12");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, p_platform_pce_isv_svn) == 20, "pce svn at 20");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, p_encrypted_ppid) == 28, "ppid at 28");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, encrypted_ppid_size) == 36, "ppid size at 36");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, crypto_suite) == 40, "crypto_suite at 40");
_Static_assert(offsetof(sgx_ql_pck_cert_id_t, pce_id) == 41, "pce_id at 41");
_Static_assert(sizeof(sgx_ql_config_t) == 34, "sgx_ql_config_t is 34 bytes");
_Static_assert(offsetof(sgx_ql_config_t, cert_cpu_svn) == 4, "cert_cpu_svn at 4");
_Static_assert(offsetof(sgx_ql_config_t, cert_pce_isv_svn) == 20, "cert_pce_isv_svn at 20");
_Static_assert(offsetof(sgx_ql_config_t, cert_data_size) == 22, "cert_data_size at 22");
_Static_assert(offsetof(sgx_ql_config_t, p_cert_data) == 26, "p_cert_data at 26");
_Static_assert(sizeof(sgx_ql_qve_collateral_t) == 120, "sgx_ql_qve_collateral_t is 120 bytes");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, tee_type) == 4, "tee_type at 4");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, pck_crl_issuer_chain) == 8, "at 8");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, pck_crl_issuer_chain_size) == 16, "at 16");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, root_ca_crl) == 24, "at 24");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, root_ca_crl_size) == 32, "at 32");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, pck_crl) == 40, "at 40");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, pck_crl_size) == 48, "at 48");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, tcb_info_issuer_chain) == 56, "at 56");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, tcb_info_issuer_chain_size) == 64, "at 64");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, tcb_info) == 72, "at 72");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, tcb_info_size) == 80, "at 80");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, qe_identity_issuer_chain) == 88, "at 88");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, qe_identity_issuer_chain_size) == 96, "at 96");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, qe_identity) == 104, "at 104");
_Static_assert(offsetof(sgx_ql_qve_collateral_t, qe_identity_size) == 112, "at 112");

typedef quote3_error_t (*get_config_fn)(const sgx_ql_pck_cert_id_t *, sgx_ql_config_t **);
typedef quote3_error_t (*free_config_fn)(sgx_ql_config_t *);
typedef quote3_error_t (*get_collateral_fn)(const uint8_t *, uint16_t, const char *,
                                            sgx_ql_qve_collateral_t **);
typedef quote3_error_t (*get_collateral_params_fn)(const uint8_t *, uint16_t, const char *,
                                                   const void *, uint16_t,
                                                   sgx_ql_qve_collateral_t **);
typedef quote3_error_t (*free_collateral_fn)(sgx_ql_qve_collateral_t *);
typedef quote3_error_t (*get_tdx_collateral_fn)(const uint8_t *, uint16_t, const char *,
                                                tdx_ql_qv_collateral_t **);
typedef quote3_error_t (*free_tdx_collateral_fn)(tdx_ql_qv_collateral_t *);
typedef quote3_error_t (*clear_cache_fn)(uint32_t);
typedef quote3_error_t (*global_fn)(void);
typedef quote3_error_t (*get_qve_fn)(char **, uint32_t *, char **, uint32_t *);
typedef quote3_error_t (*free_qve_fn)(char *, char *);
typedef quote3_error_t (*get_root_crl_fn)(uint8_t **, uint16_t *);
typedef quote3_error_t (*free_root_crl_fn)(uint8_t *);
typedef quote3_error_t (*set_callback_fn)(sgx_ql_logging_callback_t, sgx_ql_log_level_t);
/* The header of older releases declares the callback setter with one argument. */
typedef quote3_error_t (*set_callback1_fn)(sgx_ql_logging_callback_t);
typedef quote3_error_t (*set_function_fn)(sgx_ql_logging_callback_t);

static get_config_fn p_get_config;
static free_config_fn p_free_config;
static get_collateral_fn p_get_collateral;
static get_collateral_params_fn p_get_collateral_params;
static free_collateral_fn p_free_collateral;
static get_tdx_collateral_fn p_get_tdx_collateral;
static free_tdx_collateral_fn p_free_tdx_collateral;
static clear_cache_fn p_clear_cache;
static global_fn p_global_init;
static global_fn p_global_cleanup;
static get_qve_fn p_get_qve;
static free_qve_fn p_free_qve;
static get_root_crl_fn p_get_root_crl;
static free_root_crl_fn p_free_root_crl;
static set_callback_fn p_set_callback;
static set_function_fn p_set_function;
static void *handle;

static int load(void)
{
    handle = dlopen("libdcap_quoteprov.so.1", RTLD_LAZY);
    if (handle == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    p_get_config = (get_config_fn)dlsym(handle, "sgx_ql_get_quote_config");
    p_free_config = (free_config_fn)dlsym(handle, "sgx_ql_free_quote_config");
    p_get_collateral = (get_collateral_fn)dlsym(handle, "sgx_ql_get_quote_verification_collateral");
    p_get_collateral_params = (get_collateral_params_fn)dlsym(
        handle, "sgx_ql_get_quote_verification_collateral_with_params");
    p_free_collateral =
        (free_collateral_fn)dlsym(handle, "sgx_ql_free_quote_verification_collateral");
    p_get_qve = (get_qve_fn)dlsym(handle, "sgx_ql_get_qve_identity");
    p_free_qve = (free_qve_fn)dlsym(handle, "sgx_ql_free_qve_identity");
    p_get_root_crl = (get_root_crl_fn)dlsym(handle, "sgx_ql_get_root_ca_crl");
    p_free_root_crl = (free_root_crl_fn)dlsym(handle, "sgx_ql_free_root_ca_crl");
    p_set_callback = (set_callback_fn)dlsym(handle, "sgx_ql_set_logging_callback");
    p_set_function = (set_function_fn)dlsym(handle, "sgx_ql_set_logging_function");
    p_get_tdx_collateral =
        (get_tdx_collateral_fn)dlsym(handle, "tdx_ql_get_quote_verification_collateral");
    p_free_tdx_collateral =
        (free_tdx_collateral_fn)dlsym(handle, "tdx_ql_free_quote_verification_collateral");
    p_clear_cache = (clear_cache_fn)dlsym(handle, "sgx_qpl_clear_cache");
    p_global_init = (global_fn)dlsym(handle, "sgx_qpl_global_init");
    p_global_cleanup = (global_fn)dlsym(handle, "sgx_qpl_global_cleanup");
    if (!p_get_config || !p_free_config || !p_get_collateral || !p_get_collateral_params ||
        !p_free_collateral || !p_get_qve || !p_free_qve || !p_get_root_crl || !p_free_root_crl ||
        !p_set_callback || !p_set_function || !p_get_tdx_collateral || !p_free_tdx_collateral ||
        !p_clear_cache || !p_global_init || !p_global_cleanup) {
        fprintf(stderr, "a quote provider symbol is missing\n");
        return -1;
    }
    printf("load mode=dlopen\n");
    return 0;
}

static int unhex(const char *text, uint8_t *out, size_t len)
{
    if (strlen(text) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1)
            return -1;
        out[i] = (uint8_t)byte;
    }
    return 0;
}

static void print_hex(const char *key, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    printf(" %s=", key);
    for (size_t i = 0; i < len; i++)
        printf("%02x", bytes[i]);
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    if (name != NULL)
        snprintf(path, sizeof path, "%s/%s", dir, name);
    else
        snprintf(path, sizeof path, "%s", dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    if (len > 0 && fwrite(data, 1, len, f) != len) {
        perror(path);
        fclose(f);
        return -1;
    }
    return fclose(f);
}

static int do_config(char **argv)
{
    uint8_t qe_id[16];
    sgx_cpu_svn_t cpu_svn;
    if (unhex(argv[0], qe_id, sizeof qe_id) || unhex(argv[1], cpu_svn.svn, sizeof cpu_svn.svn))
        return 2;
    sgx_isv_svn_t pce_svn = (sgx_isv_svn_t)strtoul(argv[2], NULL, 10);
    sgx_ql_pck_cert_id_t id;
    memset(&id, 0, sizeof id);
    id.p_qe3_id = qe_id;
    id.qe3_id_size = sizeof qe_id;
    id.p_platform_cpu_svn = &cpu_svn;
    id.p_platform_pce_isv_svn = &pce_svn;
    id.p_encrypted_ppid = NULL;
    id.encrypted_ppid_size = 0;
    id.crypto_suite = 1;
    id.pce_id = (uint16_t)strtoul(argv[3], NULL, 10);
    sgx_ql_config_t *config = NULL;
    quote3_error_t status = p_get_config(&id, &config);
    printf("quote_config status=0x%04x", status);
    if (status == SGX_QL_SUCCESS) {
        const uint8_t *block = (const uint8_t *)config;
        uint32_t size = config->cert_data_size;
        printf(" version=%u pcesvn=%u size=%u data_follows_struct=%d last_byte=%u",
               config->version, config->cert_pce_isv_svn, size,
               config->p_cert_data == block + sizeof(sgx_ql_config_t),
               config->p_cert_data[size - 1]);
        print_hex("cpusvn", config->cert_cpu_svn.svn, sizeof config->cert_cpu_svn.svn);
        if (write_file(argv[4], NULL, config->p_cert_data, size))
            return 2;
        printf(" free=0x%04x", p_free_config(config));
    }
    printf("\n");
    return 0;
}

static int dump_collateral(const sgx_ql_qve_collateral_t *c, const char *dir)
{
    struct {
        const char *name;
        const char *data;
        uint32_t size;
    } parts[] = {
        {"pck_crl_issuer_chain", c->pck_crl_issuer_chain, c->pck_crl_issuer_chain_size},
        {"root_ca_crl", c->root_ca_crl, c->root_ca_crl_size},
        {"pck_crl", c->pck_crl, c->pck_crl_size},
        {"tcb_info_issuer_chain", c->tcb_info_issuer_chain, c->tcb_info_issuer_chain_size},
        {"tcb_info", c->tcb_info, c->tcb_info_size},
        {"qe_identity_issuer_chain", c->qe_identity_issuer_chain, c->qe_identity_issuer_chain_size},
        {"qe_identity", c->qe_identity, c->qe_identity_size},
    };
    /* Read the version the way Intel's header spells it: major_version at offset 0, minor at 2. */
    uint16_t halves[2];
    memcpy(halves, &c->version, sizeof halves);
    printf(" version=0x%08x major=%u minor=%u tee_type=%u", c->version, halves[0], halves[1],
           c->tee_type);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        printf(" %s_size=%u", parts[i].name, parts[i].size);
        if (write_file(dir, parts[i].name, parts[i].data, parts[i].size))
            return -1;
    }
    return 0;
}

static int do_collateral(char **argv, int with_params)
{
    uint8_t fmspc[6];
    if (unhex(argv[0], fmspc, sizeof fmspc))
        return 2;
    sgx_ql_qve_collateral_t *collateral = NULL;
    quote3_error_t status;
    if (with_params) {
        static const char param[] = "{\"baseline\":\"2024-01-01\"}";
        status = p_get_collateral_params(fmspc, sizeof fmspc, argv[1], param,
                                         (uint16_t)(sizeof param - 1), &collateral);
    } else {
        status = p_get_collateral(fmspc, sizeof fmspc, argv[1], &collateral);
    }
    printf("collateral status=0x%04x", status);
    if (status == SGX_QL_SUCCESS) {
        if (dump_collateral(collateral, argv[2]))
            return 2;
        printf(" free=0x%04x", p_free_collateral(collateral));
    }
    printf("\n");
    return 0;
}

static int do_tdx_collateral(char **argv)
{
    uint8_t fmspc[6];
    if (unhex(argv[0], fmspc, sizeof fmspc))
        return 2;
    tdx_ql_qv_collateral_t *collateral = NULL;
    quote3_error_t status = p_get_tdx_collateral(fmspc, sizeof fmspc, argv[1], &collateral);
    printf("tdx_collateral status=0x%04x", status);
    if (status == SGX_QL_SUCCESS) {
        if (dump_collateral(collateral, argv[2]))
            return 2;
        printf(" free=0x%04x", p_free_tdx_collateral(collateral));
    }
    printf(" untouched=%d\n", status == SGX_QL_SUCCESS || collateral == NULL);
    return 0;
}

static int do_clear(char **argv)
{
    uint32_t cache_type = (uint32_t)strtoul(argv[0], NULL, 10);
    printf("clear_cache status=0x%04x\n", p_clear_cache(cache_type));
    return 0;
}

static int do_global(int argc, char **argv)
{
    /* Cleanup before any init, init twice, cleanup twice: every order is allowed. */
    quote3_error_t cleanup0 = p_global_cleanup();
    quote3_error_t init1 = p_global_init();
    quote3_error_t init2 = p_global_init();
    quote3_error_t cleanup1 = p_global_cleanup();
    quote3_error_t cleanup2 = p_global_cleanup();
    quote3_error_t init3 = p_global_init();
    printf("global cleanup0=0x%04x init1=0x%04x init2=0x%04x cleanup1=0x%04x cleanup2=0x%04x "
           "init3=0x%04x\n",
           cleanup0, init1, init2, cleanup1, cleanup2, init3);
    if (argc == 3) {
        /* The library still works after a cleanup. */
        p_global_cleanup();
        return do_collateral(argv, 0);
    }
    return 0;
}

static int do_qve(char **argv)
{
    char *identity = NULL, *chain = NULL;
    uint32_t identity_size = 0, chain_size = 0;
    quote3_error_t status = p_get_qve(&identity, &identity_size, &chain, &chain_size);
    printf("qve_identity status=0x%04x", status);
    if (status == SGX_QL_SUCCESS) {
        printf(" size=%u chain_size=%u", identity_size, chain_size);
        if (write_file(argv[0], "qve_identity", identity, identity_size) ||
            write_file(argv[0], "qve_identity_issuer_chain", chain, chain_size))
            return 2;
        printf(" free=0x%04x", p_free_qve(identity, chain));
    }
    printf("\n");
    return 0;
}

static int do_root_crl(char **argv)
{
    uint8_t *crl = NULL;
    uint16_t size = 0;
    quote3_error_t status = p_get_root_crl(&crl, &size);
    printf("root_ca_crl status=0x%04x", status);
    if (status == SGX_QL_SUCCESS) {
        printf(" size=%u", size);
        if (write_file(argv[0], NULL, crl, size))
            return 2;
        printf(" free=0x%04x", p_free_root_crl(crl));
    }
    printf("\n");
    return 0;
}

static void do_params(void)
{
    uint8_t qe_id[16] = {0};
    sgx_cpu_svn_t cpu_svn = {{0}};
    sgx_isv_svn_t pce_svn = 0;
    uint8_t ppid[384] = {0};
    sgx_ql_pck_cert_id_t id;
    memset(&id, 0, sizeof id);
    id.p_qe3_id = qe_id;
    id.qe3_id_size = sizeof qe_id;
    id.p_platform_cpu_svn = &cpu_svn;
    id.p_platform_pce_isv_svn = &pce_svn;
    sgx_ql_config_t *config = NULL;
    printf("config_null_id status=0x%04x\n", p_get_config(NULL, &config));
    printf("config_null_out status=0x%04x\n", p_get_config(&id, NULL));
    sgx_ql_pck_cert_id_t bad = id;
    bad.p_qe3_id = NULL;
    printf("config_null_qe_id status=0x%04x\n", p_get_config(&bad, &config));
    bad = id;
    bad.qe3_id_size = 0;
    printf("config_zero_qe_id_size status=0x%04x\n", p_get_config(&bad, &config));
    bad = id;
    bad.p_platform_cpu_svn = NULL;
    printf("config_null_cpu_svn status=0x%04x\n", p_get_config(&bad, &config));
    bad = id;
    bad.p_platform_pce_isv_svn = NULL;
    printf("config_null_pce_svn status=0x%04x\n", p_get_config(&bad, &config));
    bad = id;
    bad.p_encrypted_ppid = ppid;
    bad.encrypted_ppid_size = 256;
    printf("config_short_ppid status=0x%04x\n", p_get_config(&bad, &config));

    uint8_t fmspc[6] = {0};
    sgx_ql_qve_collateral_t *collateral = NULL;
    printf("collateral_null_fmspc status=0x%04x\n",
           p_get_collateral(NULL, 6, "processor", &collateral));
    printf("collateral_short_fmspc status=0x%04x\n",
           p_get_collateral(fmspc, 5, "processor", &collateral));
    printf("collateral_null_ca status=0x%04x\n", p_get_collateral(fmspc, 6, NULL, &collateral));
    printf("collateral_unknown_ca status=0x%04x\n",
           p_get_collateral(fmspc, 6, "processorprocessor", &collateral));
    printf("collateral_null_out status=0x%04x\n", p_get_collateral(fmspc, 6, "platform", NULL));
    printf("collateral_params_length_without_param status=0x%04x\n",
           p_get_collateral_params(fmspc, 6, "processor", NULL, 4, &collateral));
    printf("collateral_params_param_without_length status=0x%04x\n",
           p_get_collateral_params(fmspc, 6, "processor", "x", 0, &collateral));
    printf("tdx_null_fmspc status=0x%04x\n",
           p_get_tdx_collateral(NULL, 6, "processor", &collateral));
    printf("tdx_unknown_ca status=0x%04x\n", p_get_tdx_collateral(fmspc, 6, "pck", &collateral));
    printf("tdx_null_out status=0x%04x\n", p_get_tdx_collateral(fmspc, 6, "platform", NULL));
    printf("clear_unknown_bits status=0x%04x\n", p_clear_cache(8));

    char *identity = NULL, *chain = NULL;
    uint32_t identity_size = 0, chain_size = 0;
    printf("qve_null_identity status=0x%04x\n", p_get_qve(NULL, &identity_size, &chain, &chain_size));
    printf("qve_null_size status=0x%04x\n", p_get_qve(&identity, NULL, &chain, &chain_size));
    printf("qve_null_chain status=0x%04x\n", p_get_qve(&identity, &identity_size, NULL, &chain_size));
    printf("qve_null_chain_size status=0x%04x\n", p_get_qve(&identity, &identity_size, &chain, NULL));

    uint8_t *crl = NULL;
    uint16_t crl_size = 0;
    printf("root_crl_null_out status=0x%04x\n", p_get_root_crl(NULL, &crl_size));
    printf("root_crl_null_size status=0x%04x\n", p_get_root_crl(&crl, NULL));

    printf("free_config_null status=0x%04x\n", p_free_config(NULL));
    printf("free_collateral_null status=0x%04x\n", p_free_collateral(NULL));
    printf("free_tdx_collateral_null status=0x%04x\n", p_free_tdx_collateral(NULL));
    printf("free_qve_null status=0x%04x\n", p_free_qve(NULL, NULL));
    printf("free_root_crl_null status=0x%04x\n", p_free_root_crl(NULL));
    /* Nothing was handed out by the failing calls. */
    printf("outputs untouched=%d\n", config == NULL && collateral == NULL && identity == NULL &&
                                         chain == NULL && crl == NULL);
}

static int log_calls;
static int log_bad_level;

static void logger(sgx_ql_log_level_t level, const char *message)
{
    log_calls++;
    if (level > SGX_QL_LOG_TRACE || message == NULL)
        log_bad_level++;
    fprintf(stderr, "QPLLOG %u %s\n", level, message ? message : "(null)");
}

static int do_logging(char **argv)
{
    uint8_t fmspc[6];
    if (unhex(argv[0], fmspc, sizeof fmspc))
        return 2;
    sgx_ql_qve_collateral_t *collateral = NULL;
    quote3_error_t set2 = p_set_callback(logger, SGX_QL_LOG_ERROR);
    quote3_error_t status = p_get_collateral(fmspc, sizeof fmspc, "processor", &collateral);
    int after_two_arg = log_calls;

    /* The one-argument form: the second register holds whatever the caller left in it. */
    set_callback1_fn set1 = (set_callback1_fn)(void (*)(void))p_set_callback;
    quote3_error_t set1_status = set1(logger);
    p_get_collateral(fmspc, sizeof fmspc, "processor", &collateral);
    int after_one_arg = log_calls;

    quote3_error_t setfn = p_set_function(logger);
    p_get_collateral(fmspc, sizeof fmspc, "processor", &collateral);
    int after_function = log_calls;

    /* NULL unregisters. */
    quote3_error_t unset = p_set_callback(NULL, SGX_QL_LOG_TRACE);
    p_get_collateral(fmspc, sizeof fmspc, "processor", &collateral);
    printf("logging set2=0x%04x status=0x%04x after_two_arg=%d set1=0x%04x after_one_arg=%d "
           "setfn=0x%04x after_function=%d unset=0x%04x after_unset=%d bad=%d\n",
           set2, status, after_two_arg, set1_status, after_one_arg, setfn, after_function, unset,
           log_calls, log_bad_level);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (load())
        return 2;
    const char *mode = argv[1];
    int rc;
    if (strcmp(mode, "config") == 0 && argc == 7)
        rc = do_config(argv + 2);
    else if (strcmp(mode, "collateral") == 0 && argc == 5)
        rc = do_collateral(argv + 2, 0);
    else if (strcmp(mode, "collateral_params") == 0 && argc == 5)
        rc = do_collateral(argv + 2, 1);
    else if (strcmp(mode, "tdx") == 0 && argc == 5)
        rc = do_tdx_collateral(argv + 2);
    else if (strcmp(mode, "clear") == 0 && argc == 3)
        rc = do_clear(argv + 2);
    else if (strcmp(mode, "global") == 0 && (argc == 2 || argc == 5))
        rc = do_global(argc - 2, argv + 2);
    else if (strcmp(mode, "qve") == 0 && argc == 3)
        rc = do_qve(argv + 2);
    else if (strcmp(mode, "rootcrl") == 0 && argc == 3)
        rc = do_root_crl(argv + 2);
    else if (strcmp(mode, "params") == 0 && argc == 2) {
        do_params();
        rc = 0;
    } else if (strcmp(mode, "logging") == 0 && argc == 3)
        rc = do_logging(argv + 2);
    else {
        fprintf(stderr, "usage: see the comment at the top of qpl_client.c\n");
        rc = 2;
    }
    fflush(stdout);
    dlclose(handle);
    return rc;
}
