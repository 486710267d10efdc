// Host-side compiler for freezing .py into micro:bit MicroPython 1.9.2 firmware.
#include <stdint.h>
#include <alloca.h>
#define MICROPY_ALLOC_PATH_MAX      (256)
#define MICROPY_PERSISTENT_CODE_SAVE (1)
#define MICROPY_DYNAMIC_COMPILER    (1)
#define MICROPY_USE_SMALL_HEAP_COMPILER (0)
#define MICROPY_COMP_CONST          (1)
#define MICROPY_COMP_CONST_FOLDING  (1)
#define MICROPY_COMP_MODULE_CONST   (0)
#define MICROPY_COMP_DOUBLE_TUPLE_ASSIGN (1)
#define MICROPY_COMP_TRIPLE_TUPLE_ASSIGN (0)
#define MICROPY_COMP_RETURN_IF_EXPR (0)
#define MICROPY_EMIT_X64            (0)
#define MICROPY_EMIT_THUMB          (0)
#define MICROPY_EMIT_INLINE_THUMB   (0)
#define MICROPY_ENABLE_GC           (1)
#define MICROPY_ENABLE_SOURCE_LINE  (1)
#define MICROPY_ERROR_REPORTING     (MICROPY_ERROR_REPORTING_NORMAL)
#define MICROPY_LONGINT_IMPL        (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_FLOAT_IMPL          (MICROPY_FLOAT_IMPL_DOUBLE)
#define MICROPY_QSTR_BYTES_IN_HASH  (1)
#define MICROPY_READER_POSIX        (1)
#define MICROPY_ENABLE_RUNTIME      (0)
#define MICROPY_CPYTHON_COMPAT      (0)
#define MICROPY_PY_BUILTINS_STR_UNICODE (1)
#define MICROPY_PY_BUILTINS_BYTEARRAY (0)
#define MICROPY_PY_BUILTINS_MEMORYVIEW (0)
#define MICROPY_PY_BUILTINS_ENUMERATE (0)
#define MICROPY_PY_BUILTINS_FILTER  (0)
#define MICROPY_PY_BUILTINS_FROZENSET (0)
#define MICROPY_PY_BUILTINS_REVERSED (0)
#define MICROPY_PY_BUILTINS_SET     (1)
#define MICROPY_PY_BUILTINS_SLICE   (1)
#define MICROPY_PY_BUILTINS_PROPERTY (0)
#define MICROPY_PY_BUILTINS_MIN_MAX (0)
#define MICROPY_PY___FILE__         (0)
#define MICROPY_PY_GC               (0)
#define MICROPY_PY_ARRAY            (0)
#define MICROPY_PY_ATTRTUPLE        (0)
#define MICROPY_PY_COLLECTIONS      (0)
#define MICROPY_PY_MATH             (0)
#define MICROPY_PY_CMATH            (0)
#define MICROPY_PY_IO               (0)
#define MICROPY_PY_STRUCT           (0)
#define MICROPY_PY_SYS              (0)
#define MICROPY_PY_MICROPYTHON_MEM_INFO (0)
#define MICROPY_MODULE_FROZEN_MPY   (0)
#define MICROPY_STACK_CHECK         (0)
#define MICROPY_KBD_EXCEPTION       (0)

#define MICROPY_PORT_BUILTINS
#define MICROPY_PORT_BUILTIN_MODULES
#define MICROPY_PORT_ROOT_POINTERS
#define MP_STATE_PORT MP_STATE_VM

typedef long mp_int_t;
typedef unsigned long mp_uint_t;
typedef long mp_off_t;
#define MP_PLAT_PRINT_STRN(str, len) fwrite(str, 1, len, stdout)
#include <stdio.h>
#define MICROPY_HW_BOARD_NAME "host"
#define MICROPY_HW_MCU_NAME "host"
#define MICROPY_PY_ASYNC_AWAIT      (0)
#define MICROPY_PY_BUILTINS_COMPLEX (0)
