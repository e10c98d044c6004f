/*
 * regs_x86_64.S - loads known values into the callee-saved registers of
 * x86-64 System V, calls a function, and reports what they hold after it.
 *
 * void kt_regs_call(const uint64_t in[6], uint64_t out[6],
 *                   void *(*fn)(void *, void *, void *), void *a, void *b);
 *   rbx, rbp, r12, r13, r14, r15 = in[0..5]; fn(a, b, <anything>);
 *   out[0..5] = rbx, rbp, r12, r13, r14, r15.
 * fn may be a backend's jump itself, so that nothing but the switch stands
 * between the values loaded and the values checked.
 * The caller's own values of those registers are restored before it returns.
 * Assembles to nothing on other targets (the test is then skipped).
 */
#if defined(__x86_64__) && !defined(_WIN32) && !defined(__APPLE__)
    .text
    .globl  kt_regs_call
    .type   kt_regs_call, @function
    .p2align 4
kt_regs_call:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    pushq   %rsi                /* out; the stack is now 16-byte aligned */
    .cfi_adjust_cfa_offset 8
    movq    %rdx, %rax
    movq    %rcx, %r9           /* a */
    movq    0x00(%rdi), %rbx
    movq    0x08(%rdi), %rbp
    movq    0x10(%rdi), %r12
    movq    0x18(%rdi), %r13
    movq    0x20(%rdi), %r14
    movq    0x28(%rdi), %r15
    movq    %r9, %rdi
    movq    %r8, %rsi           /* b */
    callq   *%rax
    popq    %rsi
    .cfi_adjust_cfa_offset -8
    movq    %rbx, 0x00(%rsi)
    movq    %rbp, 0x08(%rsi)
    movq    %r12, 0x10(%rsi)
    movq    %r13, 0x18(%rsi)
    movq    %r14, 0x20(%rsi)
    movq    %r15, 0x28(%rsi)
    popq    %r15
    .cfi_adjust_cfa_offset -8
    popq    %r14
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size   kt_regs_call, .-kt_regs_call
#endif

#if defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
