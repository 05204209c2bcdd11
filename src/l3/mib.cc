// The IP MIB: names, and the sums `show ip stats` reads.
#include "l3/mib.hh"

#include "core/net.hh"

namespace sluice::l3 {

const char* mib_name(Mib m) {
  static const char* const names[] = {
#define SLUICE_MIB_NAME(n) #n,
      SLUICE_IP_MIB(SLUICE_MIB_NAME)
#undef SLUICE_MIB_NAME
  };
  auto i = static_cast<unsigned>(m);
  return i < kNumMib ? names[i] : "?";
}

MibBlock MibTotals::operator()(uint16_t dev) const {
  MibBlock s = raw(dev);
  if (!base_.empty())
    for (unsigned i = 0; i < kNumMib; i++) s.v[i] -= base_[dev].v[i];
  return s;
}

MibBlock MibTotals::raw(uint16_t dev) const {
  MibBlock s{};
  for (const MibBlock* w : workers_)
    for (unsigned i = 0; i < kNumMib; i++) s.v[i] += w[dev].v[i];
  return s;
}

void MibTotals::clear() {
  base_.resize(kMaxDevices);
  for (uint16_t d = 0; d < kMaxDevices; d++) base_[d] = raw(d);
}

}  // namespace sluice::l3
