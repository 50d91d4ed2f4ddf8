/*
 * A C client of libsgx_quote_ex.so.1 that makes the calls Intel's DCAP quote library and Open
 * Enclave make, in their order. Built by tests/c_program.rs twice: linked with -lsgx_quote_ex, and
 * with -DUSE_DLOPEN, where it loads "libsgx_quote_ex.so.1" with dlopen + dlsym as those libraries
 * do.
 *
 * Usage: quote_ex_client MODE [ARGS]
 *   dcap REPORT QUOTE_OUT   Intel DCAP sequence (sgx_qe_get_target_info, sgx_qe_get_quote_size,
 *                           sgx_qe_get_quote): init twice (garbage size + NULL, then 32 bytes),
 *                           quote size, quote with NULL report info. Writes the quote.
 *   oe REPORT QUOTE_OUT     Open Enclave sequence: supported key id count and ids, pick the
 *                           ECDSA-P256 one, then as above with the returned sizes.
 *   threads N REPORT QUOTE_OUT_PREFIX
 *                           N threads at once, each running the DCAP sequence silently; prints one
 *                           status per thread and writes QUOTE_OUT_PREFIX.<i>.
 *   each                    Every function once with valid arguments; prints each status.
 *   uninit                  Quote size and quote before any sgx_init_quote_ex.
 *   reload N                (dlopen build) N times: dlopen, dlsym, one call, dlclose, as
 *                           libsgx_dcap_ql does around each out-of-process call.
 *   badkey                  Init, quote size and quote with a key id no service supports.
 *   params                  Every client-side parameter check; prints each status.
 *
 * Output: one "name key=value ..." line per call; statuses in hex. Exit code 0 when the program ran
 * to its end (statuses are judged by the test), 2 on usage or loading errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <pthread.h>
#include <dirent.h>

#ifdef USE_DLOPEN
#include <dlfcn.h>
#endif

#include "sgx_quote_ex.h"

_Static_assert(sizeof(sgx_target_info_t) == 512, "sgx_target_info_t is 512 bytes");
_Static_assert(sizeof(sgx_report_body_t) == 384, "sgx_report_body_t is 384 bytes");
_Static_assert(sizeof(sgx_report_t) == 432, "sgx_report_t is 432 bytes");
_Static_assert(sizeof(sgx_att_key_id_t) == 256, "sgx_att_key_id_t is 256 bytes");
_Static_assert(sizeof(sgx_ql_att_key_id_t) == 158, "sgx_ql_att_key_id_t is 158 bytes");
_Static_assert(sizeof(sgx_att_key_id_ext_t) == 256, "sgx_att_key_id_ext_t is 256 bytes");
_Static_assert(sizeof(sgx_qe_report_info_t) == 960, "sgx_qe_report_info_t is 960 bytes");

typedef sgx_status_t (*select_fn)(const uint8_t *, uint32_t, sgx_att_key_id_t *);
typedef sgx_status_t (*init_fn)(const sgx_att_key_id_t *, sgx_target_info_t *, size_t *, uint8_t *);
typedef sgx_status_t (*size_fn)(const sgx_att_key_id_t *, uint32_t *);
typedef sgx_status_t (*quote_fn)(const sgx_report_t *, const sgx_att_key_id_t *,
                                 sgx_qe_report_info_t *, uint8_t *, uint32_t);
typedef sgx_status_t (*num_fn)(uint32_t *);
typedef sgx_status_t (*ids_fn)(sgx_att_key_id_ext_t *, uint32_t);

static select_fn p_select;
static init_fn p_init;
static size_fn p_size;
static quote_fn p_quote;
static num_fn p_num;
static ids_fn p_ids;

static int load(void)
{
#ifdef USE_DLOPEN
    /* What libsgx_dcap_ql and Open Enclave do in out-of-process mode. */
    void *handle = dlopen("libsgx_quote_ex.so.1", RTLD_LAZY);
    if (handle == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    p_select = (select_fn)dlsym(handle, "sgx_select_att_key_id");
    p_init = (init_fn)dlsym(handle, "sgx_init_quote_ex");
    p_size = (size_fn)dlsym(handle, "sgx_get_quote_size_ex");
    p_quote = (quote_fn)dlsym(handle, "sgx_get_quote_ex");
    p_num = (num_fn)dlsym(handle, "sgx_get_supported_att_key_id_num");
    p_ids = (ids_fn)dlsym(handle, "sgx_get_supported_att_key_ids");
    printf("load mode=dlopen\n");
#else
    p_select = sgx_select_att_key_id;
    p_init = sgx_init_quote_ex;
    p_size = sgx_get_quote_size_ex;
    p_quote = sgx_get_quote_ex;
    p_num = sgx_get_supported_att_key_id_num;
    p_ids = sgx_get_supported_att_key_ids;
    printf("load mode=linked\n");
#endif
    if (!p_select || !p_init || !p_size || !p_quote || !p_num || !p_ids) {
        fprintf(stderr, "a quote-ex symbol is missing\n");
        return -1;
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

/* Intel's QE3 ECDSA-P256 attestation key id, as libsgx_dcap_ql hard-codes it. */
static void intel_qe3_key_id(sgx_att_key_id_t *out)
{
    static const uint8_t mrsigner[32] = {
        0x8c, 0x4f, 0x57, 0x75, 0xd7, 0x96, 0x50, 0x3e, 0x96, 0x13, 0x7f, 0x77, 0xc6, 0x8a, 0x82, 0x9a,
        0x00, 0x56, 0xac, 0x8d, 0xed, 0x70, 0x14, 0x0b, 0x08, 0x1b, 0x09, 0x44, 0x90, 0xc5, 0x7b, 0xff,
    };
    sgx_att_key_id_ext_t id;
    memset(&id, 0, sizeof(id));
    id.base.id = 0;
    id.base.version = 0;
    id.base.mrsigner_length = 32;
    memcpy(id.base.mrsigner, mrsigner, sizeof(mrsigner));
    id.base.prod_id = 1;
    id.base.algorithm_id = 2;
    memcpy(out, &id, sizeof(*out));
}

static int read_report(const char *path, sgx_report_t *report)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t got = fread(report, 1, sizeof(*report), f);
    fclose(f);
    if (got != sizeof(*report)) {
        fprintf(stderr, "%s: %zu bytes, expected %zu\n", path, got, sizeof(*report));
        return -1;
    }
    return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t put = fwrite(data, 1, len, f);
    fclose(f);
    return put == len ? 0 : -1;
}

/* sgx_init_quote_ex twice, as sgx_qe_get_target_info and Open Enclave do. `first_size` is the
 * value the size variable holds before the first call (libsgx_dcap_ql never sets it). */
static sgx_status_t init_twice(const sgx_att_key_id_t *key_id, size_t first_size,
                               sgx_target_info_t *target_info)
{
    size_t size = first_size;
    sgx_status_t st = p_init(key_id, target_info, &size, NULL);
    printf("init1 status=0x%04x size=%zu\n", st, size);
    if (st != SGX_SUCCESS)
        return st;
    uint8_t *pub_key_id = malloc(size ? size : 1);
    if (pub_key_id == NULL)
        return SGX_ERROR_OUT_OF_MEMORY;
    memset(pub_key_id, 0, size);
    st = p_init(key_id, target_info, &size, pub_key_id);
    printf("init2 status=0x%04x size=%zu", st, size);
    print_hex("pub_key_id", pub_key_id, size);
    print_hex("target_info", target_info, sizeof(*target_info));
    printf("\n");
    free(pub_key_id);
    return st;
}

static sgx_status_t size_and_quote(const sgx_att_key_id_t *key_id, const sgx_report_t *report,
                                   const char *quote_out)
{
    uint32_t quote_size = 0;
    sgx_status_t st = p_size(key_id, &quote_size);
    printf("size status=0x%04x quote_size=%u\n", st, quote_size);
    if (st != SGX_SUCCESS)
        return st;
    uint8_t *quote = calloc(1, quote_size ? quote_size : 1);
    if (quote == NULL)
        return SGX_ERROR_OUT_OF_MEMORY;
    /* libsgx_dcap_ql's sgx_qe_get_quote passes no QE report info. */
    st = p_quote(report, key_id, NULL, quote, quote_size);
    printf("quote status=0x%04x\n", st);
    if (st == SGX_SUCCESS && write_file(quote_out, quote, quote_size) != 0)
        st = SGX_ERROR_UNEXPECTED;
    free(quote);
    return st;
}

static int run_dcap(const char *report_path, const char *quote_out)
{
    sgx_report_t report;
    if (read_report(report_path, &report) != 0)
        return 2;
    sgx_att_key_id_t key_id;
    intel_qe3_key_id(&key_id);
    sgx_target_info_t target_info;
    memset(&target_info, 0xee, sizeof(target_info));
    /* The size variable is uninitialised in libsgx_dcap_ql; a fixed garbage pattern stands in
     * for it so that the test can check what is sent. */
    if (init_twice(&key_id, (size_t)0xa5a5a5a5a5a5a5a5ull, &target_info) != SGX_SUCCESS)
        return 0;
    size_and_quote(&key_id, &report, quote_out);
    return 0;
}

static int run_oe(const char *report_path, const char *quote_out)
{
    sgx_report_t report;
    if (read_report(report_path, &report) != 0)
        return 2;
    uint32_t num = 0;
    sgx_status_t st = p_num(&num);
    printf("num status=0x%04x num=%u\n", st, num);
    if (st != SGX_SUCCESS || num == 0)
        return 0;
    sgx_att_key_id_ext_t *ids = calloc(num, sizeof(*ids));
    if (ids == NULL)
        return 2;
    st = p_ids(ids, num);
    printf("ids status=0x%04x", st);
    print_hex("ids", ids, num * sizeof(*ids));
    printf("\n");
    int chosen = -1;
    for (uint32_t i = 0; st == SGX_SUCCESS && i < num; i++) {
        /* Open Enclave maps algorithm_id 2 to ECDSA-P256 and ignores what it does not know. */
        if (ids[i].base.algorithm_id == 2) {
            chosen = (int)i;
            break;
        }
    }
    printf("pick index=%d\n", chosen);
    if (chosen >= 0) {
        sgx_att_key_id_t key_id;
        memcpy(&key_id, &ids[chosen], sizeof(key_id));
        sgx_target_info_t target_info;
        memset(&target_info, 0, sizeof(target_info));
        if (init_twice(&key_id, 0, &target_info) == SGX_SUCCESS)
            size_and_quote(&key_id, &report, quote_out);
    }
    free(ids);
    return 0;
}

struct worker {
    const sgx_report_t *report;
    char quote_out[4096];
    sgx_status_t status;
    const char *step;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    sgx_att_key_id_t key_id;
    intel_qe3_key_id(&key_id);
    sgx_target_info_t target_info;
    size_t size = 0;
    uint8_t pub_key_id[32];
    w->step = "init1";
    w->status = p_init(&key_id, &target_info, &size, NULL);
    if (w->status != SGX_SUCCESS)
        return NULL;
    if (size != sizeof(pub_key_id)) {
        w->status = SGX_ERROR_UNEXPECTED;
        return NULL;
    }
    w->step = "init2";
    w->status = p_init(&key_id, &target_info, &size, pub_key_id);
    if (w->status != SGX_SUCCESS)
        return NULL;
    uint32_t quote_size = 0;
    w->step = "size";
    w->status = p_size(&key_id, &quote_size);
    if (w->status != SGX_SUCCESS)
        return NULL;
    uint8_t *quote = calloc(1, quote_size ? quote_size : 1);
    if (quote == NULL) {
        w->status = SGX_ERROR_OUT_OF_MEMORY;
        return NULL;
    }
    w->step = "quote";
    w->status = p_quote(w->report, &key_id, NULL, quote, quote_size);
    if (w->status == SGX_SUCCESS && write_file(w->quote_out, quote, quote_size) != 0)
        w->status = SGX_ERROR_UNEXPECTED;
    free(quote);
    return NULL;
}

static int run_threads(const char *count, const char *report_path, const char *prefix)
{
    int n = atoi(count);
    if (n <= 0 || n > 64)
        return 2;
    sgx_report_t report;
    if (read_report(report_path, &report) != 0)
        return 2;
    struct worker workers[64];
    pthread_t threads[64];
    for (int i = 0; i < n; i++) {
        workers[i].report = &report;
        workers[i].status = SGX_ERROR_UNEXPECTED;
        workers[i].step = "start";
        snprintf(workers[i].quote_out, sizeof(workers[i].quote_out), "%s.%d", prefix, i);
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0)
            return 2;
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < n; i++)
        printf("thread%d status=0x%04x step=%s\n", i, workers[i].status, workers[i].step);
    return 0;
}

static int run_each(void)
{
    sgx_att_key_id_t key_id, selected;
    intel_qe3_key_id(&key_id);
    sgx_target_info_t target_info;
    size_t size = 0;
    uint8_t pub_key_id[32];
    uint32_t quote_size = 0, num = 0;
    sgx_report_t report;
    memset(&report, 0x5a, sizeof(report));
    sgx_qe_report_info_t info;
    memset(&info, 0, sizeof(info));
    static uint8_t quote[8192];
    sgx_att_key_id_ext_t ids[1];

    printf("select status=0x%04x\n", p_select(NULL, 0, &selected));
    printf("init_size status=0x%04x\n", p_init(&key_id, &target_info, &size, NULL));
    size = sizeof(pub_key_id);
    printf("init_full status=0x%04x\n", p_init(&key_id, &target_info, &size, pub_key_id));
    printf("quote_size status=0x%04x\n", p_size(&key_id, &quote_size));
    printf("quote status=0x%04x\n", p_quote(&report, &key_id, &info, quote, sizeof(quote)));
    printf("num status=0x%04x\n", p_num(&num));
    printf("ids status=0x%04x\n", p_ids(ids, 1));
    return 0;
}

static int run_uninit(void)
{
    sgx_att_key_id_t key_id;
    intel_qe3_key_id(&key_id);
    uint32_t quote_size = 0;
    sgx_report_t report;
    memset(&report, 0, sizeof(report));
    static uint8_t quote[8192];
    printf("quote_size status=0x%04x\n", p_size(&key_id, &quote_size));
    printf("quote status=0x%04x\n", p_quote(&report, &key_id, NULL, quote, sizeof(quote)));
    return 0;
}

static int run_badkey(void)
{
    sgx_att_key_id_t key_id;
    intel_qe3_key_id(&key_id);
    sgx_att_key_id_ext_t ext;
    memcpy(&ext, &key_id, sizeof(ext));
    ext.base.algorithm_id = 3; /* ECDSA-P384: no quoting enclave supports it */
    memcpy(&key_id, &ext, sizeof(key_id));
    sgx_target_info_t target_info;
    size_t size = 32;
    uint8_t pub_key_id[32];
    uint32_t quote_size = 0;
    sgx_report_t report;
    memset(&report, 0, sizeof(report));
    static uint8_t quote[8192];
    printf("init_full status=0x%04x\n", p_init(&key_id, &target_info, &size, pub_key_id));
    printf("quote_size status=0x%04x\n", p_size(&key_id, &quote_size));
    printf("quote status=0x%04x\n", p_quote(&report, &key_id, NULL, quote, sizeof(quote)));
    return 0;
}

#ifdef USE_DLOPEN
/* Open file descriptors of this process (a leaked socket shows up here). */
static int open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    int n = 0;
    while (readdir(dir) != NULL)
        n++;
    closedir(dir);
    return n;
}
#endif

static int run_reload(const char *count)
{
#ifdef USE_DLOPEN
    int n = atoi(count);
    int ok = 0;
    int fds_before = open_fds();
    for (int i = 0; i < n; i++) {
        void *handle = dlopen("libsgx_quote_ex.so.1", RTLD_LAZY);
        if (handle == NULL) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 2;
        }
        num_fn num = (num_fn)dlsym(handle, "sgx_get_supported_att_key_id_num");
        uint32_t value = 0;
        if (num != NULL && num(&value) == SGX_SUCCESS && value == 1)
            ok++;
        if (dlclose(handle) != 0) {
            fprintf(stderr, "dlclose: %s\n", dlerror());
            return 2;
        }
    }
    printf("reload count=%d ok=%d fds_before=%d fds_after=%d\n", n, ok, fds_before, open_fds());
    return 0;
#else
    (void)count;
    fprintf(stderr, "reload needs the dlopen build\n");
    return 2;
#endif
}

static int run_params(void)
{
    sgx_att_key_id_t key_id, selected;
    intel_qe3_key_id(&key_id);
    sgx_target_info_t target_info;
    uint8_t pub_key_id[32];
    uint8_t list[8 + 256];
    static uint8_t big_list[8 + 11 * 256];
    uint32_t quote_size = 0;
    sgx_report_t report;
    memset(&report, 0, sizeof(report));
    uint8_t quote[64];
    sgx_att_key_id_ext_t ids[1];
    size_t size;

    printf("select_null_list_with_size status=0x%04x\n", p_select(NULL, 8, &selected));
    memset(list, 0, sizeof(list));
    printf("select_null_output status=0x%04x\n", p_select(list, sizeof(list), NULL));
    printf("select_oversized_list status=0x%04x\n", p_select(big_list, sizeof(big_list), &selected));
    size = 32;
    printf("init_null_size status=0x%04x\n", p_init(&key_id, &target_info, NULL, pub_key_id));
    printf("init_null_target_info status=0x%04x\n", p_init(&key_id, NULL, &size, pub_key_id));
    printf("init_null_key_id status=0x%04x\n", p_init(NULL, &target_info, &size, pub_key_id));
    size = 0;
    printf("init_zero_buffer_size status=0x%04x\n", p_init(&key_id, &target_info, &size, pub_key_id));
    size = (size_t)UINT32_MAX;
    printf("init_huge_buffer_size status=0x%04x\n", p_init(&key_id, &target_info, &size, pub_key_id));
    printf("quote_size_null_output status=0x%04x\n", p_size(&key_id, NULL));
    printf("quote_null_report status=0x%04x\n", p_quote(NULL, &key_id, NULL, quote, sizeof(quote)));
    printf("quote_null_key_id status=0x%04x\n", p_quote(&report, NULL, NULL, quote, sizeof(quote)));
    printf("quote_null_buffer status=0x%04x\n", p_quote(&report, &key_id, NULL, NULL, 64));
    printf("quote_zero_size status=0x%04x\n", p_quote(&report, &key_id, NULL, quote, 0));
    printf("num_null_output status=0x%04x\n", p_num(NULL));
    printf("ids_null_output status=0x%04x\n", p_ids(NULL, 1));
    printf("ids_zero_count status=0x%04x\n", p_ids(ids, 0));
    printf("ids_overflowing_count status=0x%04x\n", p_ids(ids, UINT32_MAX / 256 + 1));
    (void)quote_size;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s dcap|oe REPORT QUOTE_OUT | each | params\n", argv[0]);
        return 2;
    }
    /* Before load(): the library must really be unloaded by each dlclose. */
    if (strcmp(argv[1], "reload") == 0 && argc == 3)
        return run_reload(argv[2]);
    if (load() != 0)
        return 2;
    if (strcmp(argv[1], "dcap") == 0 && argc == 4)
        return run_dcap(argv[2], argv[3]);
    if (strcmp(argv[1], "oe") == 0 && argc == 4)
        return run_oe(argv[2], argv[3]);
    if (strcmp(argv[1], "threads") == 0 && argc == 5)
        return run_threads(argv[2], argv[3], argv[4]);
    if (strcmp(argv[1], "each") == 0)
        return run_each();
    if (strcmp(argv[1], "uninit") == 0)
        return run_uninit();
    if (strcmp(argv[1], "badkey") == 0)
        return run_badkey();
    if (strcmp(argv[1], "params") == 0)
        return run_params();
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
