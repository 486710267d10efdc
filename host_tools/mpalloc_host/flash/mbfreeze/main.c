// mbfreeze: compile .py files with MicroPython 1.9.2's own compiler (the py/ core of
// the micro:bit firmware source) and write them as frozen bytecode in C
// (mp_frozen_mpy_names / mp_frozen_mpy_content / mp_qstr_frozen_const_pool) for
// MICROPY_MODULE_FROZEN_MPY.  Static qstr numbers are the firmware's (same
// qstrdefs.generated.h); qstrs new to the firmware are appended in the order this
// process interned them, so bytecode is copied unchanged.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "py/compile.h"
#include "py/runtime.h"
#include "py/gc.h"
#include "py/stackctrl.h"
#include "py/emitglue.h"
#include "py/objstr.h"
#include "py/bc.h"
#include "py/objint.h"
#include "py/mpz.h"


static char heap[4 * 1024 * 1024];
static int rc_count = 0;

static mp_uint_t read_uint(const byte **ip) {
    mp_uint_t v = 0;
    byte b;
    do { b = *(*ip)++; v = (v << 7) | (b & 0x7f); } while (b & 0x80);
    return v;
}

static void emit_bytes(const char *decl, const byte *p, size_t n) {
    printf("%s[%u] = {", decl, (unsigned)n);
    for (size_t i = 0; i < n; i++) printf("%s0x%02x,", i % 16 ? " " : "\n    ", p[i]);
    printf("\n};\n");
}

static void __attribute__((noreturn)) fail(const char *what) { fprintf(stderr, "mbfreeze: %s\n", what); exit(1); }

static int emit_raw_code(mp_raw_code_t *rc) {
    if (rc->kind != MP_CODE_BYTECODE) fail("only bytecode can be frozen");
    const byte *bc = rc->data.u_byte.bytecode;
    const byte *ip = bc;
    read_uint(&ip); read_uint(&ip);           // n_state, n_exc_stack
    ip++;                                      // scope_flags
    uint n_pos = *ip++, n_kwonly = *ip++;
    const mp_uint_t *ct = rc->data.u_byte.const_table;
    uint n_obj = rc->data.u_byte.n_obj, n_rc = rc->data.u_byte.n_raw_code;
    int child[n_rc ? n_rc : 1];
    for (uint i = 0; i < n_rc; i++) {
        child[i] = emit_raw_code((mp_raw_code_t*)ct[n_pos + n_kwonly + n_obj + i]);
    }
    int id = rc_count++;
    char decl[64];
    snprintf(decl, sizeof decl, "STATIC const byte bytecode_data_%d", id);
    emit_bytes(decl, bc, rc->data.u_byte.bc_len);
    for (uint i = 0; i < n_obj; i++) {
        mp_obj_t o = (mp_obj_t)ct[n_pos + n_kwonly + i];
        if (MP_OBJ_IS_STR_OR_BYTES(o)) {
            size_t len;
            const char *s = mp_obj_str_get_data(o, &len);
            printf("STATIC const mp_obj_str_t const_obj_%d_%u = {{&mp_type_%s}, %u, %u, (const byte*)\"",
                   id, i, MP_OBJ_IS_STR(o) ? "str" : "bytes", (unsigned)(qstr_compute_hash((const byte*)s, len) & 0xffff), (unsigned)len);
            for (size_t k = 0; k < len; k++) printf("\\x%02x", (byte)s[k]);
            printf("\"};\n");
        } else if (MP_OBJ_IS_SMALL_INT(o) || MP_OBJ_IS_TYPE(o, &mp_type_int)) {
            // an int the target's 31-bit small int cannot hold: a read-only mpz in flash
            long long v = MP_OBJ_IS_SMALL_INT(o) ? MP_OBJ_SMALL_INT_VALUE(o) : mp_obj_int_get_checked(o);
            unsigned long long m = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
            int nd = 0;
            printf("#if MPZ_DIG_SIZE != 16\n#error int constants are encoded as 16-bit mpz digits\n#endif\n");
            printf("STATIC const mpz_dig_t const_dig_%d_%u[] = {", id, i);
            do { printf("0x%04x, ", (unsigned)(m & 0xffff)); m >>= 16; nd++; } while (m);
            printf("};\nSTATIC const mp_obj_int_t const_obj_%d_%u = {{&mp_type_int}, {%d, 1, %d, %d, (mpz_dig_t*)const_dig_%d_%u}}; // %lld\n",
                   id, i, v < 0, nd, nd, id, i, v);
        } else if (mp_obj_is_float(o)) {
            // MICROPY_OBJ_REPR_C (the micro:bit's): a float is an immediate, 30 bits of its float32
            float f = (float)mp_obj_float_get(o);
            uint32_t u;
            memcpy(&u, &f, 4);
            printf("#if MICROPY_OBJ_REPR != MICROPY_OBJ_REPR_C\n#error float constants are encoded for MICROPY_OBJ_REPR_C\n#endif\n");
            printf("#define const_obj_%d_%u ((mp_uint_t)0x%08xu) // %g\n", id, i, (unsigned)(((u & ~3u) | 2u) + 0x80800000u), (double)f);
        } else if (o != MP_OBJ_FROM_PTR(&mp_const_ellipsis_obj)) {
            fprintf(stderr, "mbfreeze: constant of type %s: ", mp_obj_get_type_str(o));
            mp_obj_print_helper(&mp_plat_print, o, PRINT_REPR);
            fflush(stdout);
            fail("\nonly str, bytes, float, Ellipsis and 31-bit ints can be frozen");
        }
    }
    uint n_ct = n_pos + n_kwonly + n_obj + n_rc;
    if (n_ct) {
        printf("STATIC const mp_uint_t const_table_data_%d[%u] = {\n", id, n_ct);
        for (uint i = 0; i < n_pos + n_kwonly; i++)
            printf("    (mp_uint_t)MP_OBJ_NEW_QSTR(%u),\n", (unsigned)MP_OBJ_QSTR_VALUE((mp_obj_t)ct[i]));
        for (uint i = 0; i < n_obj; i++) {
            mp_obj_t o = (mp_obj_t)ct[n_pos + n_kwonly + i];
            if (MP_OBJ_IS_STR_OR_BYTES(o) || MP_OBJ_IS_SMALL_INT(o) || MP_OBJ_IS_TYPE(o, &mp_type_int)) printf("    (mp_uint_t)MP_ROM_PTR(&const_obj_%d_%u),\n", id, i);
            else if (mp_obj_is_float(o)) printf("    const_obj_%d_%u,\n", id, i);
            else printf("    (mp_uint_t)MP_ROM_PTR(&mp_const_ellipsis_obj),\n");
        }
        for (uint i = 0; i < n_rc; i++) printf("    (mp_uint_t)&raw_code_%d,\n", child[i]);
        printf("};\n");
    }
    char ctname[48]; if (n_ct) snprintf(ctname, sizeof ctname, "const_table_data_%d", id); else strcpy(ctname, "NULL");
    printf("STATIC const mp_raw_code_t raw_code_%d = {\n    .kind = MP_CODE_BYTECODE,\n"
           "    .scope_flags = 0x%02x,\n    .n_pos_args = %u,\n"
           "    .data.u_byte = {.bytecode = bytecode_data_%d, .const_table = %s%s},\n};\n\n",
           id, (unsigned)rc->scope_flags, (unsigned)rc->n_pos_args, id,
           ctname, "");
    return id;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: mbfreeze NAME.py=PATH...  > frozen_mpy.c\n"); return 2; }
    mp_stack_ctrl_init();
    mp_stack_set_limit(1 << 20);
    gc_init(heap, heap + sizeof heap);
    mp_init();
    mp_dynamic_compiler.small_int_bits = 31;
    mp_dynamic_compiler.opt_cache_map_lookup_in_bytecode = 0;
    mp_dynamic_compiler.py_builtins_str_unicode = 1;
    size_t first_dyn = MP_QSTRnumber_of;
    int ids[argc];
    printf("// generated by mbfreeze: do not edit\n#include \"py/mpconfig.h\"\n#include \"py/objstr.h\"\n"
           "#include \"py/emitglue.h\"\n#include \"py/objint.h\"\n\n_Static_assert(MP_QSTRnumber_of == %u, \"qstr table differs from mbfreeze's\");\n\n",
           (unsigned)MP_QSTRnumber_of);
    for (int a = 1; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq) fail("argument must be NAME.py=PATH");
        *eq = 0;
        nlr_buf_t nlr;
        if (nlr_push(&nlr) == 0) {
            mp_lexer_t *lex = mp_lexer_new_from_file(eq + 1);
            mp_parse_tree_t pt = mp_parse(lex, MP_PARSE_FILE_INPUT);
            mp_raw_code_t *rc = mp_compile_to_raw_code(&pt, qstr_from_str(argv[a]), MP_EMIT_OPT_NONE, false);
            ids[a] = emit_raw_code(rc);
            nlr_pop();
        } else {
            fprintf(stderr, "mbfreeze: %s: ", eq + 1);
            mp_obj_print_exception(&mp_plat_print, (mp_obj_t)nlr.ret_val);
            fflush(stdout);
            return 1;
        }
    }
    size_t n_q = MP_STATE_VM(last_pool)->total_prev_len + MP_STATE_VM(last_pool)->len - first_dyn;
    printf("extern const qstr_pool_t mp_qstr_const_pool;\n"
           "const qstr_pool_t mp_qstr_frozen_const_pool = {\n    (qstr_pool_t*)&mp_qstr_const_pool, MP_QSTRnumber_of, %u, %u, {\n",
           (unsigned)n_q, (unsigned)n_q);
    for (size_t q = first_dyn; q < first_dyn + n_q; q++) {
        size_t len;
        const byte *d = qstr_data(q, &len);
        printf("        (const byte*)\"\\x%02x\\x%02x\" \"", (unsigned)(qstr_compute_hash(d, len) & 0xff), (unsigned)len);
        for (size_t k = 0; k < len; k++) printf("\\x%02x", d[k]);
        printf("\", // %.*s\n", (int)len, d);
    }
    printf("    },\n};\n\nconst char mp_frozen_mpy_names[] = ");
    for (int a = 1; a < argc; a++) printf("\"%s\\0\"", argv[a]);
    printf(" \"\\0\";\nconst mp_raw_code_t *const mp_frozen_mpy_content[] = {\n");
    for (int a = 1; a < argc; a++) printf("    &raw_code_%d,\n", ids[a]);
    printf("};\n");
    mp_deinit();
    return 0;
}

// hooks the py/ core wants from a port
void nlr_jump_fail(void *val) { (void)val; fail("uncaught exception"); }
void gc_collect(void) { /* 4 MB heap, no collection needed */ }
mp_lexer_t *mp_lexer_new_from_file(const char *filename);
mp_import_stat_t mp_import_stat(const char *path) { (void)path; return MP_IMPORT_STAT_NO_EXIST; }
mp_obj_t mp_builtin_open(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) { (void)n_args; (void)args; (void)kwargs; return mp_const_none; }
MP_DEFINE_CONST_FUN_OBJ_KW(mp_builtin_open_obj, 1, mp_builtin_open);
