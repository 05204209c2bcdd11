// The loader's machinery, for the config sections of every feature
// (docs/config.md, design/CONFIG.md). A section is a parse function that a
// feature registers (src/core/feature.hh) with its name; inside it, every
// key of a map has one parse function in a key table (KeyDef), which is also
// the list of allowed keys, so unknown keys are errors everywhere;
// cross-references are checked after every section is parsed, by the
// features' checks, in dependency order. Errors are
// ConfigError("FILE:LINE:COL: message") pointing at the offending node: the
// key for an unknown or duplicate key, the value for a bad value.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include "config/topology.hh"

namespace sluice::config {

// --- text ------------------------------------------------------------------------

Mark to_mark(const YAML::Mark& m);
std::string mark_str(Mark m);
bool is_digit(char c);
bool is_hex(char c);
bool is_alnum(char c);
std::string to_lower(std::string_view s);
std::string join(std::span<const std::string_view> v);  // "a, b, c"
std::string join(const std::vector<unsigned>& v);
// What a node is, for "got ..." in messages: "'x'", "a list", "a map", "nothing".
std::string describe(const YAML::Node& n);
// Decimal integer; nullopt if not one. Negative numbers parse (so that range
// messages show them) and saturate far outside any valid range.
std::optional<long long> parse_int(std::string_view s);
// Why a device name is not acceptable, or "" if it is.
std::string bad_dev_name(std::string_view s);

// A parsed "key: value" pair, with the name of what contains it for
// messages ("port 'eth1'", "eal").
struct Field {
  const YAML::Node& key;
  const YAML::Node& value;
  std::string name;          // the key's text
  const std::string& where;  // "port 'eth1'"

  // Where a problem with the value is: the value, or the key when the value
  // is empty (yaml-cpp marks an implicit null at the next token).
  Mark at() const { return to_mark(value.IsNull() ? key.Mark() : value.Mark()); }
  std::string what() const { return where.empty() ? name : where + ": " + name; }
};

class Loader;

template <class T>
struct KeyDef {
  std::string_view name;
  void (*parse)(Loader&, T&, const Field&);
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(Mark m, const std::string& msg) const;
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    fail(to_mark(n.Mark()), msg);
  }

  // --- typed values ------------------------------------------------------------
  unsigned get_uint(const Field& f, unsigned lo, unsigned hi, std::string_view what = "an integer");
  bool get_bool(const Field& f);
  std::string get_string(const Field& f);
  // A list; an empty value is an empty list.
  std::vector<YAML::Node> get_list(const Field& f, std::string_view what);

  // Calls the parse function of each key of `map`; returns the keys seen.
  template <class T>
  std::set<std::string> parse_keys(const YAML::Node& map, const std::string& where,
                                   std::span<const KeyDef<T>> keys, T& obj);

  // A section's value must be a map (or empty: all defaults).
  bool section_map(const Field& f);
  // Name and position of a list entry, for messages: "port 'eth1'" or
  // "port #2" when it has no usable name yet.
  std::string entry_where(std::string_view kind, const YAML::Node& entry, size_t index);
  void require(const YAML::Node& entry, const std::string& where, const std::set<std::string>& seen,
               std::initializer_list<std::string_view> keys);

  // --- devices of the file, for cross-checks -----------------------------------
  // Kinds in the order features declare them ("port", "vlan", "bridge", …):
  // what "is not a port, vlan or bridge defined in this file" lists.
  void declare_kind(std::string_view kind);
  // "port, vlan or bridge": every kind declared so far.
  std::string kinds_phrase() const;
  // A device name of the file; a second device of that name is an error
  // "duplicate device name 'x' (first defined at L:C)".
  void add_device(const std::string& name, std::string_view kind, Mark at);
  // Its kind, or "" when the file defines no such device.
  std::string_view device_kind(const std::string& name) const;
  bool has_device(const std::string& name) const { return !device_kind(name).empty(); }

  // Per-feature state kept between a section's parse and the feature's
  // check (positions, entries not yet published), created on first use.
  template <class T>
  T& scratch() {
    auto& p = scratch_[std::type_index(typeid(T))];
    if (!p) p = std::make_shared<T>();
    return *static_cast<T*>(p.get());
  }

  const std::string& file() const { return file_; }

  Topology topo;

 private:
  std::string file_;
  std::vector<std::string> kinds_;
  std::map<std::string, std::pair<std::string, Mark>> devices_;  // name → (kind, where)

 public:
  const std::map<std::string, std::pair<std::string, Mark>>& devices() const { return devices_; }

 private:
  std::map<std::type_index, std::shared_ptr<void>> scratch_;
};

template <class T>
std::set<std::string> Loader::parse_keys(const YAML::Node& map, const std::string& where,
                                         std::span<const KeyDef<T>> keys, T& obj) {
  std::map<std::string, Mark> seen;
  std::string prefix = where.empty() ? "" : where + ": ";
  for (const auto& kv : map) {  // a pair of Node handles, by value
    const YAML::Node& k = kv.first;
    const YAML::Node& v = kv.second;
    if (!k.IsScalar()) fail(k, prefix + "keys must be plain names, got " + describe(k));
    const std::string& name = k.Scalar();
    if (auto s = seen.find(name); s != seen.end())
      fail(k, prefix + "duplicate key '" + name + "' (first at " + mark_str(s->second) + ")");
    seen.emplace(name, to_mark(k.Mark()));
    auto def = std::find_if(keys.begin(), keys.end(), [&](auto& d) { return d.name == name; });
    if (def == keys.end()) {
      std::vector<std::string_view> names;
      for (auto& d : keys) names.push_back(d.name);
      fail(k, prefix + "unknown key '" + name + "' (expected one of: " + join(names) + ")");
    }
    def->parse(*this, obj, Field{k, v, name, where});
  }
  std::set<std::string> r;
  for (auto& [k, m] : seen) r.insert(k);
  return r;
}

// A list section of maps without names ("address #2"): each entry parsed
// with `keys` into a T (which has a `mark`), the required keys checked, and
// appended to out. example: what one entry looks like, for messages.
template <class T, size_t N>
void parse_entries(Loader& l, const Field& f, std::string_view kind, std::string_view example,
                   const KeyDef<T> (&keys)[N], std::initializer_list<std::string_view> required,
                   std::vector<T>& out) {
  auto entries = l.get_list(f, example);
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = std::string(kind) + " #" + std::to_string(i + 1);
    if (!e.IsMap())
      l.fail(e, where + " must be a map of settings (" + std::string(example) + "), got " +
                    describe(e));
    T v;
    v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<T>(e, where, std::span<const KeyDef<T>>(keys, N), v);
    l.require(e, where, seen, required);
    out.push_back(std::move(v));
  }
}

// A device name value (valid characters and length).
std::string device_name(Loader& l, const Field& f);
// A unicast MAC value "02:00:00:00:00:01", lower-cased.
std::string mac_value(Loader& l, const Field& f);

}  // namespace sluice::config
