/* Picks llhttp's parser loop for this CPU when the program is loaded.
 *
 * llhttp's generated parser scans header names and values 16 bytes at a time with SSE4.2 when
 * it is compiled for SSE4.2, and one byte at a time otherwise. Debian builds for baseline
 * x86-64, so meson.build compiles llhttp.c twice, renaming the entry point of each copy
 * (llhttp__internal_execute_sse42 and llhttp__internal_execute_generic), and this file defines
 * the name api.c calls as a GNU indirect function: the dynamic loader runs the resolver once and
 * binds the name to the copy the CPU can run. Both copies come from the same source and parse
 * alike; the SSE4.2 one only skips runs of ordinary bytes faster (about 600 instructions per
 * proxied request, two heads).
 */
#include <llhttp.h>

int llhttp__internal_execute_generic(llhttp__internal_t* state, const char* p, const char* endp);
int llhttp__internal_execute_sse42(llhttp__internal_t* state, const char* p, const char* endp);

typedef int (*execute_fn)(llhttp__internal_t*, const char*, const char*);

static execute_fn select_execute(void) {
  __builtin_cpu_init(); /* resolvers run before constructors: initialise the CPU model first */
  return __builtin_cpu_supports("sse4.2") ? llhttp__internal_execute_sse42 : llhttp__internal_execute_generic;
}

int llhttp__internal_execute(llhttp__internal_t* state, const char* p, const char* endp)
    __attribute__((ifunc("select_execute")));
