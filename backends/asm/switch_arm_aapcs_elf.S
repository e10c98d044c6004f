/*
 * switch_arm_aapcs_elf.S - context switch for ARMv7-A, AAPCS with the VFP
 * (hard-float) variant, ELF. Assembles as ARM or as Thumb-2, whichever the
 * compiler targets; either kind of code may call it and be entered by it.
 *
 * void *ko_asm_jump(void **from, void **to, void *value);
 *   Saves the callee-saved state on the current stack, stores the stack
 *   pointer in *from, loads *to and restores the state saved there; the
 *   other side's pending ko_asm_jump returns `value` (the backend
 *   interface's jump, engine/src/backend.h).
 * void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);
 *   Builds a frame below `top` that ko_asm_jump can return into and returns
 *   the stack pointer to store in a context (`lo` is not needed here: this
 *   ABI records no stack bounds). entry(arg) runs with sp 8-byte aligned
 *   (16 in fact) and must never return.
 *
 * Arguments in r0-r3. Callee-saved: r4-r11 (r7 is Thumb's frame pointer,
 * r11 ARM's), sp, and d8-d15. lr is saved as the return address.
 *
 * Saved frame, as the stack pointer in a context sees it:
 *
 *   sp + 0x68 | 0, 0, 0, 0      | new context only: 16 spare bytes
 *   sp + 0x64 | lr              | <- ko_asm_start (Thumb bit set if Thumb)
 *   sp + 0x60 | r11             |
 *   sp + 0x5c | r10             |
 *   sp + 0x58 | r9              |
 *   sp + 0x54 | r8              |
 *   sp + 0x50 | r7              |
 *   sp + 0x4c | r6              |
 *   sp + 0x48 | r5              | <- arg, for a new context
 *   sp + 0x44 | r4              | <- entry, for a new context
 *   sp + 0x3c | d15             |
 *   sp + 0x34 | d14             |
 *   sp + 0x2c | d13             |
 *   sp + 0x24 | d12             |
 *   sp + 0x1c | d11             |
 *   sp + 0x14 | d10             |
 *   sp + 0x0c | d9              |
 *   sp + 0x04 | d8              |
 *   sp + 0x00 | FPSCR           |
 *
 * FPSCR (rounding mode, flush-to-zero, default NaN, and the sticky flags)
 * is per context: a rounding mode set in one coroutine does not leak into
 * another. A new context starts with the value of the thread that made it.
 *
 * The return into a context is `pop {..., pc}`, which on ARMv7 switches
 * to ARM or Thumb state by bit 0 of the loaded address, as `bx` does.
 */
#if !defined(__ARM_PCS_VFP)
#error "switch_arm_aapcs_elf.S is for the hard-float ABI (arm-linux-gnueabihf): build with -mfloat-abi=hard"
#endif

    .syntax unified
/* Thumb-2 when the compiler emits it; else ARM (a Thumb-1-only build calls
 * these ARM functions through the linker's interworking veneers). */
#if defined(__thumb2__)
    .thumb
#define KO_FUNC(name) .thumb_func
#define KO_THUMB_BIT 1
#else
    .arm
#define KO_FUNC(name)
#define KO_THUMB_BIT 0
#endif

    .text
    .globl  ko_asm_jump
    .hidden ko_asm_jump
    .type   ko_asm_jump, %function
    .p2align 2
    KO_FUNC(ko_asm_jump)
ko_asm_jump:
    .fnstart
    push    {r4-r11, lr}
    .save   {r4-r11, lr}
    vpush   {d8-d15}
    .vsave  {d8-d15}
    vmrs    r3, fpscr
    push    {r3}
    .pad    #4
    mov     r3, sp
    str     r3, [r0]
    ldr     r3, [r1]
    mov     sp, r3              /* same frame layout: the unwind info holds */
    pop     {r3}
    vmsr    fpscr, r3
    vpop    {d8-d15}
    mov     r0, r2              /* the value */
    pop     {r4-r11, pc}
    .fnend
    .size   ko_asm_jump, .-ko_asm_jump

    .globl  ko_asm_make
    .hidden ko_asm_make
    .type   ko_asm_make, %function
    .p2align 2
    KO_FUNC(ko_asm_make)
ko_asm_make:
    .fnstart
    bic     r0, r0, #15         /* align the top */
    mov     r1, #0
    mov     r12, r0
    sub     r0, r0, #0x78       /* frame; after its return, sp = top - 0x10 */
1:  str     r1, [r12, #-4]!     /* zero [frame, top) */
    cmp     r12, r0
    bhi     1b
    vmrs    r1, fpscr
    str     r1, [r0, #0x00]
    str     r2, [r0, #0x44]     /* r4 = entry */
    str     r3, [r0, #0x48]     /* r5 = arg */
    adr     r1, ko_asm_start
    orr     r1, r1, #KO_THUMB_BIT
    str     r1, [r0, #0x64]     /* lr; r7 = r11 = 0 end frame walks */
    bx      lr
    .fnend
    .size   ko_asm_make, .-ko_asm_make

    .type   ko_asm_start, %function
    .p2align 2
    KO_FUNC(ko_asm_start)
ko_asm_start:
    .fnstart
    .cantunwind                 /* the outermost frame of a coroutine */
    mov     r0, r5
    blx     r4
    udf     #0                  /* entry returned: a bug */
    .fnend
    .size   ko_asm_start, .-ko_asm_start

    .section .note.GNU-stack,"",%progbits
