#include "control/command.hh"

#include <algorithm>
#include <exception>

namespace sluice {

namespace {

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); i++) {
    if (i != 0) s += ' ';
    s += words[i];
  }
  return s;
}

bool starts_with(const std::vector<std::string>& v, const std::vector<std::string>& prefix) {
  return prefix.size() <= v.size() && std::equal(prefix.begin(), prefix.end(), v.begin());
}

// "usage  help" lines, sorted by usage, the help texts in one column; a usage
// longer than kUsageColumn gets its help on the next line.
constexpr size_t kUsageColumn = 40;

CmdResult help_for(std::vector<const CommandSpec*> specs) {
  std::sort(specs.begin(), specs.end(),
            [](const CommandSpec* a, const CommandSpec* b) { return a->usage < b->usage; });
  size_t width = 0;
  for (auto* s : specs)
    if (s->usage.size() <= kUsageColumn) width = std::max(width, s->usage.size());
  CmdResult r;
  r.json = nlohmann::json::array();
  for (auto* s : specs) {
    std::string line = s->usage;
    if (!s->help.empty()) {
      if (s->usage.size() > width) {
        line += '\n';
        line.append(width + 2, ' ');
      } else {
        line.append(width - s->usage.size() + 2, ' ');
      }
      line += s->help;
    }
    r.text += line;
    r.text += '\n';
    r.json.push_back({{"command", join(s->words)}, {"usage", s->usage}, {"help", s->help}});
  }
  return r;
}

const CommandSpec kHelpSpec{
    {"help"}, "help [COMMAND...]", "usage of the commands that start with COMMAND", nullptr};

}  // namespace

CommandRegistry& CommandRegistry::instance() {
  static CommandRegistry registry;
  return registry;
}

void CommandRegistry::add(CommandSpec spec) {
  if (spec.usage.empty()) spec.usage = join(spec.words);
  // The same words registered twice: the later registration replaces the earlier one.
  for (auto& s : specs_) {
    if (s.words == spec.words) {
      s = std::move(spec);
      return;
    }
  }
  specs_.push_back(std::move(spec));
}

const CommandSpec* CommandRegistry::match(const std::vector<std::string>& argv,
                                          size_t* consumed) const {
  const CommandSpec* best = nullptr;
  for (auto& s : specs_) {
    if (s.words.empty() || s.words.size() > argv.size()) continue;
    if (best != nullptr && s.words.size() <= best->words.size()) continue;
    if (std::equal(s.words.begin(), s.words.end(), argv.begin())) best = &s;
  }
  if (consumed != nullptr) *consumed = best != nullptr ? best->words.size() : 0;
  return best;
}

CmdResult CommandRegistry::run(Dataplane& dp, const std::vector<std::string>& argv) const {
  try {
    if (argv.empty()) return CmdResult::error("empty command; try 'help'");

    if (argv[0] == "help") {
      std::vector<const CommandSpec*> found;
      if (argv.size() == 1) {
        for (auto& s : specs_) found.push_back(&s);
        found.push_back(&kHelpSpec);
        return help_for(std::move(found));
      }
      // "help show port": every command whose words start with "show port" …
      const std::vector<std::string> rest(argv.begin() + 1, argv.end());
      for (auto& s : specs_)
        if (starts_with(s.words, rest)) found.push_back(&s);
      // … or else the command "help show port stats eth0" would run.
      if (found.empty()) {
        if (const CommandSpec* s = match(rest, nullptr)) found.push_back(s);
      }
      if (found.empty() && rest[0] == "help") found.push_back(&kHelpSpec);
      if (found.empty())
        return CmdResult::error("no command matches '" + join(rest) + "'; try 'help'");
      return help_for(std::move(found));
    }

    size_t consumed = 0;
    const CommandSpec* spec = match(argv, &consumed);
    if (spec == nullptr)
      return CmdResult::error("unknown command '" + join(argv) + "'; try 'help'");
    std::vector<std::string> args(argv.begin() + static_cast<std::ptrdiff_t>(consumed), argv.end());
    if (!spec->fn) return CmdResult::error("'" + join(spec->words) + "' has no handler");
    return spec->fn(dp, args);
  } catch (const std::exception& e) {
    return CmdResult::error(join(argv) + ": " + e.what());
  } catch (...) {
    return CmdResult::error(join(argv) + ": failed (unknown exception)");
  }
}

}  // namespace sluice
