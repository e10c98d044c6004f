/*
 * regs_win.S - regs_x86_64.S for Windows (the build adds it there): loads
 * known values into the callee-saved general registers, calls a function,
 * and reports what they hold after it.
 *
 * void kt_regs_call(const uintptr_t in[N], uintptr_t out[N],
 *                   void *(*fn)(void *, void *, void *), void *a, void *b);
 *   Win64 (N = 8): rbx, rbp, rdi, rsi, r12, r13, r14, r15 = in[0..7];
 *   Win32 (N = 4, cdecl): ebx, esi, edi, ebp = in[0..3];
 *   fn(a, b, <anything>); then out[] = the same registers.
 * fn may be a backend's jump itself, so that nothing but the switch stands
 * between the values loaded and the values checked. The caller's own values
 * of those registers are restored before it returns.
 */
#if defined(_WIN64)
    .text
    .globl  kt_regs_call
    .def    kt_regs_call; .scl 2; .type 32; .endef
    .p2align 4
kt_regs_call:
    .seh_proc kt_regs_call
    pushq   %rbp
    .seh_pushreg %rbp
    pushq   %rbx
    .seh_pushreg %rbx
    pushq   %rdi
    .seh_pushreg %rdi
    pushq   %rsi
    .seh_pushreg %rsi
    pushq   %r12
    .seh_pushreg %r12
    pushq   %r13
    .seh_pushreg %r13
    pushq   %r14
    .seh_pushreg %r14
    pushq   %r15
    .seh_pushreg %r15
    subq    $0x38, %rsp         /* home space, out at 0x30; sp 16-aligned */
    .seh_stackalloc 0x38
    .seh_endprologue
    movq    %rdx, 0x30(%rsp)    /* out */
    movq    %r8, %rax           /* fn */
    movq    0xa0(%rsp), %rdx    /* b: the 5th argument, above our frame */
    movq    %rcx, %r10          /* in */
    movq    %r9, %rcx           /* a */
    movq    0x00(%r10), %rbx
    movq    0x08(%r10), %rbp
    movq    0x10(%r10), %rdi
    movq    0x18(%r10), %rsi
    movq    0x20(%r10), %r12
    movq    0x28(%r10), %r13
    movq    0x30(%r10), %r14
    movq    0x38(%r10), %r15
    callq   *%rax
    movq    0x30(%rsp), %rax
    movq    %rbx, 0x00(%rax)
    movq    %rbp, 0x08(%rax)
    movq    %rdi, 0x10(%rax)
    movq    %rsi, 0x18(%rax)
    movq    %r12, 0x20(%rax)
    movq    %r13, 0x28(%rax)
    movq    %r14, 0x30(%rax)
    movq    %r15, 0x38(%rax)
    addq    $0x38, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rsi
    popq    %rdi
    popq    %rbx
    popq    %rbp
    ret
    .seh_endproc
#elif defined(_WIN32) && defined(__i386__)
    .text
    .globl  _kt_regs_call
    .def    _kt_regs_call; .scl 2; .type 32; .endef
    .p2align 4
_kt_regs_call:
    .cfi_startproc
    pushl   %ebp
    .cfi_adjust_cfa_offset 4
    pushl   %ebx
    .cfi_adjust_cfa_offset 4
    pushl   %esi
    .cfi_adjust_cfa_offset 4
    pushl   %edi
    .cfi_adjust_cfa_offset 4
    subl    $16, %esp           /* fn's three arguments */
    .cfi_adjust_cfa_offset 16
    /* Now in = 36(%esp), out = 40, fn = 44, a = 48, b = 52. */
    movl    48(%esp), %edx
    movl    %edx, 0(%esp)
    movl    52(%esp), %edx
    movl    %edx, 4(%esp)
    movl    $0, 8(%esp)
    movl    44(%esp), %ecx      /* fn */
    movl    36(%esp), %eax      /* in */
    movl    0(%eax), %ebx
    movl    4(%eax), %esi
    movl    8(%eax), %edi
    movl    12(%eax), %ebp
    call    *%ecx
    movl    40(%esp), %eax      /* out */
    movl    %ebx, 0(%eax)
    movl    %esi, 4(%eax)
    movl    %edi, 8(%eax)
    movl    %ebp, 12(%eax)
    addl    $16, %esp
    .cfi_adjust_cfa_offset -16
    popl    %edi
    .cfi_adjust_cfa_offset -4
    popl    %esi
    .cfi_adjust_cfa_offset -4
    popl    %ebx
    .cfi_adjust_cfa_offset -4
    popl    %ebp
    .cfi_adjust_cfa_offset -4
    ret
    .cfi_endproc
#endif
