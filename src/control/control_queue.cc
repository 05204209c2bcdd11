#include "control/control_queue.hh"

#include <algorithm>
#include <chrono>

namespace sluice {

bool ControlQueue::run(std::function<void()> fn, int timeout_ms) {
  auto job = std::make_shared<Job>();
  job->fn = std::move(fn);
  std::unique_lock<std::mutex> lk(mu_);
  if (closed_) return false;
  jobs_.push_back(job);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  cv_.wait_until(lk, deadline, [&] { return job->state != Job::queued; });
  if (job->state == Job::queued) {  // withdrawn: fn's references are never used
    job->state = Job::cancelled;
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
      if (*it == job) {
        jobs_.erase(it);
        break;
      }
    return false;
  }
  cv_.wait(lk, [&] { return job->state == Job::done || job->state == Job::cancelled; });
  return job->state == Job::done;
}

size_t ControlQueue::drain() {
  size_t ran = 0;
  std::unique_lock<std::mutex> lk(mu_);
  while (!jobs_.empty()) {
    std::shared_ptr<Job> job = std::move(jobs_.front());
    jobs_.pop_front();
    if (job->state != Job::queued) continue;
    job->state = Job::running;
    lk.unlock();
    job->fn();  // the caller waits in run(); fn must not throw (callers catch)
    lk.lock();
    job->state = Job::done;
    ran++;
    cv_.notify_all();
  }
  return ran;
}

void ControlQueue::close() {
  std::lock_guard<std::mutex> lk(mu_);
  closed_ = true;
  for (auto& j : jobs_)
    if (j->state == Job::queued) j->state = Job::cancelled;
  jobs_.clear();
  cv_.notify_all();
}

size_t ControlQueue::pending() const {
  std::lock_guard<std::mutex> lk(mu_);
  return jobs_.size();
}

}  // namespace sluice
