// The command registry. Each feature registers its commands beside its own
// code with a static CommandRegistrar; the control socket and the CLI only
// know this table. A command's handler runs on the control thread.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice {

class Dataplane;

struct CmdResult {
  int status = 0;       // 0 ok, 1 command error
  std::string text;     // human output (or the error message when status != 0)
  nlohmann::json json;  // machine output for --json (null when the command has none)

  static CmdResult error(std::string msg) {
    CmdResult r;
    r.status = 1;
    r.text = std::move(msg);
    return r;
  }
};

// args: the words after the command's own words.
using CmdHandler = std::function<CmdResult(Dataplane& dp, const std::vector<std::string>& args)>;

struct CommandSpec {
  std::vector<std::string> words;  // e.g. {"show", "port", "stats"}
  std::string usage;               // e.g. "show port stats [DEV|all]"
  std::string help;                // one line
  CmdHandler fn;
};

class CommandRegistry {
 public:
  static CommandRegistry& instance();
  void add(CommandSpec spec);
  // Longest match of the spec's words at the start of argv; nullptr if none.
  const CommandSpec* match(const std::vector<std::string>& argv, size_t* consumed) const;
  const std::vector<CommandSpec>& all() const { return specs_; }
  // Runs argv (handles "help" itself); never throws.
  CmdResult run(Dataplane& dp, const std::vector<std::string>& argv) const;

 private:
  std::vector<CommandSpec> specs_;
};

struct CommandRegistrar {
  explicit CommandRegistrar(CommandSpec spec) { CommandRegistry::instance().add(std::move(spec)); }
  // A feature's command table.
  explicit CommandRegistrar(std::initializer_list<CommandSpec> specs) {
    for (const CommandSpec& s : specs) CommandRegistry::instance().add(s);
  }
};

}  // namespace sluice
