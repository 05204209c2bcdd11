#include "control/server.hh"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "control/command.hh"

namespace sluice {

namespace {

using nlohmann::json;

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

std::runtime_error sys_error(const std::string& what, int err) {
  return std::runtime_error(what + ": " + std::strerror(err));
}

bool make_addr(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// Is a daemon answering on the socket at `addr`?
bool socket_alive(const sockaddr_un& addr) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool alive = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return alive;
}

std::string reply_line(int status, const std::string& text, json value, const json* id) {
  json r = {{"status", status}, {"text", text}, {"json", std::move(value)}};
  if (id != nullptr) r["id"] = *id;
  // Command text may carry bytes that are not UTF-8 (device names from a
  // driver, file names): replace them rather than fail the reply.
  std::string s = r.dump(-1, ' ', false, json::error_handler_t::replace);
  s += '\n';
  return s;
}

// argv as JSON for the log, cut to a readable length.
std::string argv_for_log(const std::vector<std::string>& argv) {
  std::string s = json(argv).dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 512) s = s.substr(0, 509) + "...";
  return s;
}

const char kRequestShape[] = R"(expected {"argv": ["word", ...], "json": true|false})";

}  // namespace

ControlServer::ControlServer(Dataplane& dp, std::string path)
    : ControlServer(dp, std::move(path), CommandRegistry::instance()) {}

ControlServer::ControlServer(Dataplane& dp, std::string path, const CommandRegistry& registry)
    : ControlServer(dp, std::move(path), registry, -1) {}

ControlServer::ControlServer(Dataplane& dp, std::string path, const CommandRegistry& registry,
                             long gid)
    : dp_(dp), registry_(registry), path_(std::move(path)) {
  sockaddr_un addr;
  if (!make_addr(path_, &addr))
    throw std::runtime_error("control socket path '" + path_ + "' is empty or longer than " +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes");

  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      throw std::runtime_error("control socket directory " + parent.string() + ": " + ec.message());
  }

  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error("control socket " + path_ + " exists and is not a socket");
    if (socket_alive(addr))
      throw std::runtime_error("control socket " + path_ +
                               " is in use (is another sluiced running?)");
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
      throw sys_error("control socket " + path_ + ": cannot remove the stale socket", errno);
  }

  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw sys_error("control socket", errno);
  // Nobody can connect before listen(), so mode and group are right before
  // the first client. The owner is the daemon's user (root when run as root).
  auto fail = [&](const std::string& what, bool bound) {
    int err = errno;
    if (bound) ::unlink(path_.c_str());
    ::close(listen_fd_);
    listen_fd_ = -1;
    return sys_error("control socket " + path_ + what, err);
  };
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    throw fail("", false);
  if (::chmod(path_.c_str(), 0660) != 0) throw fail(": chmod 0660", true);
  const std::string group_err = ": cannot set its group to " + std::to_string(gid);
  if (gid >= 0 && ::lchown(path_.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)
    throw fail(group_err, true);
  if (::stat(path_.c_str(), &st) != 0 || ::listen(listen_fd_, 512) != 0) throw fail("", true);
  sock_dev_ = st.st_dev;
  sock_ino_ = st.st_ino;
}

ControlServer::~ControlServer() {
  for (auto& c : clients_) close_client(c);
  clients_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  // Only our own socket: a newer daemon may have replaced it.
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == sock_dev_ &&
      static_cast<uint64_t>(st.st_ino) == sock_ino_)
    ::unlink(path_.c_str());
}

void ControlServer::poll(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.reserve(clients_.size() + 1);
  // Out of descriptors: the pending connection stays and the listening
  // socket stays readable; not polled for a while, so the loop does not spin.
  const bool accepting = now_ms() >= accept_paused_until_ms_;
  fds.push_back(pollfd{listen_fd_, static_cast<short>(accepting ? POLLIN : 0), 0});
  for (auto& c : clients_) {
    // A client with a reply pending is not read until it took the reply.
    const bool pending = c.out_off < c.out.size();
    fds.push_back(pollfd{c.fd, static_cast<short>(pending ? POLLOUT : POLLIN), 0});
  }
  int n = ::poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0) return;  // EINTR: the caller's loop comes back

  const size_t nclients = clients_.size();
  for (size_t i = 0; i < nclients; i++) {
    Client& c = clients_[i];
    const short ev = fds[i + 1].revents;
    bool ok = true;
    if (ev & POLLOUT) ok = write_client(c);
    if (ok && (ev & (POLLIN | POLLHUP | POLLERR)) && c.out_off >= c.out.size()) ok = read_client(c);
    if (ok && (ev & POLLERR)) ok = false;
    if (ok && (c.fresh || c.backlog)) handle_lines(c);
    if (ok) ok = write_client(c);
    if (ok && !c.closing && c.in_since_ms != 0 && now_ms() > c.in_since_ms + read_timeout_ms_) {
      refuse(c, "request not finished (no newline) within " + std::to_string(read_timeout_ms_) +
                    " ms; closing the connection");
      ok = write_client(c);
    }
    const bool pending = c.out_off < c.out.size();
    if (ok && pending && now_ms() > c.out_since_ms + write_timeout_ms_) ok = false;  // not reading
    if (ok && c.closing && !pending) ok = false;  // said everything it had to
    if (!ok) close_client(c);
  }
  clients_.erase(std::remove_if(clients_.begin(), clients_.end(), [](auto& c) { return c.fd < 0; }),
                 clients_.end());
  if (fds[0].revents & POLLIN) accept_clients();
}

void ControlServer::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::warn("control socket: cannot accept a client: {} (trying again in {} ms)",
                     std::strerror(errno), kAcceptPauseMs);
        accept_paused_until_ms_ = now_ms() + kAcceptPauseMs;
      }
      return;  // EAGAIN: all taken
    }
    if (clients_.size() >= kMaxClients && !evict_idle()) {
      std::string r =
          reply_line(1, "too many control clients (" + std::to_string(kMaxClients) + " busy)",
                     nullptr, nullptr);
      (void)!::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    Client c;
    c.fd = fd;
    c.active_ms = now_ms();
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred) {
      c.pid = cred.pid;
      c.uid = cred.uid;
      c.gid = cred.gid;
    }
    clients_.push_back(std::move(c));
  }
}

bool ControlServer::evict_idle() {
  Client* idle = nullptr;
  for (auto& c : clients_) {
    if (c.fd < 0 || c.closing || !c.in.empty() || c.out_off < c.out.size()) continue;
    if (idle == nullptr || c.active_ms < idle->active_ms) idle = &c;
  }
  if (idle == nullptr) return false;
  std::string r =
      reply_line(1, "closing the idle connection: too many control clients", nullptr, nullptr);
  (void)!::send(idle->fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  close_client(*idle);
  clients_.erase(std::remove_if(clients_.begin(), clients_.end(), [](auto& x) { return x.fd < 0; }),
                 clients_.end());
  return true;
}

void ControlServer::refuse(Client& c, const std::string& why) {
  if (c.out_off == c.out.size()) c.out_since_ms = now_ms();
  c.out += reply_line(1, why, nullptr, nullptr);
  c.in.clear();
  c.in_since_ms = 0;
  c.scanned = 0;
  c.backlog = false;
  c.closing = true;
}

bool ControlServer::read_client(Client& c) {
  char buf[16384];
  size_t budget = 256 * 1024;  // one client does not starve the others in one poll
  while (budget > 0 && !c.closing) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      c.fresh = true;
      budget -= std::min(budget, static_cast<size_t>(n));
      if (c.in.size() > kMaxRequest && c.in.find('\n') == std::string::npos) break;
      continue;
    }
    if (n == 0) {
      // The client shut down its side; it may still read the replies (socat, nc -N).
      if (!c.in.empty() && c.in.back() != '\n') c.in += '\n';
      c.closing = true;
      c.fresh = true;
      break;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
  return true;
}

void ControlServer::handle_lines(Client& c) {
  size_t start = 0;
  // Bound what a client that pipelines requests without reading can make us hold.
  c.fresh = false;
  c.backlog = false;
  for (;;) {
    if (c.out.size() - c.out_off >= kMaxPending) {
      c.backlog = true;  // more lines, once the client read some replies
      break;
    }
    size_t nl = c.in.find('\n', std::max(start, c.scanned));
    if (nl == std::string::npos) break;
    if (nl - start > kMaxRequest) {
      refuse(c, "request longer than " + std::to_string(kMaxRequest) +
                    " bytes; closing the connection");
      return;
    }
    std::string line = c.in.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank: no request
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
      c.out_since_ms = now_ms();
    }
    c.out += handle_request(c, line);
    c.active_ms = now_ms();
  }
  c.in.erase(0, start);
  // Without a backlog, what is left has no newline: not scanned again.
  const bool partial = !c.backlog && !c.in.empty();
  c.scanned = c.backlog ? 0 : c.in.size();
  if (partial && c.in.size() > kMaxRequest) {
    refuse(c,
           "request longer than " + std::to_string(kMaxRequest) + " bytes; closing the connection");
    return;
  }
  // The read timeout runs from the first byte of an unfinished request; a
  // backlog of complete lines (waiting for the client to read) is not one.
  if (!partial)
    c.in_since_ms = 0;
  else if (c.in_since_ms == 0)
    c.in_since_ms = now_ms();
}

bool ControlServer::changes_state(const std::vector<std::string>& argv) {
  if (argv.empty()) return false;
  const std::string& w = argv[0];
  return w != "show" && w != "help" && w != "version" && w != "complete";
}

std::string ControlServer::handle_request(const Client& c, const std::string& line) {
  try {
    json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded())
      return reply_line(1, std::string("malformed request: not JSON; ") + kRequestShape, nullptr,
                        nullptr);
    const json* id = nullptr;
    if (req.is_object() && req.contains("id")) id = &req["id"];
    auto bad = [&](const std::string& why) {
      return reply_line(1, "malformed request: " + why + "; " + kRequestShape, nullptr, id);
    };
    if (!req.is_object()) return bad("not an object");
    auto it = req.find("argv");
    if (it == req.end() || !it->is_array()) return bad("\"argv\" missing or not an array");
    std::vector<std::string> argv;
    for (auto& w : *it) {
      if (!w.is_string()) return bad("\"argv\" holds a non-string");
      argv.push_back(w.get<std::string>());
    }
    bool want_json = false;
    if (auto j = req.find("json"); j != req.end()) {
      if (!j->is_boolean()) return bad("\"json\" is not a boolean");
      want_json = j->get<bool>();
    }
    CmdResult r = registry_.run(dp_, argv);
    if (changes_state(argv)) {
      std::string outcome = "ok";
      if (r.status != 0) {
        outcome = "error: " + r.text.substr(0, r.text.find('\n'));
        if (outcome.size() > 300) outcome = outcome.substr(0, 297) + "...";
      }
      // A queue consumer's reads and verdicts come per packet batch: debug,
      // so that they do not flood the log; every other change at info.
      const bool per_packet =
          argv.size() >= 2 && argv[0] == "queue" && (argv[1] == "read" || argv[1] == "verdict");
      spdlog::log(per_packet ? spdlog::level::debug : spdlog::level::info,
                  "control: pid {} uid {} gid {} ran {}: {}", c.pid, c.uid, c.gid,
                  argv_for_log(argv), outcome);
    }
    if (r.status == 0 && !want_json) r.json = nullptr;
    if (r.status != 0) r.json = nullptr;
    return reply_line(r.status, r.text, std::move(r.json), id);
  } catch (const std::exception& e) {
    return reply_line(1, std::string("internal error: ") + e.what(), nullptr, nullptr);
  }
}

bool ControlServer::write_client(Client& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      c.out_since_ms = now_ms();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;  // EPIPE, ECONNRESET: gone
  }
  c.out.clear();
  c.out_off = 0;
  return true;
}

void ControlServer::close_client(Client& c) {
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
}

}  // namespace sluice
