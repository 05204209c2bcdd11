// sluicectl: the client of sluiced's control socket.
//
//   sluicectl [-s SOCKET] [--json] [COMMAND ...]     (no COMMAND: interactive)
//
// One-shot mode prints the reply's text (or, with --json, its JSON value) and
// exits 0 on success, 1 on a command error, 2 when the daemon is unreachable.
// The interactive mode reads lines (prompt "sluice> " on a terminal) and
// sends each over the same connection. Protocol: src/control/server.hh.
//
// Links nothing but nlohmann-json: no DPDK here.
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sluice/version.hh>

namespace {

using nlohmann::json;

constexpr const char* kDefaultSocket = "/run/sluice/sluice.sock";
constexpr const char* kPrompt = "sluice> ";

constexpr int kExitOk = 0;
constexpr int kExitCommandError = 1;
constexpr int kExitUnreachable = 2;

void print_usage(FILE* f) {
  std::fprintf(f,
               "usage: sluicectl [-s SOCKET] [--json] [COMMAND ...]\n"
               "\n"
               "Sends COMMAND to sluiced and prints the reply; with no COMMAND, reads\n"
               "commands from stdin (an interactive shell on a terminal).\n"
               "\n"
               "  -s, --socket SOCKET  control socket (default: $SLUICE_SOCKET, else %s)\n"
               "  -j, --json           print the machine-readable reply (may appear anywhere)\n"
               "  -V, --version        print sluicectl's version\n"
               "  -h, --help           this text\n"
               "\n"
               "'sluicectl help' lists the daemon's commands. Exit status: 0 ok, 1 command\n"
               "error, 2 daemon unreachable.\n",
               kDefaultSocket);
}

struct Options {
  std::string socket;
  bool json = false;
  bool version = false;
  bool help = false;
  std::vector<std::string> command;
};

// Returns an error message, or nullopt when the arguments are fine.
std::optional<std::string> parse_args(int argc, char** argv, Options* o) {
  const char* env = std::getenv("SLUICE_SOCKET");
  o->socket = env != nullptr && *env != '\0' ? env : kDefaultSocket;
  bool options_done = false;  // after "--" every word is the command's
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (!options_done && a == "--") {
      options_done = true;
    } else if (!options_done && (a == "--json" || a == "-j")) {
      o->json = true;  // anywhere, also after the command's words
    } else if (!options_done && o->command.empty() && (a == "-s" || a == "--socket")) {
      if (i + 1 >= argc) return a + " needs a socket path";
      o->socket = argv[++i];
    } else if (!options_done && o->command.empty() && a.rfind("--socket=", 0) == 0) {
      o->socket = a.substr(9);
    } else if (!options_done && o->command.empty() && a.size() > 2 && a.rfind("-s", 0) == 0) {
      o->socket = a.substr(2);
    } else if (!options_done && o->command.empty() && (a == "--version" || a == "-V")) {
      o->version = true;
    } else if (!options_done && o->command.empty() && (a == "--help" || a == "-h")) {
      o->help = true;
    } else if (!options_done && o->command.empty() && a.size() > 1 && a[0] == '-') {
      return "unknown option '" + a + "'";
    } else {
      o->command.push_back(a);
    }
  }
  if (o->socket.empty()) return std::string("empty socket path");
  return std::nullopt;
}

// Splits a shell line into words: blanks separate, double quotes group
// (a backslash escapes '"' and '\' inside them). Returns an error or nullopt.
std::optional<std::string> split_words(const std::string& line, std::vector<std::string>* words) {
  words->clear();
  std::string cur;
  bool in_word = false, quoted = false;
  for (size_t i = 0; i < line.size(); i++) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        quoted = false;
      } else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
        cur += line[++i];
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
      in_word = true;  // "" is an (empty) word
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words->push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quoted) return std::string("unterminated quote");
  if (in_word) words->push_back(std::move(cur));
  return std::nullopt;
}

struct Reply {
  int status = 0;
  std::string text;
  json value;
};

// One connection to the daemon; requests and replies are single JSON lines.
class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  std::optional<std::string> open(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return "socket path too long: " + path;
    std::memcpy(addr.sun_path, path.data(), path.size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      return "cannot connect to " + path + ": " + std::strerror(err) + " (is sluiced running?)";
    }
    return std::nullopt;
  }

  // Sends argv, waits for the reply. An error means the connection is unusable.
  std::optional<std::string> call(const std::vector<std::string>& argv, bool want_json,
                                  Reply* reply) {
    std::string req = json{{"argv", argv}, {"json", want_json}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
    req += '\n';
    for (size_t off = 0; off < req.size();) {
      ssize_t n = ::send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::string("lost the connection to sluiced: ") + std::strerror(errno);
      off += static_cast<size_t>(n);
    }
    size_t nl;
    while ((nl = buf_.find('\n')) == std::string::npos) {
      char tmp[65536];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::string("lost the connection to sluiced: ") + std::strerror(errno);
      if (n == 0) return std::string("sluiced closed the connection");
      buf_.append(tmp, static_cast<size_t>(n));
    }
    json r = json::parse(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(nl), nullptr,
                         /*allow_exceptions=*/false);
    buf_.erase(0, nl + 1);
    if (!r.is_object() || !r.contains("status") || !r["status"].is_number_integer())
      return std::string("malformed reply from sluiced");
    reply->status = r["status"].get<int>();
    reply->text = r.value("text", std::string());
    reply->value = r.contains("json") ? r["json"] : json(nullptr);
    return std::nullopt;
  }

 private:
  int fd_ = -1;
  std::string buf_;  // received bytes after the last reply
};

void write_text(FILE* f, const std::string& text) {
  if (text.empty()) return;
  std::fwrite(text.data(), 1, text.size(), f);
  if (text.back() != '\n') std::fputc('\n', f);
}

// Prints a reply; returns its exit status (0 or 1).
int print_reply(const Reply& r, bool want_json) {
  if (r.status != 0) {
    std::fflush(stdout);
    write_text(stderr, r.text.empty() ? "command failed" : r.text);
    return kExitCommandError;
  }
  if (want_json) {
    // One JSON document or nothing (a command without a machine form): stdout stays parseable.
    if (!r.value.is_null())
      write_text(stdout, r.value.dump(2, ' ', false, json::error_handler_t::replace));
  } else {
    write_text(stdout, r.text);
  }
  std::fflush(stdout);
  return kExitOk;
}

bool is_quit(const std::vector<std::string>& words) {
  return words.size() == 1 && (words[0] == "quit" || words[0] == "exit");
}

// Where the interactive mode gets its lines. A line-editing reader (libedit:
// history, completion of commands and device names) slots in here later.
class LineReader {
 public:
  virtual ~LineReader() = default;
  // false at end of input.
  virtual bool read(std::string* line) = 0;
};

class StdinReader : public LineReader {
 public:
  StdinReader() : tty_(::isatty(STDIN_FILENO) == 1) {}
  bool read(std::string* line) override {
    if (tty_) {
      std::fputs(kPrompt, stdout);
      std::fflush(stdout);
    }
    if (std::getline(std::cin, *line)) return true;
    if (tty_) std::fputc('\n', stdout);  // leave the shell's prompt on a fresh line after ^D
    return false;
  }

 private:
  bool tty_;
};

int interactive(Connection& conn, LineReader& reader, bool json_default) {
  int rc = kExitOk;
  std::string line;
  std::vector<std::string> words;
  while (reader.read(&line)) {
    if (auto err = split_words(line, &words)) {
      std::fprintf(stderr, "%s\n", err->c_str());
      rc = kExitCommandError;
      continue;
    }
    if (words.empty() || words[0][0] == '#') continue;
    if (is_quit(words)) break;
    bool want_json = json_default;
    std::erase_if(words, [&](const std::string& w) {
      const bool j = w == "--json";
      want_json |= j;
      return j;
    });
    if (words.empty()) continue;
    Reply reply;
    if (auto err = conn.call(words, want_json, &reply)) {
      std::fprintf(stderr, "sluicectl: %s\n", err->c_str());
      return kExitUnreachable;
    }
    if (print_reply(reply, want_json) != kExitOk) rc = kExitCommandError;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  Options opt;
  if (auto err = parse_args(argc, argv, &opt)) {
    std::fprintf(stderr, "sluicectl: %s\n", err->c_str());
    print_usage(stderr);
    return kExitCommandError;
  }
  if (opt.help) {
    print_usage(stdout);
    return kExitOk;
  }
  if (opt.version) {
    std::printf("sluicectl %s\n", SLUICE_VERSION);
    return kExitOk;
  }
  if (is_quit(opt.command)) return kExitOk;

  Connection conn;
  if (auto err = conn.open(opt.socket)) {
    std::fprintf(stderr, "sluicectl: %s\n", err->c_str());
    return kExitUnreachable;
  }

  if (opt.command.empty()) {
    StdinReader reader;
    return interactive(conn, reader, opt.json);
  }

  Reply reply;
  if (auto err = conn.call(opt.command, opt.json, &reply)) {
    std::fprintf(stderr, "sluicectl: %s\n", err->c_str());
    return kExitUnreachable;
  }
  return print_reply(reply, opt.json);
}
