/*
 * switch_x86_64_ms_pe.S - context switch for x86-64, Microsoft x64 ABI, PE
 * (GNU as syntax, as used by mingw-w64 and clang for *-w64-mingw32).
 *
 * void *ko_asm_jump(void **from, void **to, void *value);
 *   Saves the callee-saved state on the current stack, stores the stack
 *   pointer in *from, loads *to and restores the state saved there; the
 *   other side's pending ko_asm_jump returns `value` (the backend
 *   interface's jump, engine/src/backend.h).
 * void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg,
 *                   void *dealloc);
 *   Builds a frame below `top` that ko_asm_jump can return into and returns
 *   the stack pointer to store in a context. [lo, top) becomes the stack
 *   Windows sees while the context runs (StackLimit and StackBase in the
 *   TIB, which exception dispatch and __chkstk check), and `dealloc` its
 *   DeallocationStack: the base of the reservation, guard pages included
 *   (stack overflow handling looks there), or lo when there is no guard
 *   (backends/asm/asm.c finds it). entry(arg) runs with
 *   the stack 16-byte aligned at the call and 32 bytes of home (shadow)
 *   space above its return address, and must never return.
 *
 * Arguments in rcx, rdx, r8, r9. Callee-saved: rbx, rbp, rdi, rsi, r12-r15,
 * xmm6-xmm15, and the control bits of MXCSR and of the x87 control word.
 *
 * Saved frame, as the stack pointer in a context sees it (sp is 16-byte
 * aligned, so the xmm slots are too):
 *
 *   sp + 0x110 | 0, 0           | new context only: null return address
 *   sp + 0x108 | return address | <- ko_asm_start for a new context
 *   sp + 0x100 | rbp            |
 *   sp + 0x0f8 | rbx            |
 *   sp + 0x0f0 | rdi            |
 *   sp + 0x0e8 | rsi            |
 *   sp + 0x0e0 | r12            | <- entry, for a new context
 *   sp + 0x0d8 | r13            | <- arg, for a new context
 *   sp + 0x0d0 | r14            |
 *   sp + 0x0c8 | r15            |
 *   sp + 0x0c0 | StackBase      | gs:0x08   <- top (16-aligned), new context
 *   sp + 0x0b8 | StackLimit     | gs:0x10   <- lo, for a new context
 *   sp + 0x0b0 | DeallocationStack | gs:0x1478 <- dealloc, new context
 *   sp + 0x0a8 | ExceptionList  | gs:0x00   <- -1 (end of list), new context
 *   sp + 0x0a4 | x87 control word | (16 bits, 16 spare)
 *   sp + 0x0a0 | MXCSR          |
 *   sp + 0x090 | xmm15          |
 *   sp + 0x080 | xmm14          |
 *   sp + 0x070 | xmm13          |
 *   sp + 0x060 | xmm12          |
 *   sp + 0x050 | xmm11          |
 *   sp + 0x040 | xmm10          |
 *   sp + 0x030 | xmm9           |
 *   sp + 0x020 | xmm8           |
 *   sp + 0x010 | xmm7           |
 *   sp + 0x000 | xmm6           |
 *
 * The FP control state (MXCSR's control bits, the x87 control word) is per
 * context: a rounding mode set in one coroutine does not leak into another.
 * A new context starts with the values of the thread that made it. MXCSR's
 * six sticky exception flags stay the thread's: the switch loads MXCSR only
 * when the target's control bits differ, and then on the current flags,
 * and the x87 control word only when it differs (why:
 * switch_x86_64_sysv_elf.S).
 *
 * The TIB's stack bounds are per context: they must describe the stack in
 * use, or RtlDispatchException rejects the frames of a coroutine as lying
 * outside the thread's stack, and __chkstk/the guard-page logic misjudge
 * it. ExceptionList (gs:0x00) is not used by x64 Windows itself, but Wine
 * chains its own internal handler frames there, which live on the stack in
 * use; so it is per context too, and empty in a new one (without this, Wine
 * 8 runs the main stack's handlers for an exception raised in a coroutine
 * and a C++ exception caught inside the coroutine ends in terminate()).
 * FiberData (gs:0x20) is deliberately NOT switched: it names the Win32
 * fiber running on this thread, which is the one a SwitchToFiber() made
 * from inside a coroutine must save into; our contexts live inside that
 * fiber. A per-context copy would go stale as soon as the thread were
 * converted to or from a fiber after the context was made.
 *
 * Unwinding: ko_asm_jump's unwind data describe its frame, which every
 * context shares, so it holds on both sides of the stack switch.
 * ko_asm_start's unwind data lead to the null return address above it,
 * where stack walks and exception dispatch end.
 */
    .text
    .globl  ko_asm_jump
    .def    ko_asm_jump; .scl 2; .type 32; .endef
    .p2align 4
ko_asm_jump:
    .seh_proc ko_asm_jump
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
    subq    $0xc8, %rsp
    .seh_stackalloc 0xc8
    movaps  %xmm6, 0x00(%rsp)
    .seh_savexmm %xmm6, 0x00
    movaps  %xmm7, 0x10(%rsp)
    .seh_savexmm %xmm7, 0x10
    movaps  %xmm8, 0x20(%rsp)
    .seh_savexmm %xmm8, 0x20
    movaps  %xmm9, 0x30(%rsp)
    .seh_savexmm %xmm9, 0x30
    movaps  %xmm10, 0x40(%rsp)
    .seh_savexmm %xmm10, 0x40
    movaps  %xmm11, 0x50(%rsp)
    .seh_savexmm %xmm11, 0x50
    movaps  %xmm12, 0x60(%rsp)
    .seh_savexmm %xmm12, 0x60
    movaps  %xmm13, 0x70(%rsp)
    .seh_savexmm %xmm13, 0x70
    movaps  %xmm14, 0x80(%rsp)
    .seh_savexmm %xmm14, 0x80
    movaps  %xmm15, 0x90(%rsp)
    .seh_savexmm %xmm15, 0x90
    .seh_endprologue
    stmxcsr 0xa0(%rsp)
    fnstcw  0xa4(%rsp)
    movq    %gs:0x00, %rax
    movq    %rax, 0xa8(%rsp)
    movq    %gs:0x1478, %rax
    movq    %rax, 0xb0(%rsp)
    movq    %gs:0x10, %rax
    movq    %rax, 0xb8(%rsp)
    movq    %gs:0x08, %rax
    movq    %rax, 0xc0(%rsp)

    movl    0xa0(%rsp), %r9d    /* the current MXCSR */
    movzwl  0xa4(%rsp), %r11d   /* the current x87 control word */
    movq    %rsp, (%rcx)
    movq    (%rdx), %rsp

    movq    0xc0(%rsp), %rax
    movq    %rax, %gs:0x08
    movq    0xb8(%rsp), %rax
    movq    %rax, %gs:0x10
    movq    0xb0(%rsp), %rax
    movq    %rax, %gs:0x1478
    movq    0xa8(%rsp), %rax
    movq    %rax, %gs:0x00
    movl    0xa0(%rsp), %r10d   /* the target's */
    xorl    %r9d, %r10d
    testl   $0xffc0, %r10d      /* its control bits differ? */
    jz      1f
    xorl    %r9d, %r10d         /* then its control bits on the current flags */
    andl    $0xffc0, %r10d
    andl    $0x3f, %r9d
    orl     %r9d, %r10d
    movl    %r10d, 0xa0(%rsp)
    ldmxcsr 0xa0(%rsp)
1:  cmpw    0xa4(%rsp), %r11w   /* the target's differs? */
    je      2f
    fldcw   0xa4(%rsp)
2:
    movaps  0x00(%rsp), %xmm6
    movaps  0x10(%rsp), %xmm7
    movaps  0x20(%rsp), %xmm8
    movaps  0x30(%rsp), %xmm9
    movaps  0x40(%rsp), %xmm10
    movaps  0x50(%rsp), %xmm11
    movaps  0x60(%rsp), %xmm12
    movaps  0x70(%rsp), %xmm13
    movaps  0x80(%rsp), %xmm14
    movaps  0x90(%rsp), %xmm15
    addq    $0xc8, %rsp         /* from here on, an epilogue Windows knows */
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rsi
    popq    %rdi
    popq    %rbx
    popq    %rbp
    movq    %r8, %rax           /* the value */
    ret
    .seh_endproc

    .globl  ko_asm_make
    .def    ko_asm_make; .scl 2; .type 32; .endef
    .p2align 4
ko_asm_make:
    .seh_proc ko_asm_make
    .seh_endprologue
    andq    $-16, %rcx          /* align the top */
    leaq    -0x120(%rcx), %rax  /* frame; after its ret, sp = top - 0x10 */
    /* xmm6-xmm15 start zeroed. */
    xorps   %xmm0, %xmm0
    movaps  %xmm0, 0x00(%rax)
    movaps  %xmm0, 0x10(%rax)
    movaps  %xmm0, 0x20(%rax)
    movaps  %xmm0, 0x30(%rax)
    movaps  %xmm0, 0x40(%rax)
    movaps  %xmm0, 0x50(%rax)
    movaps  %xmm0, 0x60(%rax)
    movaps  %xmm0, 0x70(%rax)
    movaps  %xmm0, 0x80(%rax)
    movaps  %xmm0, 0x90(%rax)
    movq    $0, 0xa0(%rax)
    stmxcsr 0xa0(%rax)
    fnstcw  0xa4(%rax)
    movq    $-1, 0xa8(%rax)     /* ExceptionList: empty */
    movq    0x28(%rsp), %r10    /* the 5th argument, above the home space */
    movq    %r10, 0xb0(%rax)    /* DeallocationStack = dealloc */
    movq    %rdx, 0xb8(%rax)    /* StackLimit = lo */
    movq    %rcx, 0xc0(%rax)    /* StackBase = top (aligned) */
    movq    $0, 0xc8(%rax)      /* r15 */
    movq    $0, 0xd0(%rax)      /* r14 */
    movq    %r9, 0xd8(%rax)     /* r13 = arg */
    movq    %r8, 0xe0(%rax)     /* r12 = entry */
    movq    $0, 0xe8(%rax)      /* rsi */
    movq    $0, 0xf0(%rax)      /* rdi */
    movq    $0, 0xf8(%rax)      /* rbx */
    movq    $0, 0x100(%rax)     /* rbp: ends frame-pointer walks */
    leaq    ko_asm_start(%rip), %rcx
    movq    %rcx, 0x108(%rax)
    movq    $0, 0x110(%rax)     /* the null return address of ko_asm_start */
    movq    $0, 0x118(%rax)
    ret
    .seh_endproc

    .def    ko_asm_start; .scl 3; .type 32; .endef
    .p2align 4
ko_asm_start:
    /* Entered by ko_asm_jump's ret with sp = top - 0x10 and a zero at sp:
     * to the unwinder this is a function whose return address is null. */
    .seh_proc ko_asm_start
    subq    $0x20, %rsp         /* entry's home space; sp stays aligned */
    .seh_stackalloc 0x20
    .seh_endprologue
    movq    %r13, %rcx
    callq   *%r12
    ud2                         /* entry returned: a bug */
    .seh_endproc
