// Names of the core's enums, for commands and logs.
#include "core/device.hh"
#include "core/drop_reason.hh"
#include "core/meta.hh"
#include "core/worker.hh"

namespace sluice {

const char* pkt_type_name(PktType t) {
  switch (t) {
    case PktType::host:
      return "host";
    case PktType::broadcast:
      return "broadcast";
    case PktType::multicast:
      return "multicast";
    case PktType::otherhost:
      return "otherhost";
    case PktType::outgoing:
      return "outgoing";
    case PktType::loopback:
      return "loopback";
  }
  return "?";
}

const char* drop_reason_name(DropReason r) {
  static const char* const names[] = {
#define X(name, text) #name,
#include "sluice/drop_reasons.inc"
#undef X
  };
  auto i = static_cast<unsigned>(r);
  return i < kNumDropReasons ? names[i] : "?";
}

const char* drop_reason_text(DropReason r) {
  static const char* const texts[] = {
#define X(name, text) text,
#include "sluice/drop_reasons.inc"
#undef X
  };
  auto i = static_cast<unsigned>(r);
  return i < kNumDropReasons ? texts[i] : "?";
}

const char* dev_kind_name(DevKind k) {
  switch (k) {
    case DevKind::port:
      return "port";
    case DevKind::vlan:
      return "vlan";
    case DevKind::bond:
      return "bond";
    case DevKind::bridge:
      return "bridge";
    case DevKind::tunnel:
      return "tunnel";
    case DevKind::punt:
      return "punt";
  }
  return "?";
}

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::rx:
      return "port-rx";
    case Stage::classify:
      return "eth-type-trans";
    case Stage::netif_receive:
      return "netif-receive";
    case Stage::protocol:
      return "protocol-deliver";
    case Stage::tx:
      return "port-tx";
    case Stage::count_:
      break;
  }
  return "?";
}

}  // namespace sluice
