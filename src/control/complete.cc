// `complete [WORDS...] PARTIAL`: the next word's candidates, from the
// registered usage strings (src/control/complete.hh) and live names.
#include "control/complete.hh"

#include <algorithm>
#include <set>

#include "control/command.hh"
#include "core/dataplane.hh"

namespace sluice::complete {

namespace {

// One word of a usage: its alternatives (keywords or placeholders).
struct Tok {
  std::vector<std::string> alts;
  bool repeat = false;  // "WORDS...": takes any number of words
};
using Path = std::vector<Tok>;

struct Node {
  bool group = false;
  Tok tok;                                 // !group
  std::vector<std::vector<Node>> choices;  // group: alternative sequences
  bool optional = false;
};

bool is_placeholder(const std::string& s) {
  return !s.empty() && s[0] >= 'A' && s[0] <= 'Z';
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// "[vlan V]" → "[", "vlan", "V", "]".
std::vector<std::string> lex(const std::string& usage) {
  std::vector<std::string> out;
  for (std::string w : split(usage, ' ')) {
    while (!w.empty() && w.front() == '[') {
      out.emplace_back("[");
      w.erase(0, 1);
    }
    size_t close = 0;
    while (!w.empty() && w.back() == ']') {
      close++;
      w.pop_back();
    }
    if (!w.empty()) out.push_back(w);
    out.insert(out.end(), close, "]");
  }
  return out;
}

bool single_literal(const Node& n) {
  return !n.group && n.tok.alts.size() == 1 && !is_placeholder(n.tok.alts[0]);
}

std::vector<Node> parse_seq(const std::vector<std::string>& toks, size_t* i) {
  std::vector<Node> seq;
  while (*i < toks.size() && toks[*i] != "]") {
    Node n;
    if (toks[*i] == "[") {
      ++*i;
      n.group = true;
      n.optional = true;
      n.choices.push_back(parse_seq(toks, i));
      if (*i < toks.size()) ++*i;  // "]"
    } else {
      std::string w = toks[(*i)++];
      if (w.size() > 3 && w.compare(w.size() - 3, 3, "...") == 0) {
        n.tok.repeat = true;
        w.resize(w.size() - 3);
      }
      n.tok.alts = split(w, '|');
    }
    seq.push_back(std::move(n));
  }
  // "via ADDR|dev DEV" reads as (via ADDR) | (dev DEV).
  for (size_t k = 1; k + 1 < seq.size(); k++) {
    const Node& m = seq[k];
    if (m.group || m.tok.alts.size() != 2 || !is_placeholder(m.tok.alts[0]) ||
        is_placeholder(m.tok.alts[1]) || !single_literal(seq[k - 1]) || seq[k + 1].group)
      continue;
    Node left, right, g;
    left.tok.alts = {m.tok.alts[0]};
    right.tok.alts = {m.tok.alts[1]};
    g.group = true;
    g.choices = {{seq[k - 1], left}, {right, seq[k + 1]}};
    seq.erase(seq.begin() + static_cast<std::ptrdiff_t>(k - 1),
              seq.begin() + static_cast<std::ptrdiff_t>(k + 2));
    seq.insert(seq.begin() + static_cast<std::ptrdiff_t>(k - 1), std::move(g));
  }
  return seq;
}

constexpr size_t kMaxPaths = 4096;

std::vector<Path> expand(const std::vector<Node>& seq) {
  std::vector<Path> paths{Path{}};
  for (const Node& n : seq) {
    std::vector<Path> next;
    for (const Path& p : paths) {
      if (!n.group) {
        next.push_back(p);
        next.back().push_back(n.tok);
        continue;
      }
      if (n.optional) next.push_back(p);
      for (const auto& choice : n.choices) {
        for (const Path& tail : expand(choice)) {
          if (next.size() >= kMaxPaths) break;
          Path q = p;
          q.insert(q.end(), tail.begin(), tail.end());
          next.push_back(std::move(q));
        }
      }
    }
    paths = std::move(next);
  }
  return paths;
}

bool matches(const Tok& t, const std::string& w) {
  for (const std::string& a : t.alts)
    if (is_placeholder(a) || a == w) return true;
  return false;
}

void add_candidates(const Tok& t, const std::string& command, const std::string& partial,
                    const NameSource& names, std::set<std::string>* out) {
  for (const std::string& a : t.alts) {
    std::vector<std::string> c;
    if (is_placeholder(a)) {
      if (names) c = names(a, command);
    } else {
      c = {a};
    }
    for (std::string& s : c)
      if (s.compare(0, partial.size(), partial) == 0) out->insert(std::move(s));
  }
}

std::string leading_keywords(const Path& p) {
  std::string s;
  for (const Tok& t : p) {
    if (t.alts.size() != 1 || is_placeholder(t.alts[0])) break;
    if (!s.empty()) s += ' ';
    s += t.alts[0];
  }
  return s;
}

}  // namespace

std::vector<std::string> candidates(const std::vector<std::string>& usages,
                                    const std::vector<std::string>& words,
                                    const std::string& partial, const NameSource& names) {
  // "help show p": the commands' keywords only.
  if (!words.empty() && words[0] == "help")
    return candidates(usages, std::vector<std::string>(words.begin() + 1, words.end()), partial,
                      nullptr);
  std::set<std::string> out;
  for (const std::string& u : usages) {
    size_t i = 0;
    const std::vector<Node> seq = parse_seq(lex(u), &i);
    for (const Path& p : expand(seq)) {
      size_t j = 0;
      bool ok = true;
      for (const std::string& w : words) {
        if (j < p.size() && p[j].repeat) continue;  // absorbs the rest
        if (j >= p.size() || !matches(p[j], w)) {
          ok = false;
          break;
        }
        j++;
      }
      if (!ok || j >= p.size()) continue;
      const std::string command = leading_keywords(p);
      add_candidates(p[j], command, partial, names, &out);
      if (p[j].repeat && j + 1 < p.size()) add_candidates(p[j + 1], command, partial, names, &out);
    }
  }
  return {out.begin(), out.end()};
}

namespace {

std::vector<std::string> live_names(Dataplane& dp, const std::string& ph,
                                    const std::string& command) {
  std::vector<std::string> out;
  auto devices = [&](bool (*want)(DevKind)) {
    for (const Device* d : dp.net.devices())
      if (d != nullptr && want(d->kind)) out.push_back(d->name);
  };
  // A command's JSON form, when the feature is there.
  auto json_of = [&](std::vector<std::string> argv) {
    CmdResult r = CommandRegistry::instance().run(dp, argv);
    return r.status == 0 ? r.json : nlohmann::json();
  };
  if (ph == "DEV" || ph == "PORT" || ph == "MEMBER") {
    devices([](DevKind k) { return k != DevKind::punt; });
  } else if (ph == "BR") {
    devices([](DevKind k) { return k == DevKind::bridge; });
  } else if (ph == "BOND") {
    devices([](DevKind k) { return k == DevKind::bond; });
  } else if (ph == "POINT") {
    nlohmann::json j = json_of({"show", "hooks"});
    if (j.is_object())
      for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
  } else if (ph == "ID" && command.rfind("capture", 0) == 0) {
    nlohmann::json j = json_of({"show", "captures"});
    if (j.is_array())
      for (const auto& c : j)
        if (c.is_object() && c.contains("id")) out.push_back(c["id"].dump());
  } else if (ph == "Q") {
    for (int q = 0; q < 16; q++) out.push_back(std::to_string(q));
  } else if (ph == "NAME" && command == "show mirrors") {
    nlohmann::json j = json_of({"show", "mirrors"});
    if (j.is_object())
      for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
  }
  return out;  // FILE, PATH, ADDR, …: nothing (the client completes file names)
}

CmdResult complete_cmd(Dataplane& dp, const std::vector<std::string>& args) {
  std::vector<std::string> words = args;
  std::string partial;
  if (!words.empty()) {
    partial = words.back();
    words.pop_back();
  }
  std::vector<std::string> usages{"help [COMMAND...]"};
  for (const CommandSpec& s : CommandRegistry::instance().all()) usages.push_back(s.usage);
  const std::vector<std::string> c = candidates(
      usages, words, partial,
      [&](const std::string& ph, const std::string& cmd) { return live_names(dp, ph, cmd); });
  CmdResult r;
  r.json = c;
  for (const std::string& s : c) r.text += s + '\n';
  return r;
}

const CommandRegistrar kComplete({{"complete"},
                                  "complete [WORDS...] PARTIAL",
                                  "the candidates for the word after WORDS that start with PARTIAL "
                                  "(keywords and live names; the shell's Tab)",
                                  complete_cmd});

}  // namespace

}  // namespace sluice::complete
