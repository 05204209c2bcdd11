// The `hooks:` and `plugins:` sections (docs/config.md, docs/hooks.md):
// their typed form, parsed and checked by src/hooks/config.cc, reached as
// topo.get<hooks::Config>().
#pragma once

#include <string>
#include <vector>

#include "config/topology.hh"
#include "hooks/rules.hh"

namespace sluice::config {

// hooks: (docs/hooks.md): one rule list at one point.
struct HookListCfg {
  Mark mark;
  std::string name;
  std::string point;  // "ipv4/forward", …
  int priority = 0;
  std::vector<hooks::Rule> rules;
  Mark name_at, point_at;
};

// plugins: a shared object loaded at start.
struct PluginCfg {
  Mark mark;
  std::string path;
  std::string point;  // "" = the plugin chooses
  int priority = 0;
  Mark path_at;
  std::string args;  // free text for the plugin (sluice_plugin_args::args)
};

}  // namespace sluice::config

namespace sluice::hooks {

struct Config {
  std::vector<config::HookListCfg> hooks;
  std::vector<config::PluginCfg> plugins;
};

}  // namespace sluice::hooks
