// Loader (see loader.h). With prefetch, one producer thread walks the same
// sequence of states the consumer would and hands batches over a bounded
// queue, so prefetching never changes what is delivered.
#include "data/loader.h"

#include <ATen/ATen.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "data/dataset_reader.h"
#include "data/shuffle.h"

namespace m4::data {
namespace {

// What producing one state yields: a batch (or the end of the epoch) and the
// state after it; or the error that stopped the producer.
struct Item {
  std::optional<Batch> batch;
  LoaderState after;
  std::exception_ptr error;
};

}  // namespace

struct Loader::Impl {
  std::shared_ptr<const DatasetReader> reader;
  LoaderOptions o;
  std::vector<int64_t> subset;
  std::vector<std::string> fields;
  int64_t per_epoch = 0;
  LoaderState state;  // the consumer's position

  // Cache of one epoch's order, used only by the producing side.
  int64_t cached_epoch = -1;
  std::vector<int64_t> cached_order;

  // Prefetch.
  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  bool stop = false;
  std::exception_ptr failed;

  std::vector<int64_t> order(int64_t epoch) const {
    std::vector<int64_t> v = subset;
    if (o.shuffle) {
      Rng rng(mix_seed(o.seed, static_cast<uint64_t>(epoch)));
      shuffle(v, rng);
    }
    return v;
  }

  Item produce(LoaderState s) {
    Item it;
    if (s.index >= per_epoch) {
      it.after = {s.epoch + 1, 0};
      return it;
    }
    if (cached_epoch != s.epoch) {
      cached_order = order(s.epoch);
      cached_epoch = s.epoch;
    }
    const int64_t global = o.batch_size * o.world;
    const int64_t begin = s.index * global;
    const int64_t end = std::min<int64_t>(begin + global, static_cast<int64_t>(cached_order.size()));
    Batch b;
    b.epoch = s.epoch;
    b.index = s.index;
    for (int64_t p = begin + o.rank; p < end; p += o.world) b.indices.push_back(cached_order[static_cast<size_t>(p)]);
    for (const auto& f : fields) {
      if (reader->layout(f).type == ElemType::kString) {
        b.texts[f] = reader->read_text(f, b.indices);
      } else {
        at::Tensor t = reader->read(f, b.indices);
        b.tensors[f] = o.pin_memory ? t.pin_memory() : t;
      }
    }
    it.batch = std::move(b);
    it.after = {s.epoch, s.index + 1};
    return it;
  }

  void run(LoaderState s) {
    for (;;) {
      Item it;
      try {
        it = produce(s);
      } catch (...) {
        it.error = std::current_exception();
      }
      const bool error = static_cast<bool>(it.error);
      s = it.after;
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return stop || static_cast<int64_t>(queue.size()) < o.prefetch; });
        if (stop) return;
        queue.push_back(std::move(it));
      }
      cv.notify_all();
      if (error) return;
    }
  }
};

Batch to_device(const Batch& batch, c10::Device device) {
  Batch out = batch;
  for (auto& [name, t] : out.tensors) {
    if (t.device() != device) t = t.to(device, /*non_blocking=*/t.is_pinned());
  }
  return out;
}

Loader::Loader(std::shared_ptr<const DatasetReader> reader, LoaderOptions o, LoaderState start)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  M4_CHECK(reader, ErrorCode::kInternal, "Loader: no reader");
  const std::string where = reader->path().string();
  M4_CHECK(o.batch_size > 0, ErrorCode::kInvalidArgument, "loader batch size must be > 0, got ", o.batch_size);
  M4_CHECK(o.world > 0 && o.rank >= 0 && o.rank < o.world, ErrorCode::kInvalidArgument, "loader rank ", o.rank,
           " is outside world size ", o.world);
  M4_CHECK(o.prefetch >= 0, ErrorCode::kInvalidArgument, "loader prefetch must be >= 0, got ", o.prefetch);
  m.reader = std::move(reader);
  m.o = std::move(o);
  if (m.o.fields.empty()) {
    for (const auto& l : m.reader->layouts()) m.fields.push_back(l.name);
  } else {
    for (const auto& f : m.o.fields) m.reader->layout(f);  // throws naming what exists
    m.fields = m.o.fields;
  }
  if (m.o.few_shot.active()) {
    m.subset = few_shot_subset(m.reader->labels(), static_cast<int64_t>(m.reader->attributes().label_names.size()),
                               m.reader->num_samples(), m.o.few_shot);
  } else {
    m.subset.resize(static_cast<size_t>(m.reader->num_samples()));
    std::iota(m.subset.begin(), m.subset.end(), int64_t{0});
  }
  const int64_t n = static_cast<int64_t>(m.subset.size()), global = m.o.batch_size * m.o.world;
  m.per_epoch = m.o.drop_last ? n / global : (n + global - 1) / global;
  M4_CHECK(m.per_epoch > 0, ErrorCode::kMismatch, where, ": ", n, " samples in play, fewer than one global batch of ",
           global, " (batch ", m.o.batch_size, " x world ", m.o.world, "; hint: smaller batch or drop_last=false)");
  M4_CHECK(start.epoch >= 0 && start.index >= 0 && start.index <= m.per_epoch, ErrorCode::kMismatch, where,
           ": loader state (epoch ", start.epoch, ", index ", start.index, ") is outside an epoch of ", m.per_epoch,
           " batches (hint: was it saved with another batch size, world or few-shot setting?)");
  m.state = start;
  if (m.o.prefetch > 0) m.worker = std::thread([&m, start] { m.run(start); });
}

Loader::~Loader() {
  Impl& m = *impl_;
  if (m.worker.joinable()) {
    {
      std::lock_guard lk(m.mu);
      m.stop = true;
    }
    m.cv.notify_all();
    m.worker.join();
  }
}

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  if (m.failed) std::rethrow_exception(m.failed);
  Item it;
  if (m.o.prefetch == 0) {
    it = m.produce(m.state);
  } else {
    {
      std::unique_lock lk(m.mu);
      m.cv.wait(lk, [&] { return !m.queue.empty(); });
      it = std::move(m.queue.front());
      m.queue.pop_front();
    }
    m.cv.notify_all();
    if (it.error) {
      m.failed = it.error;
      std::rethrow_exception(it.error);
    }
  }
  m.state = it.after;
  return std::move(it.batch);
}

LoaderState Loader::state() const { return impl_->state; }
int64_t Loader::batches_per_epoch() const { return impl_->per_epoch; }
const std::vector<int64_t>& Loader::subset() const { return impl_->subset; }
std::vector<int64_t> Loader::epoch_order(int64_t epoch) const { return impl_->order(epoch); }
const LoaderOptions& Loader::options() const { return impl_->o; }

}  // namespace m4::data
