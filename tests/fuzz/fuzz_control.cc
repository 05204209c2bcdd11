// fuzz_control: arbitrary bytes as what a client writes on the control
// socket — the real ControlServer (line framing, JSON request parsing) on a
// unix socket, and the commands it runs on the dataplane of topo/rx.yaml
// (show/clear/fdb/route/set link/queue/complete/help…). Each input is one
// connection: connect, write the input, shut the write side, serve until
// the server has answered every line and closed.
//
// Left out of the registry the server gets (so that the fuzzer cannot make
// the process write or load files it names): capture start (writes PATH),
// reload and hooks reload (read FILE, load plugins). Their argument parsing
// is small and covered by the unit tests.
//
// Failure: any sanitizer report, an exception out of the server, or a
// connection that is not closed after its requests were answered.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "control/command.hh"
#include "control/server.hh"
#include "core/dataplane.hh"
#include "fuzz/fuzz_eal.hh"

using namespace sluice;

namespace {

std::unique_ptr<Dataplane> g_dp;
std::unique_ptr<CommandRegistry> g_reg;
std::unique_ptr<ControlServer> g_srv;
std::string g_path;

bool excluded(const CommandSpec& s) {
  auto is = [&](std::initializer_list<const char*> w) {
    if (s.words.size() != w.size()) return false;
    size_t i = 0;
    for (const char* x : w)
      if (s.words[i++] != x) return false;
    return true;
  };
  return is({"capture", "start"}) || is({"reload"}) || is({"hooks", "reload"});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  fuzz::init_eal((*argv)[0], "0-1", 512);
  g_dp = fuzz::build_rx_dataplane();
  g_reg = std::make_unique<CommandRegistry>();
  for (const CommandSpec& s : CommandRegistry::instance().all())
    if (!excluded(s)) g_reg->add(s);
  char dir[] = "/tmp/sluice-fuzz-ctl-XXXXXX";
  if (mkdtemp(dir) == nullptr) abort();
  g_path = std::string(dir) + "/ctl.sock";
  g_srv = std::make_unique<ControlServer>(*g_dp, g_path, *g_reg);
  atexit([] {
    g_srv.reset();
    rmdir(g_path.substr(0, g_path.rfind('/')).c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) abort();
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, g_path.c_str(), sizeof(a.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) abort();
  // The input fits the socket buffer (libFuzzer's -max_len is 4096 here):
  // written at once, then EOF.
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) abort();
    off += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  char buf[65536];
  bool closed = false;
  for (int round = 0; round < 2000 && !closed; round++) {
    g_srv->poll(0);
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n == 0) closed = true;
      break;
    }
    if (!closed && round > 8) {  // commands answer at once; a few polls do it
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 1);
    }
  }
  close(fd);
  if (!closed) {
    fprintf(stderr, "fuzz_control: the server did not close a connection whose input ended\n");
    abort();
  }
  g_srv->poll(0);  // forget the closed client
  return 0;
}
