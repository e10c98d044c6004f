/*
 * floor_x86_64.S - korutin-bench's floor: the least a context switch of
 * x86-64 System V can do, for the bench to measure beside the others in
 * the same run. It keeps what the ABI makes the callee keep (six registers,
 * the stack pointer, where to continue) and no FP state at all: neither
 * MXCSR nor the x87 control word is saved or loaded, so a rounding mode set
 * in one context leaks into the other. No backend may do that (korutin's
 * asm and Boost's jump_fcontext keep both per context); it is what their
 * cost is measured against. The layout is jump_fcontext's, the state on
 * the switched-out stack:
 *
 *   sp + 0x30 | return address |
 *   sp + 0x28 | rbp            |
 *   sp + 0x20 | rbx            |
 *   sp + 0x18 | r15            |
 *   sp + 0x10 | r14            |
 *   sp + 0x08 | r13            | <- arg, for a new context
 *   sp + 0x00 | r12            | <- entry, for a new context
 *
 * void *kb_floor_jump(void **save, void *to, void *value);
 *   Saves the running state on its stack and the stack pointer in *save,
 *   continues in the context whose stack pointer is `to`, where the
 *   pending kb_floor_jump returns `value`.
 * void *kb_floor_make(void *top, void (*entry)(void *), void *arg);
 *   A context that runs entry(arg) on the stack below `top` (entry must
 *   never return).
 * Assembles to nothing on other targets (the floor is then not measured).
 */
#if defined(__x86_64__) && !defined(_WIN32) && !defined(__APPLE__)
    .text
    .globl  kb_floor_jump
    .type   kb_floor_jump, @function
    .p2align 4
kb_floor_jump:
    .cfi_startproc
    leaq    -0x30(%rsp), %rsp
    movq    %r12, 0x00(%rsp)
    movq    %r13, 0x08(%rsp)
    movq    %r14, 0x10(%rsp)
    movq    %r15, 0x18(%rsp)
    movq    %rbx, 0x20(%rsp)
    movq    %rbp, 0x28(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    movq    0x30(%rsp), %r8
    movq    0x00(%rsp), %r12
    movq    0x08(%rsp), %r13
    movq    0x10(%rsp), %r14
    movq    0x18(%rsp), %r15
    movq    0x20(%rsp), %rbx
    movq    0x28(%rsp), %rbp
    leaq    0x38(%rsp), %rsp
    movq    %rdx, %rax
    jmp     *%r8
    .cfi_endproc
    .size   kb_floor_jump, .-kb_floor_jump

    .globl  kb_floor_make
    .type   kb_floor_make, @function
    .p2align 4
kb_floor_make:
    .cfi_startproc
    andq    $-16, %rdi          /* align the top */
    leaq    -0x48(%rdi), %rax   /* 8 mod 16: the start then calls aligned */
    leaq    kb_floor_start(%rip), %rcx
    movq    %rsi, 0x00(%rax)    /* r12 = entry */
    movq    %rdx, 0x08(%rax)    /* r13 = arg */
    movq    $0, 0x10(%rax)
    movq    $0, 0x18(%rax)
    movq    $0, 0x20(%rax)
    movq    $0, 0x28(%rax)      /* rbp: ends frame-pointer walks */
    movq    %rcx, 0x30(%rax)
    movq    $0, 0x38(%rax)      /* a null return address above the start */
    ret
    .cfi_endproc
    .size   kb_floor_make, .-kb_floor_make

    .type   kb_floor_start, @function
    .p2align 4
kb_floor_start:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   kb_floor_start, .-kb_floor_start
#endif
#if defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
