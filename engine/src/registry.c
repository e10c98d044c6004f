/*
 * registry.c - the backends korutin knows of, fastest first (KO_BACKEND_MAP).
 */
#include "korutin.h"
#include "backend.h"

#include <string.h>

static const ko_backend *const all[] = {
#define KO_XX(name) &ko_backend_##name,
  KO_BACKEND_MAP(KO_XX)
#undef KO_XX
};

#define COUNT ((int)(sizeof all / sizeof all[0]))

int ko_backend_count(void) { return COUNT; }

const ko_backend *ko_backend_at(int i) { return i >= 0 && i < COUNT ? all[i] : NULL; }

const ko_backend *ko_backend_find(const char *name) {
  for (int i = 0; name && i < COUNT; i++)
    if (strcmp(all[i]->name, name) == 0) return all[i];
  return NULL;
}

const ko_backend *ko_backend_default(void) {
  for (int i = 0; i < COUNT; i++)
    if (!all[i]->unavailable) return all[i];
  return NULL;
}

const char *ko_backend_name(const ko_backend *be) { return be ? be->name : NULL; }
const char *ko_backend_unavailable(const ko_backend *be) {
  return be ? be->unavailable : "no such backend";
}
int ko_backend_own_thread(const ko_backend *be) {
  return be && (be->flags & KO_BACKEND_OWN_THREAD) != 0;
}
