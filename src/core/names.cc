// Names of the core's enums, for commands and logs.
#include "core/device.hh"
#include "core/drop_reason.hh"
#include "core/format.hh"
#include "core/meta.hh"
#include "core/worker.hh"

namespace sluice {

const char* pkt_type_name(PktType t) {
  static const char* const names[] = {"host",      "broadcast", "multicast",
                                      "otherhost", "outgoing",  "loopback"};
  return enum_name(t, names);
}

const char* drop_reason_name(DropReason r) {
  static const char* const names[] = {
#define X(name, text) #name,
#include "sluice/drop_reasons.inc"
#undef X
  };
  return enum_name(r, names);
}

const char* drop_reason_text(DropReason r) {
  static const char* const texts[] = {
#define X(name, text) text,
#include "sluice/drop_reasons.inc"
#undef X
  };
  return enum_name(r, texts);
}

const char* dev_kind_name(DevKind k) {
  static const char* const names[] = {"port",   "vlan", "bond",    "bridge",
                                      "tunnel", "punt", "loopback"};
  return enum_name(k, names);
}

}  // namespace sluice
