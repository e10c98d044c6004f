/*
 * switch_x86_64_sysv_elf.S - context switch for x86-64, System V ABI, ELF.
 *
 * void *ko_asm_jump(void **from, void **to, void *value);
 *   Saves the callee-saved state on the current stack, stores the stack
 *   pointer in *from, loads *to and restores the state saved there; the
 *   other side's pending ko_asm_jump returns `value` (the backend
 *   interface's jump, engine/src/backend.h).
 * void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);
 *   Builds a frame below `top` (`lo` is the stack's lowest usable byte, used
 *   only by ABIs that record stack bounds, e.g. the Windows TIB) that ko_asm_jump can return into; returns the
 *   stack pointer to store in a context. entry(arg) runs with the stack
 *   16-byte aligned at the call, and must never return.
 *
 * Saved frame, as the stack pointer in a context sees it:
 *
 *   sp + 0x38 | return address  | <- ko_asm_start for a new context
 *   sp + 0x30 | rbp             |
 *   sp + 0x28 | rbx             |
 *   sp + 0x20 | r12             | <- entry, for a new context
 *   sp + 0x18 | r13             | <- arg, for a new context
 *   sp + 0x10 | r14             |
 *   sp + 0x08 | r15             |
 *   sp + 0x04 | x87 control word| (16 bits, 16 spare)
 *   sp + 0x00 | MXCSR           | (only its control bits are loaded back)
 *
 * The FP control state is per context: a rounding mode (or DAZ/FZ, or an
 * exception mask) set in one coroutine does not leak into another. A new
 * context starts with the values of the thread that made it. MXCSR's low
 * six bits are not control but sticky exception flags, and those stay the
 * thread's: the switch keeps the current flags and takes only the target's
 * control bits, and loads MXCSR only when those differ (rarely). Loading a
 * saved MXCSR whole, as jump_fcontext does, is cheap by itself, but when it
 * changes the flags the next stmxcsr waits for them, about 56 ns here: two
 * contexts whose flags differed (one had divided 1.0 by 3.0, or made a NaN,
 * and the other not) paid about 110 ns per round trip, 11x the switch.
 * The x87 control word holds no flags; it is saved every time and loaded
 * only when the target's differs. On an Intel host the compare cost about
 * what fldcw does (0.8 ns); on AMD Zen 3 skipping fldcw made the raw switch
 * 8% faster (korutin-bench, 6 interleaved runs: 7.95 vs 8.65 ns median).
 *
 * The switch leaves through `jmp` to the saved return address, not `ret`:
 * a `ret` here would always miss the CPU's return-address predictor (the
 * address it pushed belongs to the other context), while the indirect jump
 * is predicted by the branch target buffer. Measured on x86-64 this roughly
 * halves the cost of a switch.
 */
    .text
    .globl  ko_asm_jump
    .hidden ko_asm_jump
    .type   ko_asm_jump, @function
    .p2align 4
ko_asm_jump:
    .cfi_startproc
    leaq    -0x38(%rsp), %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %r15, 0x08(%rsp)
    movq    %r14, 0x10(%rsp)
    movq    %r13, 0x18(%rsp)
    movq    %r12, 0x20(%rsp)
    movq    %rbx, 0x28(%rsp)
    movq    %rbp, 0x30(%rsp)
    movq    %rsp, (%rdi)
    movl    (%rsp), %r9d        /* the current MXCSR */
    movzwl  4(%rsp), %r11d      /* the current x87 control word */
    movq    (%rsi), %rsp
    movq    %rdx, %rax          /* the value */
    movq    0x38(%rsp), %r8
    movl    (%rsp), %r10d       /* the target's */
    xorl    %r9d, %r10d
    testl   $0xffc0, %r10d      /* its control bits differ? */
    jnz     2f
1:  cmpw    4(%rsp), %r11w      /* its x87 control word differs? */
    jne     3f
4:  movq    0x08(%rsp), %r15
    movq    0x10(%rsp), %r14
    movq    0x18(%rsp), %r13
    movq    0x20(%rsp), %r12
    movq    0x28(%rsp), %rbx
    movq    0x30(%rsp), %rbp
    leaq    0x40(%rsp), %rsp
    jmp     *%r8
2:  xorl    %r9d, %r10d         /* the target's MXCSR again */
    andl    $0xffc0, %r10d      /* its control bits */
    andl    $0x3f, %r9d         /* the current flags */
    orl     %r9d, %r10d
    movl    %r10d, (%rsp)
    ldmxcsr (%rsp)
    jmp     1b
3:  fldcw   4(%rsp)
    jmp     4b
    .cfi_endproc
    .size   ko_asm_jump, .-ko_asm_jump

    .globl  ko_asm_make
    .hidden ko_asm_make
    .type   ko_asm_make, @function
    .p2align 4
ko_asm_make:
    .cfi_startproc
    andq    $-16, %rdi          /* align the top */
    leaq    -0x50(%rdi), %rax   /* frame; after its ret, sp = top - 0x10 */
    stmxcsr (%rax)
    fnstcw  4(%rax)
    movq    $0, 0x08(%rax)      /* r15 */
    movq    $0, 0x10(%rax)      /* r14 */
    movq    %rcx, 0x18(%rax)    /* r13 = arg */
    movq    %rdx, 0x20(%rax)    /* r12 = entry */
    movq    $0, 0x28(%rax)      /* rbx */
    movq    $0, 0x30(%rax)      /* rbp: ends frame-pointer walks */
    leaq    ko_asm_start(%rip), %rcx
    movq    %rcx, 0x38(%rax)
    movq    $0, 0x40(%rax)      /* a null return address above the start */
    ret
    .cfi_endproc
    .size   ko_asm_make, .-ko_asm_make

    .type   ko_asm_start, @function
    .p2align 4
ko_asm_start:
    .cfi_startproc
    .cfi_undefined rip          /* the outermost frame of a coroutine */
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   ko_asm_start, .-ko_asm_start

    .section .note.GNU-stack,"",%progbits
