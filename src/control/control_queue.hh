// Work handed to the control thread by sluiced's other non-worker threads
// (the metrics HTTP server, DPDK telemetry callbacks). The control thread
// owns every table those threads want to read; instead of locking the
// tables, they queue a function and wait until the control loop has run it
// (drain(), called every pass of the loop, i.e. within ~20 ms).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace sluice {

class ControlQueue {
 public:
  // Runs fn on the control thread and waits for it. Returns false (fn has
  // not run and never will) when the queue is closed or fn did not start
  // within timeout_ms; once fn has started, waits until it is done.
  bool run(std::function<void()> fn, int timeout_ms);

  // Control thread: runs every queued function. Returns how many ran.
  size_t drain();

  // Refuses new work and cancels what is queued (sluiced is stopping).
  void close();

  size_t pending() const;

 private:
  struct Job {
    std::function<void()> fn;
    enum State { queued, running, done, cancelled } state = queued;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
  bool closed_ = false;
};

}  // namespace sluice
