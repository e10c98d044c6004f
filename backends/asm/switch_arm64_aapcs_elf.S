/*
 * switch_arm64_aapcs_elf.S - context switch for AArch64, AAPCS64, ELF.
 *
 * void *ko_asm_jump(void **from, void **to, void *value);
 *   Saves the callee-saved state on the current stack, stores the stack
 *   pointer in *from, loads *to and restores the state saved there; the
 *   other side's pending ko_asm_jump returns `value` (the backend
 *   interface's jump, engine/src/backend.h).
 * void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);
 *   Builds a frame below `top` that ko_asm_jump can return into and returns
 *   the stack pointer to store in a context (`lo` is not needed here: this
 *   ABI records no stack bounds). entry(arg) runs with sp 16-byte aligned
 *   (the hardware checks it) and must never return.
 *
 * Arguments in x0-x3. Callee-saved: x19-x28, the frame pointer x29, the
 * link register x30, and the low 64 bits of v8-v15 (d8-d15).
 *
 * Saved frame, as the stack pointer in a context sees it:
 *
 *   sp + 0xb0 | 0, 0            | new context only: null frame record
 *   sp + 0xa8 | (spare)         |
 *   sp + 0xa0 | FPCR            |
 *   sp + 0x98 | x30 (lr)        | <- ko_asm_start for a new context
 *   sp + 0x90 | x29 (fp)        |
 *   sp + 0x88 | x28             |
 *   sp + 0x80 | x27             |
 *   sp + 0x78 | x26             |
 *   sp + 0x70 | x25             |
 *   sp + 0x68 | x24             |
 *   sp + 0x60 | x23             |
 *   sp + 0x58 | x22             |
 *   sp + 0x50 | x21             |
 *   sp + 0x48 | x20             | <- arg, for a new context
 *   sp + 0x40 | x19             | <- entry, for a new context
 *   sp + 0x38 | d15             |
 *   sp + 0x30 | d14             |
 *   sp + 0x28 | d13             |
 *   sp + 0x20 | d12             |
 *   sp + 0x18 | d11             |
 *   sp + 0x10 | d10             |
 *   sp + 0x08 | d9              |
 *   sp + 0x00 | d8              |
 *
 * FPCR (rounding mode, flush-to-zero, default NaN) is per context: a
 * rounding mode set in one coroutine does not leak into another. A new
 * context starts with the value of the thread that made it. It is loaded
 * only when it differs from the current one (msr fpcr is slow).
 */

/* With -mbranch-protection=bti (or standard), indirect calls must land on
 * a BTI instruction; it is a NOP on cores without BTI. */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define KO_BTI_C hint #34
#define KO_GNU_PROPERTY_BTI 1
#else
#define KO_BTI_C
#define KO_GNU_PROPERTY_BTI 0
#endif

    .text
    .globl  ko_asm_jump
    .hidden ko_asm_jump
    .type   ko_asm_jump, %function
    .p2align 4
ko_asm_jump:
    .cfi_startproc
    KO_BTI_C
    sub     sp, sp, #0xb0
    .cfi_def_cfa_offset 0xb0
    stp     d8, d9, [sp, #0x00]
    stp     d10, d11, [sp, #0x10]
    stp     d12, d13, [sp, #0x20]
    stp     d14, d15, [sp, #0x30]
    stp     x19, x20, [sp, #0x40]
    stp     x21, x22, [sp, #0x50]
    stp     x23, x24, [sp, #0x60]
    stp     x25, x26, [sp, #0x70]
    stp     x27, x28, [sp, #0x80]
    stp     x29, x30, [sp, #0x90]
    .cfi_offset d8, -0xb0
    .cfi_offset d9, -0xa8
    .cfi_offset d10, -0xa0
    .cfi_offset d11, -0x98
    .cfi_offset d12, -0x90
    .cfi_offset d13, -0x88
    .cfi_offset d14, -0x80
    .cfi_offset d15, -0x78
    .cfi_offset x19, -0x70
    .cfi_offset x20, -0x68
    .cfi_offset x21, -0x60
    .cfi_offset x22, -0x58
    .cfi_offset x23, -0x50
    .cfi_offset x24, -0x48
    .cfi_offset x25, -0x40
    .cfi_offset x26, -0x38
    .cfi_offset x27, -0x30
    .cfi_offset x28, -0x28
    .cfi_offset x29, -0x20
    .cfi_offset x30, -0x18
    mrs     x10, fpcr
    str     x10, [sp, #0xa0]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9              /* same frame layout: the CFI still holds */
    ldr     x9, [sp, #0xa0]
    cmp     x9, x10             /* msr fpcr is slow: only when it differs */
    b.eq    1f
    msr     fpcr, x9
1:
    ldp     d8, d9, [sp, #0x00]
    ldp     d10, d11, [sp, #0x10]
    ldp     d12, d13, [sp, #0x20]
    ldp     d14, d15, [sp, #0x30]
    ldp     x19, x20, [sp, #0x40]
    ldp     x21, x22, [sp, #0x50]
    ldp     x23, x24, [sp, #0x60]
    ldp     x25, x26, [sp, #0x70]
    ldp     x27, x28, [sp, #0x80]
    ldp     x29, x30, [sp, #0x90]
    add     sp, sp, #0xb0
    .cfi_def_cfa_offset 0
    mov     x0, x2              /* the value */
    ret
    .cfi_endproc
    .size   ko_asm_jump, .-ko_asm_jump

    .globl  ko_asm_make
    .hidden ko_asm_make
    .type   ko_asm_make, %function
    .p2align 4
ko_asm_make:
    .cfi_startproc
    KO_BTI_C
    and     x0, x0, #-16        /* align the top */
    sub     x4, x0, #0xc0       /* frame; after its ret, sp = top - 0x10 */
    stp     xzr, xzr, [x4, #0x00]   /* d8-d15 */
    stp     xzr, xzr, [x4, #0x10]
    stp     xzr, xzr, [x4, #0x20]
    stp     xzr, xzr, [x4, #0x30]
    stp     x2, x3, [x4, #0x40]     /* x19 = entry, x20 = arg */
    stp     xzr, xzr, [x4, #0x50]   /* x21-x28 */
    stp     xzr, xzr, [x4, #0x60]
    stp     xzr, xzr, [x4, #0x70]
    stp     xzr, xzr, [x4, #0x80]
    adr     x5, ko_asm_start
    stp     xzr, x5, [x4, #0x90]    /* x29 = 0 ends frame-record walks */
    mrs     x5, fpcr
    stp     x5, xzr, [x4, #0xa0]
    stp     xzr, xzr, [x4, #0xb0]   /* a null frame record above the start */
    mov     x0, x4
    ret
    .cfi_endproc
    .size   ko_asm_make, .-ko_asm_make

    .type   ko_asm_start, %function
    .p2align 4
ko_asm_start:
    .cfi_startproc
    .cfi_undefined x30          /* the outermost frame of a coroutine */
    /* Reached by ko_asm_jump's ret; sp = top - 0x10, 16-byte aligned. */
    mov     x0, x20
    blr     x19
    brk     #0x1                /* entry returned: a bug */
    .cfi_endproc
    .size   ko_asm_start, .-ko_asm_start

#if KO_GNU_PROPERTY_BTI
    /* GNU_PROPERTY_AARCH64_FEATURE_1_AND: BTI, so the linker keeps BTI on. */
    .section .note.gnu.property,"a"
    .p2align 3
    .word   4                   /* name size */
    .word   16                  /* descriptor size */
    .word   5                   /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .word   0xc0000000          /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .word   4
    .word   1                   /* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
    .word   0
#endif

    .section .note.GNU-stack,"",%progbits
