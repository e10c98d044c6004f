/*
 * switch_i386_sysv_elf.S - context switch for i386, System V ABI (cdecl), ELF.
 *
 * void *ko_asm_jump(void **from, void **to, void *value);
 *   Saves the callee-saved state on the current stack, stores the stack
 *   pointer in *from, loads *to and restores the state saved there; the
 *   other side's pending ko_asm_jump returns `value` (the backend
 *   interface's jump, engine/src/backend.h).
 * void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);
 *   Builds a frame below `top` that ko_asm_jump can return into and returns
 *   the stack pointer to store in a context (`lo` is not needed here: this
 *   ABI records no stack bounds). entry(arg) runs with the stack 16-byte
 *   aligned at the call (what GCC assumes on i386 Linux since 4.5), and must
 *   never return.
 *
 * Arguments come on the stack; eax, ecx and edx are scratch.
 *
 * Saved frame, as the stack pointer in a context sees it:
 *
 *   sp + 0x1c | 0               | new context only: null return address
 *   sp + 0x18 | return address  | <- ko_asm_start for a new context
 *   sp + 0x14 | ebp             |
 *   sp + 0x10 | ebx             |
 *   sp + 0x0c | esi             | <- entry, for a new context
 *   sp + 0x08 | edi             | <- arg, for a new context
 *   sp + 0x04 | x87 control word| (16 bits, 16 spare)
 *   sp + 0x00 | MXCSR           |
 *
 * The FP control state (MXCSR's control bits, the x87 control word) is per
 * context: a rounding mode set in one coroutine does not leak into another.
 * A new context starts with the values of the thread that made it. MXCSR's
 * six sticky exception flags stay the thread's: the switch loads MXCSR only
 * when the target's control bits differ, and then on the current flags,
 * and the x87 control word only when it differs (why:
 * switch_x86_64_sysv_elf.S). (stmxcsr needs SSE, which every x86
 * CPU of this century has.)
 */
    .text
    .globl  ko_asm_jump
    .hidden ko_asm_jump
    .type   ko_asm_jump, @function
    .p2align 4
ko_asm_jump:
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
    subl    $8, %esp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%esp)
    fnstcw  4(%esp)
    movl    %esp, (%eax)
    movl    (%esp), %eax        /* the current MXCSR */
    movzwl  4(%esp), %ebx       /* the current x87 control word (ebx is saved: free) */
    movl    (%edx), %esp        /* same frame layout: the CFI still holds */
    movl    (%esp), %edx        /* the target's MXCSR */
    xorl    %eax, %edx
    testl   $0xffc0, %edx       /* its control bits differ? */
    jz      1f
    xorl    %eax, %edx          /* then its control bits on the current flags */
    andl    $0xffc0, %edx
    andl    $0x3f, %eax
    orl     %eax, %edx
    movl    %edx, (%esp)
    ldmxcsr (%esp)
1:  cmpw    4(%esp), %bx        /* the target's differs? */
    je      2f
    fldcw   4(%esp)
2:
    addl    $8, %esp
    .cfi_adjust_cfa_offset -8
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
    .size   ko_asm_jump, .-ko_asm_jump

    .globl  ko_asm_make
    .hidden ko_asm_make
    .type   ko_asm_make, @function
    .p2align 4
ko_asm_make:
    .cfi_startproc
    movl    4(%esp), %eax        /* top */
    andl    $-16, %eax          /* align the top */
    subl    $0x2c, %eax         /* frame; after its ret, sp = top - 0x10 */
    stmxcsr (%eax)
    fnstcw  4(%eax)
    movl    16(%esp), %ecx      /* arg */
    movl    %ecx, 0x08(%eax)    /* edi = arg */
    movl    12(%esp), %ecx      /* entry */
    movl    %ecx, 0x0c(%eax)    /* esi = entry */
    movl    $0, 0x10(%eax)      /* ebx */
    movl    $0, 0x14(%eax)      /* ebp: ends frame-pointer walks */
    /* The address of ko_asm_start without a text relocation (PIC). */
    call    1f
1:  .cfi_adjust_cfa_offset 4
    popl    %ecx
    .cfi_adjust_cfa_offset -4
    leal    (ko_asm_start - 1b)(%ecx), %ecx
    movl    %ecx, 0x18(%eax)
    movl    $0, 0x1c(%eax)      /* a null return address above the start */
    ret
    .cfi_endproc
    .size   ko_asm_make, .-ko_asm_make

    .type   ko_asm_start, @function
    .p2align 4
ko_asm_start:
    .cfi_startproc
    .cfi_undefined eip          /* the outermost frame of a coroutine */
    /* Here sp = top - 0x10, 16-byte aligned. */
    subl    $12, %esp
    pushl   %edi                /* arg; sp is 16-byte aligned at the call */
    call    *%esi
    ud2
    .cfi_endproc
    .size   ko_asm_start, .-ko_asm_start

    .section .note.GNU-stack,"",%progbits
