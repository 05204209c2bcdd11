// The packet trace store (src/core/trace.hh): marking (count, device,
// filter), records through the real receive path, fates and their order of
// precedence, copies (fork), clear.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <rte_mempool.h>

#include "core/netif.hh"
#include "core/trace.hh"
#include "support/frames.hh"

using namespace sluice;
using namespace sluice::test;

namespace {

class Trace : public ::testing::Test {
 protected:
  Rcu rcu;
  Net net{rcu};
  std::unique_ptr<Worker> w;
  XmitSink sink;
  Device* p0 = nullptr;
  Device* p1 = nullptr;
  unsigned avail_before = 0;

  void SetUp() override {
    avail_before = rte_mempool_avail_count(pool());
    w = std::make_unique<Worker>(net, 0);
    p0 = add_dev("p0", "02:00:00:00:00:01");
    p1 = add_dev("p1", "02:00:00:00:00:02");
    net.trace.clear();
  }
  void TearDown() override {
    w->flush_free();
    net.trace.clear();
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }
  Device* add_dev(const char* name, const char* m) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->mac = mac(m);
    d->xmit = sink_xmit;
    d->xmit_ctx = &sink;
    return net.add_device(std::move(d));
  }
  void rx(Device* d, const char* dst) {
    FrameSpec f;
    f.dst = dst;
    rte_mbuf* m = frame(f);
    port_receive(*w, *d, &m, 1);
    w->flush_free();
  }
  const TracePacket& pkt(uint32_t n) {
    const TracePacket* p = net.trace.packet(n);
    EXPECT_NE(p, nullptr) << "packet " << n;
    return *p;
  }
};

bool reject_all(const void*, const rte_mbuf*) {
  return false;
}

TEST_F(Trace, MarksTheNextNPacketsAndRecordsTheirPathAndDrop) {
  net.trace.arm(2, kNoDev, nullptr, nullptr);
  EXPECT_TRUE(net.trace.armed());
  EXPECT_EQ(net.trace.remaining(), 2u);
  for (int i = 0; i < 3; i++) rx(p0, "02:00:00:00:00:01");  // IPv4, no handler: unhandled_proto
  EXPECT_EQ(net.trace.used(), 2u);                          // the third was not marked
  EXPECT_FALSE(net.trace.armed());
  for (uint32_t k = 1; k <= 2; k++) {
    const TracePacket& p = pkt(k);
    ASSERT_GE(p.nrec.load(), 1u);
    EXPECT_STREQ(p.rec[0].stage, "netif_receive_skb");
    EXPECT_EQ(p.rec[0].dev, p0->index);
    EXPECT_EQ(p.rec[0].protocol, 0x0800);
    EXPECT_EQ(p.rec[0].pkt_type, static_cast<uint8_t>(PktType::host));
    EXPECT_STREQ(p.rec[0].detail, "round 1");
    EXPECT_EQ(p.fate.load(), TraceFate::dropped);
    EXPECT_EQ(p.reason, DropReason::unhandled_proto);
    EXPECT_EQ(p.fate_dev, p0->index);
    EXPECT_STREQ(p.fate_stage, "netif_receive_skb");
    EXPECT_EQ(p.in_dev, p0->index);
    EXPECT_EQ(p.len, 60u);
    EXPECT_EQ(p.head_len, 60u);
  }
  EXPECT_EQ(net.trace.packet(3), nullptr);
}

TEST_F(Trace, OnlyTheArmedDeviceAndWhatTheFilterAccepts) {
  net.trace.arm(1, p1->index, nullptr, nullptr);
  rx(p0, "02:00:00:00:00:01");
  EXPECT_EQ(net.trace.used(), 0u);
  rx(p1, "02:00:00:00:00:02");
  EXPECT_EQ(net.trace.used(), 1u);
  EXPECT_EQ(pkt(1).in_dev, p1->index);
  net.trace.clear();
  net.trace.arm(5, kNoDev, reject_all, nullptr);
  rx(p0, "02:00:00:00:00:01");
  EXPECT_EQ(net.trace.used(), 0u);
  EXPECT_EQ(net.trace.remaining(), 5u);
}

// An rx_handler that passes every packet of the burst on to the device in
// ctx by returning it (a bond's active member).
uint16_t pass_on_whole(Worker&, Device&, void* ctx, rte_mbuf**, uint16_t, RxResult*) {
  return static_cast<Device*>(ctx)->index;
}

TEST_F(Trace, AWholeBurstPassedOnIsRecordedAsAnotherAndItsNextRound) {
  Device* bond = add_dev("bond0", "02:00:00:00:00:01");
  ASSERT_TRUE(net.set_rx_handler(*p0, pass_on_whole, bond, "bond"));
  net.trace.arm(1, kNoDev, nullptr, nullptr);
  rx(p0, "02:00:00:00:00:01");
  const TracePacket& p = pkt(1);
  ASSERT_EQ(p.nrec.load(), 4u);
  EXPECT_STREQ(p.rec[0].stage, "netif_receive_skb");
  EXPECT_EQ(p.rec[0].dev, p0->index);
  EXPECT_STREQ(p.rec[1].stage, "rx_handler");
  EXPECT_STREQ(p.rec[2].stage, "rx_handler");
  EXPECT_STREQ(p.rec[2].what, "RX_HANDLER_ANOTHER");
  EXPECT_EQ(p.rec[2].dev2, bond->index);
  EXPECT_STREQ(p.rec[3].stage, "netif_receive_skb");
  EXPECT_EQ(p.rec[3].dev, bond->index);
  EXPECT_STREQ(p.rec[3].detail, "round 2");
  EXPECT_EQ(p.fate.load(), TraceFate::dropped);  // no protocol handler: on the bond
  EXPECT_EQ(p.reason, DropReason::unhandled_proto);
  EXPECT_EQ(p.fate_dev, bond->index);
  net.clear_rx_handler(*p0);
}

TEST_F(Trace, FatesCopiesAndClear) {
  net.trace.arm(1, kNoDev, nullptr, nullptr);
  FrameSpec f;
  rte_mbuf* m = frame(f);
  meta(m) = PktMeta{};  // as eth_type_trans leaves it: before its first round
  net.trace.mark(0, p0->index, &m, 1);
  ASSERT_TRUE(traced(m));
  trace_rec(*w, m, "stage-a", p0->index, "first", p1->index, "n=%d", 7);
  // A copy: its own slot, its parent's path, then its own records.
  rte_mbuf* c = rte_pktmbuf_clone(m, pool());
  ASSERT_NE(c, nullptr);
  std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
  trace_fork(*w, m, c);
  trace_rec(*w, c, "stage-b", p1->index, "copy only");
  EXPECT_EQ(net.trace.used(), 2u);
  const TracePacket& child = pkt(2);
  EXPECT_EQ(child.parent, 1);
  ASSERT_EQ(child.nrec.load(), 2u);
  EXPECT_STREQ(child.rec[0].stage, "stage-a");
  EXPECT_STREQ(child.rec[0].detail, "n=7");
  EXPECT_EQ(child.rec[0].dev2, p1->index);
  EXPECT_STREQ(child.rec[1].what, "copy only");
  EXPECT_EQ(pkt(1).nrec.load(), 1u);  // the parent did not get the copy's record
  // A drop is not undone by the free that follows it; a sent fate wins over consumed.
  trace_drop(*w, m, p0->index, DropReason::nomem);
  trace_consumed(*w, m);
  EXPECT_EQ(pkt(1).fate.load(), TraceFate::dropped);
  trace_consumed(*w, c);
  EXPECT_EQ(child.fate.load(), TraceFate::consumed);
  EXPECT_STREQ(child.fate_stage, "stage-b");
  trace_fate(*w, c, TraceFate::sent, p1->index, "port_xmit");
  EXPECT_EQ(child.fate.load(), TraceFate::sent);
  // More records than a slot holds: truncated, never overflowing.
  for (unsigned i = 0; i < kTraceMaxRecs + 5; i++) trace_rec(*w, c, "again", p1->index, "x");
  EXPECT_TRUE(child.truncated);
  EXPECT_EQ(child.nrec.load(), kTraceMaxRecs);
  // clear: the marks still on mbufs are ignored from now on.
  net.trace.clear();
  EXPECT_EQ(net.trace.used(), 0u);
  EXPECT_EQ(net.trace.slot(m), nullptr);
  net.trace.arm(1, kNoDev, nullptr, nullptr);
  trace_rec(*w, m, "stale", p0->index, "ignored");
  EXPECT_EQ(net.trace.used(), 0u);
  rte_pktmbuf_free(c);
  rte_pktmbuf_free(m);
}

}  // namespace
