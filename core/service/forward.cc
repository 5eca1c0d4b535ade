#include "core/service/forward.h"

#include <boost/json.hpp>
#include <chrono>

#include "core/control/control.h"
#include "core/util/hex.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

// Keeps each request well under the control socket's 64 KiB line.
constexpr size_t kEventsPerRequest = 1500;
constexpr std::chrono::seconds kTimeout{10};

class ForwardingSink : public SessionSink {
 public:
  explicit ForwardingSink(std::string path) : path_(std::move(path)) {}

  Status BeginSession(const std::string& ext, const std::string& vol, uint64_t lsi,
                      uint64_t snapshot, uint32_t* number) override {
    std::string body;
    LSIFS_RETURN_IF_ERROR(ControlCall(
        path_, {"session-begin", ext, vol, FormatId(lsi), FormatId(snapshot)}, &body, kTimeout));
    uint64_t n = 0;
    if (!ParseUnsigned(body, "session number", 1, UINT32_MAX, &n).ok()) {
      return Status::Corruption("the daemon answered no session number");
    }
    *number = static_cast<uint32_t>(n);
    return Status::Ok();
  }

  Status AppendEvents(const std::vector<LoggedEvent>& events) override {
    // One request per session and chunk: a batch may hold several sessions.
    for (size_t at = 0; at < events.size();) {
      const LoggedEvent& first = events[at];
      boost::json::array list;
      size_t i = at;
      for (; i < events.size() && i - at < kEventsPerRequest; ++i) {
        const LoggedEvent& e = events[i];
        if (e.extension != first.extension || e.volume != first.volume ||
            e.session != first.session) {
          break;
        }
        list.push_back(boost::json::array{e.seq, e.event.block, e.event.t_us});
      }
      std::string body;
      LSIFS_RETURN_IF_ERROR(
          ControlCall(path_,
                      {"session-events", first.extension, first.volume,
                       std::to_string(first.session), boost::json::serialize(list)},
                      &body, kTimeout));
      at = i;
    }
    return Status::Ok();
  }

  Status EndSession(const std::string& ext, const std::string& vol, uint32_t number, uint64_t reads,
                    uint64_t dropped) override {
    std::string body;
    return ControlCall(path_,
                       {"session-end", ext, vol, std::to_string(number), std::to_string(reads),
                        std::to_string(dropped)},
                       &body, kTimeout);
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<SessionSink> MakeForwardingSink(const std::string& socket_path) {
  return std::make_unique<ForwardingSink>(socket_path);
}

}  // namespace lsifs
