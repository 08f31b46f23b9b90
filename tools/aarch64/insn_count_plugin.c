/* A QEMU TCG plugin that counts executed guest instructions and prints
 *   guest_instructions: <N>
 * to stderr at exit. Under qemu-aarch64 this is a repeatable cost measure for
 * ARM code where wall time says nothing (emulation). It counts instructions,
 * not cycles: no cache, pipeline or memory effects.
 *
 * Needs a qemu built with plugin support (Debian's dynamic `qemu-user`; the
 * `-static` build cannot load plugins). The few entry points used are
 * declared here, against plugin API version 1 (QEMU 7.x), so no QEMU headers
 * are needed:
 *   cc -shared -fPIC -O2 -o libinsn_count.so insn_count_plugin.c
 *   qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin ./libinsn_count.so ./prog
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

void qemu_plugin_register_vcpu_tb_trans_cb(
    qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb*));
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb* tb, enum qemu_plugin_op op,
                                              void* ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void*),
                                    void* userdata);

EXPORT int qemu_plugin_version = 1;

/* Single-threaded guests only (the inline add is not atomic across vCPUs). */
static uint64_t executed;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  /* Every execution of this translation block adds its instruction count. */
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                           qemu_plugin_tb_n_insns(tb));
}

static void on_exit(qemu_plugin_id_t id, void* userdata) {
  (void)id;
  (void)userdata;
  fprintf(stderr, "guest_instructions: %" PRIu64 "\n", executed);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t* info, int argc,
                               char** argv) {
  (void)info;
  (void)argc;
  (void)argv;
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_exit, NULL);
  return 0;
}
