// libmicrohttpd, loaded when the server first needs it rather than at every start of palette:
// the functions the server calls, defined here, each forwarding to the library's own, found
// with dlopen/dlsym on its first call. palette is not linked with libmicrohttpd (nor, through
// it, with GnuTLS and its ten libraries), so `palette extract` does not pay for loading them.

#include <dlfcn.h>
#include <microhttpd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace {

// The library, or nullptr (then load_error() says why).
void* library() {
  static std::once_flag once;
  static void* handle = nullptr;
  std::call_once(once, [] {
    // The ABI's soname (Debian 11-13, Ubuntu 20.04-24.04), then the development link.
    for (const char* name : {"libmicrohttpd.so.12", "libmicrohttpd.so"}) {
      handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
    }
  });
  return handle;
}

template <class F>
F resolve(const char* name) {
  void* handle = library();
  void* f = handle ? dlsym(handle, name) : nullptr;
  if (!f) {
    // Only reachable after MHD_start_daemon succeeded, which needs the library: a library
    // without one of the functions this server calls.
    std::fprintf(stderr, "palette: libmicrohttpd has no %s\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

#define PALETTE_MHD(name) static const auto f = resolve<decltype(&name)>(#name)

}  // namespace

extern "C" {

struct MHD_Daemon* MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                    void* apc_cls, MHD_AccessHandlerCallback dh, void* dh_cls,
                                    ...) {
  if (!library()) {
    const char* why = dlerror();
    std::fprintf(stderr, "palette: cannot load libmicrohttpd: %s\n", why ? why : "not found");
    return nullptr;
  }
  PALETTE_MHD(MHD_start_daemon_va);
  va_list ap;
  va_start(ap, dh_cls);
  struct MHD_Daemon* d = f(flags, port, apc, apc_cls, dh, dh_cls, ap);
  va_end(ap);
  return d;
}

MHD_socket MHD_quiesce_daemon(struct MHD_Daemon* daemon) {
  PALETTE_MHD(MHD_quiesce_daemon);
  return f(daemon);
}

void MHD_stop_daemon(struct MHD_Daemon* daemon) {
  PALETTE_MHD(MHD_stop_daemon);
  f(daemon);
}

enum MHD_Result MHD_add_connection(struct MHD_Daemon* daemon, MHD_socket client_socket,
                                   const struct sockaddr* addr, socklen_t addrlen) {
  PALETTE_MHD(MHD_add_connection);
  return f(daemon, client_socket, addr, addrlen);
}

const char* MHD_lookup_connection_value(struct MHD_Connection* connection, enum MHD_ValueKind kind,
                                        const char* key) {
  PALETTE_MHD(MHD_lookup_connection_value);
  return f(connection, kind, key);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection* connection, unsigned int status_code,
                                   struct MHD_Response* response) {
  PALETTE_MHD(MHD_queue_response);
  return f(connection, status_code, response);
}

void MHD_suspend_connection(struct MHD_Connection* connection) {
  PALETTE_MHD(MHD_suspend_connection);
  f(connection);
}

void MHD_resume_connection(struct MHD_Connection* connection) {
  PALETTE_MHD(MHD_resume_connection);
  f(connection);
}

struct MHD_Response* MHD_create_response_from_buffer(size_t size, void* buffer,
                                                     enum MHD_ResponseMemoryMode mode) {
  PALETTE_MHD(MHD_create_response_from_buffer);
  return f(size, buffer, mode);
}

struct MHD_Response* MHD_create_response_from_buffer_with_free_callback_cls(
    size_t size, void* buffer, MHD_ContentReaderFreeCallback crfc, void* crfc_cls) {
  PALETTE_MHD(MHD_create_response_from_buffer_with_free_callback_cls);
  return f(size, buffer, crfc, crfc_cls);
}

enum MHD_Result MHD_add_response_header(struct MHD_Response* response, const char* header,
                                        const char* content) {
  PALETTE_MHD(MHD_add_response_header);
  return f(response, header, content);
}

void MHD_destroy_response(struct MHD_Response* response) {
  PALETTE_MHD(MHD_destroy_response);
  f(response);
}

}  // extern "C"
