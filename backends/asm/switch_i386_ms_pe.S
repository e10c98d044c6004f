/*
 * switch_i386_ms_pe.S - context switch for i386 Windows (Win32), cdecl, PE
 * (GNU as syntax, as used by mingw-w64 for i686-w64-mingw32; C symbols take
 * a leading underscore).
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
 *   TIB), and `dealloc` its DeallocationStack: the base of the reservation,
 *   guard pages included, or lo when there is no guard (backends/asm/asm.c
 *   finds it). entry(arg) runs with the stack 16-byte aligned at the call
 *   (more than Win32's 4 bytes: code built with SSE alignment assumptions
 *   is safe too), and must never return.
 *
 * Arguments come on the stack; eax, ecx and edx are scratch. Callee-saved:
 * ebx, esi, edi, ebp, and the control bits of MXCSR and of the x87 control
 * word.
 *
 * Saved frame, as the stack pointer in a context sees it:
 *
 *   sp + 0x2c | 0                 | new context only: null return address
 *   sp + 0x28 | return address    | <- ko_asm_start for a new context
 *   sp + 0x24 | ebp               |
 *   sp + 0x20 | ebx               |
 *   sp + 0x1c | esi               | <- entry, for a new context
 *   sp + 0x18 | edi               | <- arg, for a new context
 *   sp + 0x14 | StackBase         | fs:0x04  <- top (16-aligned), new context
 *   sp + 0x10 | StackLimit        | fs:0x08  <- lo, for a new context
 *   sp + 0x0c | DeallocationStack | fs:0xE0C <- dealloc, for a new context
 *   sp + 0x08 | ExceptionList     | fs:0x00  <- -1 (end of list), new context
 *   sp + 0x04 | x87 control word  | (16 bits, 16 spare)
 *   sp + 0x00 | MXCSR             |
 *
 * The FP control state (MXCSR's control bits, the x87 control word) is per
 * context: a rounding mode set in one coroutine does not leak into another.
 * A new context starts with the values of the thread that made it. MXCSR's
 * six sticky exception flags stay the thread's: the switch loads MXCSR only
 * when the target's control bits differ, and then on the current flags,
 * and the x87 control word only when it differs (why:
 * switch_x86_64_sysv_elf.S). (stmxcsr needs SSE, which every x86
 * CPU Windows still runs on has.)
 *
 * The TIB's stack bounds are per context, as on Win64: exception dispatch
 * checks frames against them. On Win32 the ExceptionList is the SEH chain
 * itself: RtlDispatchException walks it from fs:0x00 and rejects a
 * registration record that lies outside [StackLimit, StackBase), so each
 * context keeps its own chain, and a new context's is empty (-1): the
 * records of the stack that made it belong to that stack. FiberData
 * (fs:0x10) is not switched, for the reason given in
 * switch_x86_64_ms_pe.S.
 *
 * Unwinding: mingw-w64's i686 code unwinds with DWARF CFI (.eh_frame), as
 * on Linux: ko_asm_jump's CFI describes its frame, which every context
 * shares, so it holds on both sides of the switch; ko_asm_start marks its
 * return address undefined, the outermost frame of a coroutine.
 */
    .text
    .globl  _ko_asm_jump
    .def    _ko_asm_jump; .scl 2; .type 32; .endef
    .p2align 4
_ko_asm_jump:
    .cfi_startproc
    movl    4(%esp), %eax        /* from */
    movl    8(%esp), %edx        /* to */
    movl    12(%esp), %ecx      /* value */
    pushl   %ebp
    .cfi_adjust_cfa_offset 4
    .cfi_rel_offset ebp, 0
    pushl   %ebx
    .cfi_adjust_cfa_offset 4
    .cfi_rel_offset ebx, 0
    pushl   %esi
    .cfi_adjust_cfa_offset 4
    .cfi_rel_offset esi, 0
    pushl   %edi
    .cfi_adjust_cfa_offset 4
    .cfi_rel_offset edi, 0
    subl    $0x18, %esp
    .cfi_adjust_cfa_offset 0x18
    stmxcsr 0x00(%esp)
    fnstcw  0x04(%esp)
    movl    %fs:0x00, %ebx      /* ebx is saved: free as scratch */
    movl    %ebx, 0x08(%esp)
    movl    %fs:0xE0C, %ebx
    movl    %ebx, 0x0c(%esp)
    movl    %fs:0x08, %ebx
    movl    %ebx, 0x10(%esp)
    movl    %fs:0x04, %ebx
    movl    %ebx, 0x14(%esp)

    movl    %esp, (%eax)
    movl    0x00(%esp), %eax        /* the current MXCSR */
    movzwl  0x04(%esp), %esi    /* the current x87 control word (esi is saved: free) */
    movl    (%edx), %esp        /* same frame layout: the CFI still holds */

    movl    0x14(%esp), %ebx
    movl    %ebx, %fs:0x04
    movl    0x10(%esp), %ebx
    movl    %ebx, %fs:0x08
    movl    0x0c(%esp), %ebx
    movl    %ebx, %fs:0xE0C
    movl    0x08(%esp), %ebx
    movl    %ebx, %fs:0x00
    movl    0x00(%esp), %edx        /* the target's MXCSR */
    xorl    %eax, %edx
    testl   $0xffc0, %edx       /* its control bits differ? */
    jz      1f
    xorl    %eax, %edx          /* then its control bits on the current flags */
    andl    $0xffc0, %edx
    andl    $0x3f, %eax
    orl     %eax, %edx
    movl    %edx, 0x00(%esp)
    ldmxcsr 0x00(%esp)
1:  cmpw    0x04(%esp), %si     /* the target's differs? */
    je      2f
    fldcw   0x04(%esp)
2:
    addl    $0x18, %esp
    .cfi_adjust_cfa_offset -0x18
    popl    %edi
    .cfi_adjust_cfa_offset -4
    .cfi_restore edi
    popl    %esi
    .cfi_adjust_cfa_offset -4
    .cfi_restore esi
    popl    %ebx
    .cfi_adjust_cfa_offset -4
    .cfi_restore ebx
    popl    %ebp
    .cfi_adjust_cfa_offset -4
    .cfi_restore ebp
    movl    %ecx, %eax          /* the value */
    ret
    .cfi_endproc

    .globl  _ko_asm_make
    .def    _ko_asm_make; .scl 2; .type 32; .endef
    .p2align 4
_ko_asm_make:
    .cfi_startproc
    movl    4(%esp), %eax        /* top */
    andl    $-16, %eax          /* align the top */
    movl    %eax, %edx
    subl    $0x3c, %eax         /* frame; after its ret, sp = top - 0x10 */
    stmxcsr 0x00(%eax)
    fnstcw  0x04(%eax)
    movl    $-1, 0x08(%eax)     /* ExceptionList: empty */
    movl    20(%esp), %ecx      /* dealloc */
    movl    %ecx, 0x0c(%eax)    /* DeallocationStack */
    movl    8(%esp), %ecx       /* lo */
    movl    %ecx, 0x10(%eax)    /* StackLimit */
    movl    %edx, 0x14(%eax)    /* StackBase = top (aligned) */
    movl    16(%esp), %ecx      /* arg */
    movl    %ecx, 0x18(%eax)    /* edi = arg */
    movl    12(%esp), %ecx      /* entry */
    movl    %ecx, 0x1c(%eax)    /* esi = entry */
    movl    $0, 0x20(%eax)      /* ebx */
    movl    $0, 0x24(%eax)      /* ebp: ends frame-pointer walks */
    movl    $_ko_asm_start, 0x28(%eax)
    movl    $0, 0x2c(%eax)      /* a null return address above the start */
    ret
    .cfi_endproc

    .def    _ko_asm_start; .scl 3; .type 32; .endef
    .p2align 4
_ko_asm_start:
    .cfi_startproc
    .cfi_undefined eip          /* the outermost frame of a coroutine */
    /* Here sp = top - 0x10, 16-byte aligned. */
    subl    $12, %esp
    pushl   %edi                /* arg; sp is 16-byte aligned at the call */
    call    *%esi
    ud2                         /* entry returned: a bug */
    .cfi_endproc
