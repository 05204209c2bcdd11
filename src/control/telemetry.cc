#include "control/telemetry.hh"

#include <atomic>
#include <cctype>
#include <cerrno>
#include <map>
#include <string_view>

#include <rte_telemetry.h>

#include "control/command.hh"
#include "control/control_queue.hh"

namespace sluice {

namespace {

struct State {
  Dataplane* dp = nullptr;
  const CommandRegistry* registry = nullptr;
  ControlQueue* queue = nullptr;
  std::map<std::string, std::vector<std::string>> words;  // telemetry name → command words
};

// Written before the first registration and cleared at stop; the callbacks
// read it on the telemetry thread.
std::atomic<State*> g_state{nullptr};
State g_storage;

constexpr size_t kMaxString = RTE_TEL_MAX_STRING_LEN - 1;
constexpr int kRunTimeoutMs = 5000;

std::string clip(std::string s) {
  if (s.size() > kMaxString) s.resize(kMaxString);
  return s;
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return clip(v.get<std::string>());
  if (v.is_null()) return "";
  return clip(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool is_container(const nlohmann::json& v) {
  return v.is_object() || v.is_array();
}

// Telemetry (22.11) accepts names of letters, digits, '_' and '/' only:
// anything else ('.' of "p1.100", '-', ':') becomes '_'.
std::string key_name(const std::string& key) {
  std::string k = clip(key);
  for (char& c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '/') c = '_';
  return k;
}

// A scalar as a dict entry: booleans 0/1, numbers as numbers, the rest text.
void add_scalar(rte_tel_data* d, const std::string& key, const nlohmann::json& v) {
  const std::string k = key_name(key);
  if (v.is_boolean())
    rte_tel_data_add_dict_u64(d, k.c_str(), v.get<bool>() ? 1 : 0);
  else if (v.is_number_unsigned())
    rte_tel_data_add_dict_u64(d, k.c_str(), v.get<uint64_t>());
  else if (v.is_number_integer())
    rte_tel_data_add_dict_int(d, k.c_str(), static_cast<int>(v.get<int64_t>()));
  else
    rte_tel_data_add_dict_string(d, k.c_str(), scalar_text(v).c_str());
}

// Everything under v as "prefix/key/0/key" = scalar entries of d.
void flatten(const nlohmann::json& v, const std::string& prefix, rte_tel_data* d, size_t* n) {
  if (v.is_object()) {
    for (const auto& [k, e] : v.items()) flatten(e, prefix.empty() ? k : prefix + "/" + k, d, n);
  } else if (v.is_array()) {
    size_t i = 0;
    for (const auto& e : v) flatten(e, prefix + "/" + std::to_string(i++), d, n);
  } else if ((*n)++ < RTE_TEL_MAX_DICT_ENTRIES) {
    add_scalar(d, prefix, v);
  }
}

// An array of scalars of one kind (false: it is not one).
bool scalar_array(const nlohmann::json& v, rte_tel_data* d) {
  bool all_u64 = true, all_int = true, all_scalar = true;
  for (const auto& e : v) {
    all_u64 &= e.is_number_unsigned() || e.is_boolean();
    all_int &= e.is_number_integer() || e.is_boolean();
    all_scalar &= !is_container(e);
  }
  if (!all_scalar) return false;
  size_t n = 0;
  if (!v.empty() && all_u64) {
    rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
    for (const auto& e : v)
      if (n++ < RTE_TEL_MAX_ARRAY_ENTRIES)
        rte_tel_data_add_array_u64(d, e.is_boolean() ? e.get<bool>() : e.get<uint64_t>());
  } else if (!v.empty() && all_int) {
    rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
    for (const auto& e : v)
      if (n++ < RTE_TEL_MAX_ARRAY_ENTRIES)
        rte_tel_data_add_array_int(
            d, static_cast<int>(e.is_boolean() ? e.get<bool>() : e.get<int64_t>()));
  } else {
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    for (const auto& e : v)
      if (n++ < RTE_TEL_MAX_ARRAY_ENTRIES) rte_tel_data_add_array_string(d, scalar_text(e).c_str());
  }
  return true;
}

// The second level: a dict of scalars (nested values flattened) or an array
// of scalars. DPDK 22.11 serialises containers one level deep only, and an
// array may hold only arrays, so nothing below this level is a container.
rte_tel_data* second_level(const nlohmann::json& v) {
  rte_tel_data* c = rte_tel_data_alloc();
  if (c == nullptr) return nullptr;
  if (v.is_array() && scalar_array(v, c)) return c;
  rte_tel_data_start_dict(c);
  size_t n = 0;
  if (v.is_object()) {
    flatten(v, "", c, &n);
  } else {
    size_t i = 0;
    for (const auto& e : v) flatten(e, std::to_string(i++), c, &n);
  }
  return c;
}

void add_entry(rte_tel_data* d, const std::string& key, const nlohmann::json& v) {
  if (!is_container(v)) return add_scalar(d, key, v);
  rte_tel_data* c = second_level(v);
  if (c != nullptr && rte_tel_data_add_dict_container(d, key_name(key).c_str(), c, 0) != 0)
    rte_tel_data_free(c);
}

void fill(const nlohmann::json& v, rte_tel_data* d) {
  if (v.is_object()) {
    rte_tel_data_start_dict(d);
    size_t n = 0;
    for (const auto& [k, e] : v.items()) {
      if (n++ >= RTE_TEL_MAX_DICT_ENTRIES) break;
      add_entry(d, k, e);
    }
  } else if (v.is_array()) {
    if (scalar_array(v, d)) return;
    // Rows (e.g. FDB entries) become a dict by their index: "0", "1", ...
    rte_tel_data_start_dict(d);
    size_t n = 0;
    for (const auto& e : v) {
      if (n >= RTE_TEL_MAX_DICT_ENTRIES) break;
      add_entry(d, std::to_string(n++), e);
    }
  } else {
    rte_tel_data_string(d, scalar_text(v).c_str());
  }
}

std::vector<std::string> split_params(const char* params) {
  std::vector<std::string> out;
  if (params == nullptr) return out;
  std::string cur;
  for (const char* p = params; *p != '\0'; p++) {
    if (*p == ',' || *p == ' ' || *p == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

int on_show(const char* cmd, const char* params, rte_tel_data* d) {
  State* st = g_state.load();
  if (st == nullptr) return -EAGAIN;
  auto it = st->words.find(cmd);
  if (it == st->words.end()) return -EINVAL;
  std::vector<std::string> argv = it->second;
  for (auto& w : split_params(params)) argv.push_back(std::move(w));
  CmdResult r;
  const bool ran = st->queue->run([&] { r = st->registry->run(*st->dp, argv); }, kRunTimeoutMs);
  if (!ran) return -EBUSY;
  if (r.status != 0) {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "error", clip(r.text).c_str());
    return 0;
  }
  json_to_telemetry(r.json, d);
  return 0;
}

}  // namespace

std::string telemetry_name(const std::vector<std::string>& words) {
  if (words.size() < 2 || words[0] != "show") return "";
  std::string name = "/sluice/show/";
  for (size_t i = 1; i < words.size(); i++) {
    if (i > 1) name += '_';
    name += words[i];
  }
  for (char& c : name) {
    if (c == '-') c = '_';  // show port rx-fixup → /sluice/show/port_rx_fixup
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/')) return "";
  }
  return name.size() < 56 ? name : "";
}

void json_to_telemetry(const nlohmann::json& v, rte_tel_data* d) {
  fill(v, d);
}

size_t register_telemetry_commands(Dataplane& dp, const CommandRegistry& registry,
                                   ControlQueue& queue) {
  if (g_storage.registry != nullptr) {  // once per process: telemetry cannot unregister
    g_storage.dp = &dp;
    g_storage.queue = &queue;
    g_state.store(&g_storage);
    return 0;
  }
  g_storage.dp = &dp;
  g_storage.registry = &registry;
  g_storage.queue = &queue;
  for (const CommandSpec& s : registry.all()) {
    std::string name = telemetry_name(s.words);
    if (!name.empty()) g_storage.words.emplace(name, s.words);
  }
  g_state.store(&g_storage);
  size_t n = 0;
  for (const auto& [name, words] : g_storage.words) {
    std::string help = clip("sluicectl " + registry.match(words, nullptr)->usage +
                            " --json; parameters: its arguments");
    if (rte_telemetry_register_cmd(name.c_str(), on_show, help.c_str()) == 0) n++;
  }
  return n;
}

void unregister_telemetry_dataplane() {
  g_state.store(nullptr);
}

}  // namespace sluice
