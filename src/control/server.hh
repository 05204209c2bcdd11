// The control socket: a unix stream socket served from the daemon's control
// thread with poll(2) — no threads of its own, never blocking that thread on
// a client.
//
// Protocol (one JSON document per line, both ways, several per connection):
//   request  {"argv": ["show", "port", "stats", "all"], "json": true}   ("id": echoed back)
//   reply    {"status": 0, "text": "...", "json": <value or null>}
// status 0 ok, 1 command error (text is the message). A malformed request
// gets status 1 and the connection stays usable; "json" is null unless the
// request asked for it. Replies are queued and written as the client reads
// them; a client that stops reading for write_timeout_ms is dropped.
//
// Limits (docs/operations.md, "Control socket"): a request line is at most
// kMaxRequest bytes (longer: an error reply, then the connection is closed);
// a request must be complete (its newline) within read_timeout_ms of its
// first byte (else an error reply and close); at most kMaxClients at once
// (a new client then replaces the one idle longest, or is refused when none
// is idle). Commands other than show/help/version/complete are logged with
// the peer's pid/uid/gid (SO_PEERCRED).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

class CommandRegistry;
class Dataplane;

class ControlServer {
 public:
  // Creates the parent directory, replaces a stale socket (refuses when
  // another daemon still answers on it, or the path is not a socket), binds,
  // chmod 0660, chown to group `gid` (-1: keep the daemon's), listens.
  // Throws std::runtime_error.
  ControlServer(Dataplane& dp, std::string path);
  ControlServer(Dataplane& dp, std::string path, const CommandRegistry& registry);
  ControlServer(Dataplane& dp, std::string path, const CommandRegistry& registry, long gid);
  ~ControlServer();  // closes every client, unlinks the socket
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // The listening socket (readable when a client connects).
  int fd() const { return listen_fd_; }
  const std::string& path() const { return path_; }

  // Waits up to timeout_ms (0: not at all, <0: forever) for activity, then
  // accepts, reads, runs complete requests and writes what the clients take.
  void poll(int timeout_ms);

  size_t clients() const { return clients_.size(); }
  void set_write_timeout_ms(uint64_t ms) { write_timeout_ms_ = ms; }
  void set_read_timeout_ms(uint64_t ms) { read_timeout_ms_ = ms; }

  // Whether a request (its argv) may change state: anything but show, help,
  // version and complete. Those are logged with the peer's credentials.
  static bool changes_state(const std::vector<std::string>& argv);

  static constexpr size_t kMaxClients = 256;
  static constexpr size_t kMaxRequest = 64 * 1024;  // bytes in one request line
  static constexpr size_t kMaxPending = 1 << 20;    // reply bytes held before reading more
  static constexpr uint64_t kReadTimeoutMs = 5000;  // a started request must end by then

 private:
  struct Client {
    int fd = -1;
    std::string in;   // bytes received, not yet a complete line
    std::string out;  // reply bytes not yet written
    size_t out_off = 0;
    uint64_t out_since_ms = 0;  // when `out` last made progress
    uint64_t in_since_ms = 0;   // when the unfinished request in `in` began (0: none)
    uint64_t active_ms = 0;     // last request or reply: who is idle longest
    bool closing = false;       // close once `out` is written
    bool fresh = false;         // bytes (or EOF) arrived since handle_lines last ran
    bool backlog = false;       // complete lines wait in `in` for the replies to drain
    size_t scanned = 0;         // the first `scanned` bytes of `in` hold no newline
    // SO_PEERCRED at accept (-1 if unknown)
    long pid = -1, uid = -1, gid = -1;
  };

  void accept_clients();
  // false: the client is gone (EOF, error) and must be closed.
  bool read_client(Client& c);
  bool write_client(Client& c);
  void handle_lines(Client& c);
  std::string handle_request(const Client& c, const std::string& line);
  // Queues a last error reply; the connection closes once it is written.
  void refuse(Client& c, const std::string& why);
  // Makes room for one more client: closes the one idle longest; false if none is idle.
  bool evict_idle();
  void close_client(Client& c);

  Dataplane& dp_;
  const CommandRegistry& registry_;
  std::string path_;
  int listen_fd_ = -1;
  uint64_t sock_dev_ = 0, sock_ino_ = 0;  // the socket we created (unlinked only if still ours)
  std::vector<Client> clients_;
  uint64_t write_timeout_ms_ = 5000;
  uint64_t read_timeout_ms_ = kReadTimeoutMs;
  uint64_t accept_paused_until_ms_ = 0;  // out of descriptors: accept again then
  static constexpr uint64_t kAcceptPauseMs = 200;
};

}  // namespace sluice
