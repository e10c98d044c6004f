/*
 * switch_x86_64_sysv_elf.S - context switch for x86-64, System V ABI, ELF.
 *
 * void *ko_asm_resume(void *back, void *ctx, void *value);
 *   Saves the running state on the running stack and the stack pointer in
 *   the back context `back`, continues in the coroutine context `ctx`.
 * void *ko_asm_yield(void *ctx, void *back, void *value);
 *   Saves the running state into the coroutine context `ctx`, continues in
 *   whoever is suspended in the back context `back`.
 * void *ko_asm_jump(void *from, void *to, void *value);
 *   From one coroutine context to another (the engine's transfer).
 *   Each returns, in the side it continues, `value` from that side's pending
 *   call (the backend interface, engine/src/backend.h).
 * void ko_asm_make(void *ctx, void *top, void *lo, void (*entry)(void *), void *arg);
 *   Fills the coroutine context `ctx` so that the first switch into it runs
 *   entry(arg) on the stack below `top` (`lo`, the stack's lowest usable
 *   byte, is unused on this ABI), with the stack 16-byte aligned at the
 *   call; entry must never return.
 *
 * A coroutine context (KO_ASM_CTX_SIZE bytes, in the coroutine's record):
 *
 *   ctx + 0x44 | x87 control word| (16 bits)
 *   ctx + 0x40 | MXCSR           | (only its control bits are loaded back)
 *   ctx + 0x38 | r15             |
 *   ctx + 0x30 | r14             |
 *   ctx + 0x28 | r13             | <- arg, for a new context
 *   ctx + 0x20 | r12             | <- entry, for a new context
 *   ctx + 0x18 | rbp             |
 *   ctx + 0x10 | rbx             |
 *   ctx + 0x08 | rsp             | the stack pointer after the return
 *   ctx + 0x00 | return address  | <- ko_asm_start, for a new context
 *
 * A back context is the saved stack pointer of whoever resumed the
 * coroutine; its state is on its own stack, as jump_fcontext keeps it:
 *
 *   sp + 0x38 | return address  |
 *   sp + 0x30 | rbp             |
 *   sp + 0x28 | rbx             |
 *   sp + 0x20 | r12             |
 *   sp + 0x18 | r13             |
 *   sp + 0x10 | r14             |
 *   sp + 0x08 | r15             |
 *   sp + 0x04 | x87 control word| (16 bits, 16 spare)
 *   sp + 0x00 | MXCSR           |
 *
 * Why two kinds: each side is saved where it is cheapest to read back. A
 * resume reads only the coroutine's context, whose address the engine knows
 * before the switch (the record), and not also a frame on the coroutine's
 * stack that is found only once the saved stack pointer has been loaded:
 * with many coroutines out of the cache, one miss per resume instead of two
 * in a row. The resumer is saved on its own stack, which is in the cache,
 * and not into a record that may not be. korutin-bench, against the
 * jump_fcontext-style layout (every side on its stack), on one host:
 * ping-pong 2.9 -> 2.6 ns per switch, 1,024 coroutines round-robin 68 ->
 * 114 M round trips/s, 16,384: 25 -> 41 M. (Both sides in contexts was
 * slower at 16,384, 34 -> 23 M: the resumer's registers were written into
 * records out of the cache.)
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
 * Comparing needs the current MXCSR, which only a store can read: the load
 * of what stmxcsr just wrote is the dearest step of the switch on AMD Zen 4,
 * so the saves leave only its address (rcx) and the loads compare last,
 * after the registers. Ping-pong of the bare switch pairs on a Zen 4 guest
 * (21 interleaved runs, medians, jump_fcontext 5.4 ns): compared first
 * 6.55 ns, compared last 6.28; with no FP state at all 3.3; loading the
 * saved MXCSR whole (flags per context) 5.1. With 1,024 coroutines
 * round-robin: 74 -> 78 M round trips/s (no FP state: 106 M).
 *
 * How each switch leaves decides what the CPU's return-address predictor
 * (a stack of the addresses its `call`s pushed) expects next:
 * - resume and yield leave through `jmp` to the saved return address. Their
 *   two sides are at different call sites (a resumer's ko_resume, a
 *   coroutine's ko_yield), so a `ret` would always miss (the address it
 *   pops belongs to the other side), while the indirect jump is predicted
 *   by the branch target buffer: measured on x86-64 this roughly halves
 *   the cost of a resume + yield pair.
 * - jump (a transfer between two coroutines, as a scheduler's tasks hand
 *   the CPU on) leaves through `ret` when the target is suspended at the
 *   very call site the switch is called from (every task of a scheduler
 *   transfers from one place), and through `jmp` otherwise. That `ret` is
 *   predicted right and keeps the predictor's stack in step; a `jmp` leaves
 *   the entry its caller's `call` pushed behind, so every `ret` the target
 *   makes afterwards pops the wrong address. Measured (ns per transfer):
 *   two tasks yielding in turn through the C scheduler, 23 -> 11.4 (the
 *   channel round trip 74 -> 55); two loops transferring from different
 *   sites, 3.9 either way (a `ret` there would cost 15).
 */
/* Save the running state: on the stack, the stack pointer into *rdi.
 * Leaves rcx at the saved MXCSR (read back only later, see the top) and
 * r11 the current x87 control word. */
.macro SAVE_STACK
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
    movq    %rsp, %rcx          /* where the current MXCSR is */
    movzwl  4(%rsp), %r11d      /* the current x87 control word */
.endm

/* Save the running state into the coroutine context at rdi; rcx and r11
 * as SAVE_STACK's, r8 our return address. */
.macro SAVE_CTX
    movq    (%rsp), %r8         /* our return address */
    leaq    8(%rsp), %r9        /* our stack pointer after the return */
    stmxcsr 0x40(%rdi)
    fnstcw  0x44(%rdi)
    movq    %r8, 0x00(%rdi)
    movq    %r9, 0x08(%rdi)
    movq    %rbx, 0x10(%rdi)
    movq    %rbp, 0x18(%rdi)
    movq    %r12, 0x20(%rdi)
    movq    %r13, 0x28(%rdi)
    movq    %r14, 0x30(%rdi)
    movq    %r15, 0x38(%rdi)
    leaq    0x40(%rdi), %rcx    /* where the current MXCSR is */
    movzwl  0x44(%rdi), %r11d   /* the current x87 control word */
.endm

/* Whether the target's MXCSR at `slot` has other control bits than the
 * current one (at rcx): then to 2f. */
.macro MXCSR_DIFFERS slot
    movl    \slot, %r10d
    xorl    (%rcx), %r10d
    testl   $0xffc0, %r10d
    jnz     2f
.endm

/* The target's control bits at `slot` with the current flags, stored
 * there and loaded. */
.macro MERGE_MXCSR slot
    movl    (%rcx), %r9d
    andl    $0x3f, %r9d         /* the current flags */
    movl    \slot, %r10d
    andl    $0xffc0, %r10d      /* the target's control bits */
    orl     %r9d, %r10d
    movl    %r10d, \slot
    ldmxcsr \slot
.endm

/* Continue in the coroutine context at rsi, returning rdx. `leave`: jmp
 * always, or ret when the target's return address is ours (r8, from
 * SAVE_CTX); see the top of this file. */
.macro LOAD_CTX leave=jmp
    movq    %rdx, %rax          /* the value */
    cmpw    0x44(%rsi), %r11w   /* its x87 control word differs? */
    jne     3f
4:  movq    0x10(%rsi), %rbx
    movq    0x18(%rsi), %rbp
    movq    0x20(%rsi), %r12
    movq    0x28(%rsi), %r13
    movq    0x30(%rsi), %r14
    movq    0x38(%rsi), %r15
    MXCSR_DIFFERS 0x40(%rsi)
1:  movq    0x08(%rsi), %rsp
.ifc \leave,jmp
    jmp     *0x00(%rsi)
.else
    cmpq    0x00(%rsi), %r8     /* suspended where we are called from? */
    jne     5f
    pushq   %r8
    ret
5:  jmp     *0x00(%rsi)
.endif
2:  MERGE_MXCSR 0x40(%rsi)      /* the target's context is ours until it runs */
    jmp     1b
3:  fldcw   0x44(%rsi)
    jmp     4b
.endm

/* Continue in whoever is suspended in the back context at rsi, returning rdx. */
.macro LOAD_STACK
    movq    %rdx, %rax          /* the value */
    movq    (%rsi), %rsp
    movq    0x38(%rsp), %r8
    cmpw    4(%rsp), %r11w
    jne     3f
4:  movq    0x08(%rsp), %r15
    movq    0x10(%rsp), %r14
    movq    0x18(%rsp), %r13
    movq    0x20(%rsp), %r12
    movq    0x28(%rsp), %rbx
    movq    0x30(%rsp), %rbp
    MXCSR_DIFFERS (%rsp)
1:  leaq    0x40(%rsp), %rsp
    jmp     *%r8
2:  MERGE_MXCSR (%rsp)
    jmp     1b
3:  fldcw   4(%rsp)
    jmp     4b
.endm

.macro SWITCH name, save, load
    .globl  \name
    .hidden \name
    .type   \name, @function
    .p2align 4
\name:
    .cfi_startproc
    \save
    \load
    .cfi_endproc
    .size   \name, .-\name
.endm

    .text
    SWITCH  ko_asm_resume, SAVE_STACK, LOAD_CTX
    SWITCH  ko_asm_yield, SAVE_CTX, LOAD_STACK
    SWITCH  ko_asm_jump, SAVE_CTX, "LOAD_CTX ret"

    .globl  ko_asm_make
    .hidden ko_asm_make
    .type   ko_asm_make, @function
    .p2align 4
ko_asm_make:
    .cfi_startproc
    andq    $-16, %rsi          /* align the top */
    leaq    -0x10(%rsi), %rax   /* the stack pointer ko_asm_start runs on */
    movq    $0, (%rax)          /* a null return address above the start */
    movq    $0, 8(%rax)
    stmxcsr 0x40(%rdi)
    fnstcw  0x44(%rdi)
    leaq    ko_asm_start(%rip), %r9
    movq    %r9, 0x00(%rdi)
    movq    %rax, 0x08(%rdi)
    movq    $0, 0x10(%rdi)      /* rbx */
    movq    $0, 0x18(%rdi)      /* rbp: ends frame-pointer walks */
    movq    %rcx, 0x20(%rdi)    /* r12 = entry */
    movq    %r8, 0x28(%rdi)     /* r13 = arg */
    movq    $0, 0x30(%rdi)      /* r14 */
    movq    $0, 0x38(%rdi)      /* r15 */
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
