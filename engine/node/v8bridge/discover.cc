// discover.cc - see discover.h.
#include "discover.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <v8.h>

namespace korutin {
namespace {

const char kThreadIdSym[] = "_ZN2v88internal8ThreadId13TryGetCurrentEv";
const char kStackStartSym[] = "_ZN2v84base5Stack13GetStackStartEv";
const char kSetStackLimitSym[] = "_ZN2v87Isolate13SetStackLimitEm";

struct Object { std::string path; uintptr_t bias = 0; };

// The loaded object (executable or libnode) that holds `addr`.
bool ObjectOf(const void *addr, Object *out) {
  struct Q { uintptr_t a; Object *o; bool found; } q{(uintptr_t)addr, out, false};
  dl_iterate_phdr([](dl_phdr_info *info, size_t, void *p) -> int {
    Q *q = static_cast<Q *>(p);
    for (int i = 0; i < info->dlpi_phnum; i++) {
      const ElfW(Phdr) &ph = info->dlpi_phdr[i];
      if (ph.p_type != PT_LOAD) continue;
      uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
      if (q->a >= lo && q->a < lo + ph.p_memsz) {
        q->o->path = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
        q->o->bias = info->dlpi_addr;
        q->found = true;
        return 1;
      }
    }
    return 0;
  }, &q);
  return q.found;
}

// Looks `name` up in the .symtab of the object holding V8.
void *FromSymtab(const char *name, std::string *why) {
  Object obj;
  if (!ObjectOf(reinterpret_cast<const void *>(&v8::Isolate::GetCurrent), &obj)) {
    *why = "cannot tell which loaded object holds V8";
    return nullptr;
  }
  int fd = open(obj.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) { *why = "cannot open " + obj.path; return nullptr; }
  struct stat st;
  void *map = MAP_FAILED;
  if (fstat(fd, &st) == 0) map = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) { *why = "cannot map " + obj.path; return nullptr; }
  void *found = nullptr;
  const auto *eh = static_cast<const ElfW(Ehdr) *>(map);
  const char *base = static_cast<const char *>(map);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shoff) {
    const auto *sh = reinterpret_cast<const ElfW(Shdr) *>(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum && !found; i++) {
      if (sh[i].sh_type != SHT_SYMTAB) continue;
      const auto *syms = reinterpret_cast<const ElfW(Sym) *>(base + sh[i].sh_offset);
      const char *strs = base + sh[sh[i].sh_link].sh_offset;
      size_t n = sh[i].sh_size / sizeof(ElfW(Sym));
      for (size_t k = 0; k < n; k++) {
        if (syms[k].st_value && ELF64_ST_TYPE(syms[k].st_info) == STT_FUNC &&
            strcmp(strs + syms[k].st_name, name) == 0) {
          found = reinterpret_cast<void *>(obj.bias + syms[k].st_value);
          break;
        }
      }
    }
  }
  munmap(map, st.st_size);
  if (!found) *why = std::string("symbol ") + name + " is in neither the dynamic table nor .symtab";
  return found;
}

void *FindFunction(const char *name, std::string *from, std::string *why) {
  if (void *p = dlsym(RTLD_DEFAULT, name)) { *from = "dynamic"; return p; }
  *from = ".symtab";
  return FromSymtab(name, why);
}

uintptr_t ThreadPointer() {
  uintptr_t tp;
#if defined(__x86_64__)
  __asm__("movq %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
  __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#else
  tp = 0;  // no bridge here (see RunDiscovery)
#endif
  return tp;
}

#if defined(__x86_64__)
// Decodes the TLS offset of the first `mov %fs:disp32, reg` in a function:
// an optional `push %rbp; mov %rsp,%rbp` prologue, then
// 64 [REX] 8b modrm(mod=00, rm=100) sib(0x25) disp32.
bool DecodeTlsLoad(const void *fn, long *offset) {
  const unsigned char *p = static_cast<const unsigned char *>(fn);
  if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) p += 4;  // endbr64
  if (p[0] == 0x55) p++;                                                      // push %rbp
  if (p[0] == 0x48 && p[1] == 0x89 && p[2] == 0xe5) p += 3;                   // mov %rsp,%rbp
  if (p[0] != 0x64) return false;
  p++;
  if ((p[0] & 0xf0) == 0x40) p++;  // REX
  if (p[0] != 0x8b || (p[1] & 0xc7) != 0x04 || p[2] != 0x25) return false;
  int32_t disp;
  memcpy(&disp, p + 3, 4);
  *offset = disp;
  return true;
}

// Decodes the isolate field v8::Isolate::SetStackLimit(limit) stores
// GetStackStart() - limit in (V8 13.6+, Node 24 on): a call to GetStackStart
// (e8 rel32) within its first 64 bytes, then within 16 bytes a store of %rax
// to disp32(base): REX.W (48, or 49 for r8-r15) 89 modrm(mod=10, reg=000),
// with a SIB byte that has no index when the base is %rsp or %r12 (Node 24
// keeps the isolate in %r12: 49 89 84 24 disp32). Older V8 has no such
// store: false.
bool DecodeStackSizeStore(const void *fn, const void *get_start, long *offset) {
  const unsigned char *p = static_cast<const unsigned char *>(fn);
  for (int i = 0; i < 64; i++) {
    if (p[i] != 0xe8) continue;
    int32_t rel;
    memcpy(&rel, p + i + 1, 4);
    if (p + i + 5 + rel != static_cast<const unsigned char *>(get_start)) continue;
    const unsigned char *q = p + i + 5;
    for (int k = 0; k < 16; k++) {
      if ((q[k] == 0x48 || q[k] == 0x49) && q[k + 1] == 0x89 && (q[k + 2] & 0xf8) == 0x80) {
        const unsigned char *d = q + k + 3;
        if ((q[k + 2] & 7) == 4) {              // SIB follows
          if ((d[0] & 0x38) != 0x20) return false;  // an index register: not a field
          d++;
        }
        int32_t disp;
        memcpy(&disp, d, 4);
        if (disp <= 0) return false;
        *offset = disp;
        return true;
      }
      if (q[k] == 0xc3) return false;  // ret
    }
    return false;
  }
  return false;
}
#elif defined(__aarch64__)
// Decodes the TLS offset of a local-exec access in a function's first few
// instructions (the prologue is skipped):
//   mrs  xA, tpidr_el0
//   add  xB, xA, #hi12, lsl #12     (any number of adds, each to the same
//   add  xC, xB, #lo12               register or another: GCC 12 keeps one,
//                                    the clang of Node 26 moves it along)
//   ldr  wT|xT, [xC{, #imm}]        (the offset may be folded in here)
// Each register that holds the thread pointer plus a known offset is
// tracked; an instruction that overwrites one in any other way drops it.
bool DecodeTlsLoad(const void *fn, long *offset) {
  const uint32_t *p = static_cast<const uint32_t *>(fn);
  int i = 0;
  while (i < 8 && (p[i] & 0xffffffe0u) != 0xd53bd040u) i++;  // mrs xN, tpidr_el0
  if (i == 8) return false;
  bool tracked[32] = {};
  long off[32] = {};
  tracked[p[i] & 31] = true;
  for (int k = i + 1; k < i + 10; k++) {
    uint32_t ins = p[k];
    uint32_t rd = ins & 31, rn = (ins >> 5) & 31, imm12 = (ins >> 10) & 0xfff;
    if ((ins & 0xff800000u) == 0x91000000u && tracked[rn]) {  // add xD, xN, #imm{, lsl #12}
      off[rd] = off[rn] + ((long)imm12 << ((ins >> 22) & 1 ? 12 : 0));
      tracked[rd] = true;
    } else if ((ins & 0xffc00000u) == 0xb9400000u && tracked[rn]) {  // ldr wT, [xN, #imm]
      *offset = off[rn] + (long)imm12 * 4;
      return true;
    } else if ((ins & 0xffc00000u) == 0xf9400000u && tracked[rn]) {  // ldr xT, [xN, #imm]
      *offset = off[rn] + (long)imm12 * 8;
      return true;
    } else if ((ins & 0xffc00000u) == 0x39400000u && tracked[rn]) {  // ldrb wT, [xN, #imm]: a flag, not the slot
      tracked[rd] = false;
    } else {
      tracked[rd] = false;  // anything else that may write xD (a store's Rt is harmless to drop)
    }
    bool any = false;
    for (bool t : tracked) any = any || t;
    if (!any) return false;
  }
  return false;
}

// Decodes the isolate field SetStackLimit stores GetStackStart() - limit in
// (see the x86-64 one). Walks the function from its entry, where x0 is the
// isolate, tracking registers that hold the isolate plus a known offset
// (mov, add #imm{, lsl #12}) and ones that hold a constant (movz, movk);
// after the `bl` to GetStackStart (which clobbers x0-x18), the first store
// of a doubleword to a tracked base gives the offset:
//   str xT, [xN, #imm]    (Node 24: x19 = isolate + 0x10000, #4616)
//   str xT, [xN, xM]      (Node 26: x8 = movz/movk 0x115a0)
bool DecodeStackSizeStore(const void *fn, const void *get_start, long *offset) {
  const uint32_t *p = static_cast<const uint32_t *>(fn);
  bool base[32] = {}, cst[32] = {};
  long off[32] = {}, val[32] = {};
  base[0] = true;
  bool called = false;
  for (int k = 0; k < 40; k++) {
    uint32_t ins = p[k];
    uint32_t rd = ins & 31, rn = (ins >> 5) & 31, rm = (ins >> 16) & 31;
    if (ins == 0xd65f03c0u) return false;  // ret
    if ((ins & 0xfc000000u) == 0x94000000u) {  // bl
      int32_t imm26 = (int32_t)(ins << 6) >> 6;
      if (reinterpret_cast<const char *>(p + k) + (long)imm26 * 4 == static_cast<const char *>(get_start)) called = true;
      for (int r = 0; r <= 18; r++) base[r] = cst[r] = false;
      continue;
    }
    if ((ins & 0xffe0ffe0u) == 0xaa0003e0u) {  // mov xD, xM (orr xD, xzr, xM)
      base[rd] = base[rm], off[rd] = off[rm], cst[rd] = cst[rm], val[rd] = val[rm];
    } else if ((ins & 0xff800000u) == 0x91000000u && base[rn] && rn != 31) {  // add xD, xN, #imm{, lsl #12}
      long imm = (long)((ins >> 10) & 0xfff) << ((ins >> 22) & 1 ? 12 : 0);
      base[rd] = true, off[rd] = off[rn] + imm, cst[rd] = false;
    } else if ((ins & 0x7f800000u) == 0x52800000u) {  // movz
      int hw = (ins >> 21) & 3;
      cst[rd] = true, val[rd] = (long)((ins >> 5) & 0xffff) << (16 * hw), base[rd] = false;
    } else if ((ins & 0x7f800000u) == 0x72800000u && cst[rd]) {  // movk
      int hw = (ins >> 21) & 3;
      val[rd] = (val[rd] & ~(0xffffL << (16 * hw))) | ((long)((ins >> 5) & 0xffff) << (16 * hw));
    } else if ((ins & 0xffc00000u) == 0xf9000000u) {  // str xT, [xN, #imm]
      if (called && base[rn]) { *offset = off[rn] + (long)((ins >> 10) & 0xfff) * 8; return *offset > 0; }
    } else if ((ins & 0xffe0fc00u) == 0xf8206800u) {  // str xT, [xN, xM]
      if (called && base[rn] && cst[rm]) { *offset = off[rn] + val[rm]; return *offset > 0; }
    } else if ((ins & 0x0a000000u) == 0x08000000u) {  // another load or store
      if (ins & (1u << 22)) base[rd] = cst[rd] = false;  // a load writes Rt
      if ((ins & 0x3a000000u) == 0x28000000u && (ins & (1u << 22))) base[(ins >> 10) & 31] = cst[(ins >> 10) & 31] = false;  // ldp: Rt2
    } else {
      base[rd] = cst[rd] = false;  // anything else may write xD
    }
  }
  return false;
}
#endif

Discovery RunDiscovery() {
  Discovery d;
  if (const char *off = getenv("KORUTIN_V8_BRIDGE"); off && strcmp(off, "off") == 0) {
    d.reason = "turned off by KORUTIN_V8_BRIDGE=off";
    return d;
  }
#if !(defined(__x86_64__) || defined(__aarch64__)) || !defined(__linux__)
  d.reason = "the V8 bridge knows how to find V8's thread-local slots only on x86-64 and AArch64 Linux so far";
  return d;
#else
  std::string why;
  void *tid_fn = FindFunction(kThreadIdSym, &d.thread_id_from, &why);
  if (!tid_fn) { d.reason = why; return d; }
  void *ss_fn = FindFunction(kStackStartSym, &d.stack_start_from, &why);
  if (!ss_fn) { d.reason = why; return d; }
  if (!DecodeTlsLoad(tid_fn, &d.thread_id_offset)) {
    d.reason = "ThreadId::TryGetCurrent does not start with a thread-local load this bridge can decode";
    return d;
  }
  if (!DecodeTlsLoad(ss_fn, &d.stack_start_offset)) {
    d.reason = "Stack::GetStackStart does not start with a thread-local load this bridge can decode";
    return d;
  }
  auto try_get = reinterpret_cast<int (*)()>(tid_fn);
  auto get_start = reinterpret_cast<void *(*)()>(ss_fn);
  V8Slots s;
  uintptr_t tp = ThreadPointer();
  s.thread_id = reinterpret_cast<int *>(tp + d.thread_id_offset);
  s.stack_start = reinterpret_cast<void **>(tp + d.stack_start_offset);

  // Verify by reading: both functions must return what the slots hold.
  int id = try_get();
  if (id <= 0 || *s.thread_id != id) {
    d.reason = "the decoded ThreadId slot does not hold the current thread id";
    return d;
  }
  void *start = get_start();
  if (!start || *s.stack_start != start) {
    d.reason = "the decoded stack-start slot does not hold the current stack start";
    return d;
  }
  // Verify by writing: a sentinel must be seen by the functions.
  int saved_id = *s.thread_id;
  *s.thread_id = saved_id + 0x5a5a;
  bool id_ok = try_get() == saved_id + 0x5a5a;
  *s.thread_id = saved_id;
  void *saved_start = *s.stack_start;
  *s.stack_start = static_cast<char *>(saved_start) + 4096;
  bool start_ok = get_start() == static_cast<char *>(saved_start) + 4096;
  *s.stack_start = saved_start;
  if (!id_ok || !start_ok) {
    d.reason = "writing a sentinel into a decoded slot was not seen by V8";
    return d;
  }
  d.ok = true;
  {
    std::string from, ignored;
    void *set_limit = FindFunction(kSetStackLimitSym, &from, &ignored);
    long off;
    if (set_limit && DecodeStackSizeStore(set_limit, ss_fn, &off)) d.stack_size_offset = off;
  }
  return d;
#endif
}

std::atomic<bool> stack_size_refuted{false};

}  // namespace

// Out of line: its callers read it once into statics, and the switch path
// (sched_binding.cc SWITCHES) need not carry its first call inlined.
__attribute__((noinline)) const Discovery &Discover() {
  static std::once_flag once;
  static Discovery d;
  std::call_once(once, [] { d = RunDiscovery(); });
  return d;
}

size_t *StackSizeField(v8::Isolate *iso) {
  static const long off = Discover().stack_size_offset;
  if (off < 0 || stack_size_refuted.load(std::memory_order_relaxed)) return nullptr;
  return reinterpret_cast<size_t *>(reinterpret_cast<char *>(iso) + off);
}

void VerifyStackSizeField(v8::Isolate *iso, void *start, uintptr_t limit) {
  size_t *f = StackSizeField(iso);
  if (f && *f != reinterpret_cast<uintptr_t>(start) - limit) stack_size_refuted.store(true);
}

void *FindV8Function(const char *name, std::string *from, std::string *why) {
  return FindFunction(name, from, why);
}

V8Slots SlotsOfThisThread() {
  // On the switch path: the offsets are read once, after Discover() ran.
  static const long tid_off = Discover().thread_id_offset;
  static const long start_off = Discover().stack_start_offset;
  uintptr_t tp = ThreadPointer();
  return V8Slots{reinterpret_cast<int *>(tp + tid_off), reinterpret_cast<void **>(tp + start_off)};
}

}  // namespace korutin
