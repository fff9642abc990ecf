#include "core/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace uas::metrics {

counter::counter(prometheus::Registry& registry, const std::string& name, const std::string& help)
  : value_{prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({})} {}

gauge::gauge(prometheus::Registry& registry, const std::string& name, const std::string& help)
  : value_{prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({})} {}

scraped_gauge::scraped_gauge(prometheus::Registry& registry, const std::string& name,
                             const std::string& help)
  : value_{registry, name, help} {}

scraped_gauge& scraped_gauge::operator=(std::function<int64_t()> read) {
  read_ = std::move(read);
  return *this;
}

void scraped_gauge::scrape() { value_.set(read_ ? read_() : 0); }

labelled_counter::labelled_counter(prometheus::Registry& registry, const std::string& name,
                                   const std::string& help, std::vector<std::string> label_names)
  : series_{prometheus::BuildCounter().Name(name).Help(help).Register(registry),
            std::move(label_names)} {}

duration_histogram::duration_histogram(prometheus::Registry& registry, const std::string& name,
                                       const std::string& help)
  : series_{prometheus::BuildHistogram().Name(name).Help(help).Register(registry), {"route"}} {}

void duration_histogram::observe(std::string_view route, std::chrono::nanoseconds d) {
  static const prometheus::Histogram::BucketBoundaries bounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  series_.at({route}, bounds).Observe(std::chrono::duration<double>(d).count());
}

partition_gauge::partition_gauge(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help)
  : family_{prometheus::BuildGauge().Name(name).Help(help).Register(registry)} {}

void partition_gauge::replace(const std::map<key, int64_t>& values) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto it = series_.begin(); it != series_.end();) {
    if (values.count(it->first)) {
      ++it;
      continue;
    }
    family_.Remove(it->second);
    it = series_.erase(it);
  }
  for (auto& [k, v] : values) {
    auto& g = series_[k];
    if (!g)
      g = &family_.Add({{"topic", k.first}, {"partition", std::to_string(k.second)}});
    g->Set(static_cast<double>(v));
  }
}

std::string registry::render() {
  for (auto* g : {&store_up, &kafka_up, &producer_in_flight, &http_threads, &http_connections_waiting})
    g->scrape();
  return prometheus::TextSerializer{}.Serialize(families.Collect());
}

registry& global() {
  static registry instance;
  return instance;
}

} // namespace uas::metrics
