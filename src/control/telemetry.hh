// DPDK telemetry for every `show` command: `/sluice/show/WORDS` (the
// command's words after "show", joined by '_': `show port stats` →
// /sluice/show/port_stats, parameters after the comma are its arguments,
// split on ',' or blanks) answers with the command's --json value, so
// `dpdk-telemetry.py` sees the same data as `sluicectl --json`. The command
// runs on the control thread (ControlQueue), never on the telemetry thread.
//
// Telemetry's limits (DPDK 22.11) shape the reply: dicts hold 256 entries,
// arrays 512, strings 127 characters, one reply 16 KB, and containers nest one
// level deep (an array holds only arrays of scalars). So the reply keeps the
// command's top level; below it, nested values are flattened into path keys
// ("counters/flooded", "ports/p1/state"), and a top-level array of objects
// (FDB entries, neighbours) becomes a dict by row index. Names may hold only
// letters, digits, '_' and '/': other characters become '_' (p1.100 →
// p1_100). Booleans are 0/1.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct rte_tel_data;

namespace sluice {

class CommandRegistry;
class ControlQueue;
class Dataplane;

// Registers the commands (once per process). Returns how many.
size_t register_telemetry_commands(Dataplane& dp, const CommandRegistry& registry,
                                   ControlQueue& queue);

// Stops answering (sluiced is stopping; the callbacks see no dataplane).
void unregister_telemetry_dataplane();

// The JSON → telemetry conversion (exposed for tests).
void json_to_telemetry(const nlohmann::json& v, rte_tel_data* d);

// "/sluice/show/" + words[1..] joined by '_' ("" when not a show command or
// when the name cannot be a telemetry command name).
std::string telemetry_name(const std::vector<std::string>& words);

}  // namespace sluice
