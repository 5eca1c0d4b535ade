// Control-socket requests: any line a client sends (fields split at tabs)
// reaches the service on a real store. Requests that assemble or deliver
// (restore, preassemble) or evict (gc) are left out: they are not parsers,
// and would make each run seconds long.
#include <string>
#include <vector>

#include "core/access/access_db.h"
#include "core/assembler/queue.h"
#include "core/catalog/catalog.h"
#include "core/origin/link.h"
#include "core/origin/origin.h"
#include "core/service/service.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& fx = fuzz::TheFixture();
  static const Catalog* catalog = [&] {
    std::unique_ptr<Catalog> c;
    if (!Catalog::Open(*fx.store, &c).ok()) std::abort();
    return c.release();
  }();
  static AccessDb* db = [&] {
    std::unique_ptr<AccessDb> d;
    if (!AccessDb::Open(fx.store->db_dir(), CoAccessSettings(), &d).ok()) std::abort();
    return d.release();
  }();
  std::vector<std::string> request;
  std::string field;
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\n') break;
    if (c == '\t') {
      request.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  request.push_back(std::move(field));
  const std::string& verb = request[0];
  if (verb == "restore" || verb == "preassemble" || verb == "gc" || verb == "snapshot-added") {
    return 0;
  }
  // The service as lsictl runs it without a daemon: a link and a queue.
  static ServiceEnv* env = [&] {
    auto* e = new ServiceEnv();
    static LocalOrigin local(*fx.store, *fx.origin_keys);
    static OriginLink link(local, LinkOptions());
    e->store = fx.store.get();
    e->keys = fx.origin_keys.get();
    e->link = &link;
    e->catalog = catalog;
    e->with_db = [](const std::function<Status(AccessDb*)>& fn) { return fn(db); };
    e->queue = new AssemblyQueue(MakeAssemblyWork(*e), AssemblyQueue::Options());
    return e;
  }();
  std::string body;
  (void)ServeRequest(*env, request, &body);
  return 0;
}
