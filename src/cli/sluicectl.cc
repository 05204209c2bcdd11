// sluicectl: the client of sluiced's control socket.
//
//   sluicectl [-s SOCKET] [--json] [COMMAND ...]     (no COMMAND: interactive)
//
// One-shot mode prints the reply's text (or, with --json, its JSON value) and
// exits 0 on success, 1 on a command error, 2 when the daemon is unreachable.
// The interactive mode on a terminal is a shell on libedit (prompt
// "sluice> ", line editing, history in ~/.sluicectl_history, Tab asks the
// daemon's `complete`, Ctrl-C drops the line, a lost daemon is reconnected
// at the next command); on a pipe it reads lines without a prompt and stops
// (exit 2) if the daemon goes away. Protocol: src/control/server.hh.
//
// Links nlohmann-json and libedit: no DPDK here.
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <editline/readline.h>
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
  ~Connection() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  bool is_open() const { return fd_ >= 0; }

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

// Where the interactive mode gets its lines.
class LineReader {
 public:
  virtual ~LineReader() = default;
  // false at end of input.
  virtual bool read(std::string* line) = 0;
  // A terminal shell reconnects after a lost daemon; a script stops.
  virtual bool reconnects() const { return false; }
};

class StdinReader : public LineReader {
 public:
  bool read(std::string* line) override { return static_cast<bool>(std::getline(std::cin, *line)); }
};

// --- the shell on libedit (readline-compatible API) -------------------------

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) {
  g_interrupted = 1;
}

struct Shell {
  Connection* conn = nullptr;
  std::string socket;
  std::vector<std::string> matches;  // of the current Tab
};
Shell g_shell;

// A call that (re)connects first; an error leaves the connection closed.
std::optional<std::string> call_reconnecting(Connection& conn, const std::string& socket,
                                             const std::vector<std::string>& argv, bool want_json,
                                             Reply* reply) {
  if (!conn.is_open()) {
    if (auto err = conn.open(socket)) return err;
  }
  if (auto err = conn.call(argv, want_json, reply)) {
    conn.close();
    return err;
  }
  return std::nullopt;
}

char* match_generator(const char* /*text*/, int state) {
  static size_t next;
  if (state == 0) next = 0;
  if (next >= g_shell.matches.size()) return nullptr;
  return ::strdup(g_shell.matches[next++].c_str());
}

// Tab: the words before the cursor's word go to the daemon's `complete`.
char** complete_line(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;  // no file names instead
  g_shell.matches.clear();
  std::vector<std::string> words;
  if (split_words(std::string(rl_line_buffer, static_cast<size_t>(start)), &words)) return nullptr;
  std::erase(words, std::string("--json"));
  std::vector<std::string> argv{"complete"};
  argv.insert(argv.end(), words.begin(), words.end());
  argv.emplace_back(text);
  Reply reply;
  if (call_reconnecting(*g_shell.conn, g_shell.socket, argv, true, &reply) || reply.status != 0 ||
      !reply.value.is_array())
    return nullptr;
  for (const auto& c : reply.value)
    if (c.is_string()) g_shell.matches.push_back(c.get<std::string>());
  if (g_shell.matches.empty()) {
    // Where a file name goes (`reload FILE`, `… file PATH`, `hooks reload FILE`),
    // libedit's own file name completion takes over.
    const bool file_arg =
        (!words.empty() && (words.back() == "file" || words.back() == "reload")) ||
        text[0] == '/' || text[0] == '.' || text[0] == '~';
    if (file_arg) rl_attempted_completion_over = 0;
    return nullptr;
  }
  return rl_completion_matches(text, match_generator);
}

constexpr int kHistoryLines = 1000;

class EditReader : public LineReader {
 public:
  EditReader(Connection& conn, const std::string& socket) {
    g_shell.conn = &conn;
    g_shell.socket = socket;
    const char* home = std::getenv("HOME");
    if (home != nullptr && *home != '\0') history_ = std::string(home) + "/.sluicectl_history";
    rl_readline_name = "sluicectl";
    rl_catch_signals = 0;  // Ctrl-C: our handler, the line is dropped
    rl_attempted_completion_function = complete_line;
    rl_basic_word_break_characters = " \t";
    using_history();
    stifle_history(kHistoryLines);
    if (!history_.empty()) read_history(history_.c_str());
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the read is interrupted
    sigaction(SIGINT, &sa, nullptr);
  }
  ~EditReader() override {
    if (!history_.empty()) write_history(history_.c_str());
  }
  bool reconnects() const override { return true; }

  bool read(std::string* line) override {
    for (;;) {
      g_interrupted = 0;
      char* l = readline(kPrompt);
      if (l == nullptr) {
        if (g_interrupted) {  // Ctrl-C: a fresh prompt
          std::fputs("^C\n", stdout);
          std::fflush(stdout);
          continue;
        }
        std::fputc('\n', stdout);  // Ctrl-D: leave the prompt on a fresh line
        return false;
      }
      *line = l;
      std::free(l);
      if (g_interrupted) {  // Ctrl-C while the line was being finished
        std::fputs("^C\n", stdout);
        continue;
      }
      if (line->find_first_not_of(" \t") != std::string::npos) {
        HIST_ENTRY* last =
            history_length > 0 ? history_get(history_base + history_length - 1) : nullptr;
        if (last == nullptr || last->line == nullptr || *line != last->line)
          add_history(line->c_str());
        if (!history_.empty()) write_history(history_.c_str());  // kept even if we are killed
      }
      return true;
    }
  }

 private:
  std::string history_;
};

int interactive(Connection& conn, const std::string& socket, LineReader& reader,
                bool json_default) {
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
    if (reader.reconnects()) {
      if (auto err = call_reconnecting(conn, socket, words, want_json, &reply)) {
        std::fprintf(stderr, "sluicectl: %s\n", err->c_str());
        rc = kExitCommandError;
        continue;
      }
    } else if (auto err = conn.call(words, want_json, &reply)) {
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
    if (::isatty(STDIN_FILENO) == 1) {
      EditReader reader(conn, opt.socket);
      return interactive(conn, opt.socket, reader, opt.json);
    }
    StdinReader reader;
    return interactive(conn, opt.socket, reader, opt.json);
  }

  Reply reply;
  if (auto err = conn.call(opt.command, opt.json, &reply)) {
    std::fprintf(stderr, "sluicectl: %s\n", err->c_str());
    return kExitUnreachable;
  }
  return print_reply(reply, opt.json);
}
