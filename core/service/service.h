// The requests lsictl makes of a store that need its co-access database or
// its origin link. A running lsifs holds both, and serves them through the
// control socket; without one, lsictl serves them itself. Both call
// ServeRequest, so they answer alike.
//
//   access-show    EXT VOLUME SESSION(0 = overview) JSON(0|1)   text or JSON
//   access-heatmap EXT VOLUME [FORMAT(svg|png)]                  an SVG document, or PNG bytes
//   restore        EXT VOLUME SNAPSHOT(- = latest)               JSON: the LSI delivered
//   preassemble    EXT VOLUME STRATEGY PRIORITY BUDGET EXPLAIN   JSON: the LSI assembled
//   lsi-list                                                     JSON: every LSI
//   lsi-show       ID                                            JSON: one LSI
//   gc                                                           JSON: what eviction freed
//   stats                                                        JSON: store-wide figures
//   assemblies                                                   JSON: the assembly queue
//   assembly-cancel ID                                           cancels one assembly
//   snapshot-added VOLUME                   queues low pre-assemblies of the new snapshot
//   session-begin  EXT VOLUME LSI SNAPSHOT                       a forwarded session: its number
//   session-events EXT VOLUME NUMBER EVENTS(JSON [[seq,block,t_us],...])
//   session-end    EXT VOLUME NUMBER READS DROPPED
//
// Restores and assemblies go through the assembly queue, and fetch on the
// origin link in the class of their priority.
//
// JSON replies are rendered as text by lsictl; the names are those of
// lsictl(8)'s --json output. A body is bytes until the connection closes
// (control.h), so a PNG travels as it is.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "core/access/access_db.h"
#include "core/assembler/queue.h"
#include "core/catalog/catalog.h"
#include "core/origin/link.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"

namespace lsifs {

struct ServiceEnv {
  const Store* store = nullptr;
  const OriginKeys* keys = nullptr;
  OriginLink* link = nullptr;      // what assemblies fetch through
  AssemblyQueue* queue = nullptr;  // where restores and assemblies wait their turn
  // Queue low pre-assemblies when a volume gets a new snapshot.
  bool preassemble = false;
  // Told when a forwarded session has ended and been folded, with the
  // database (as the daemon's own recorder tells it of its sessions).
  std::function<void(AccessDb& db, const std::string& volume)> on_session_end;
  const Catalog* catalog = nullptr;
  // Runs `fn` with the co-access database, or with null when it cannot be
  // had (then freshness is judged without the learned models).
  std::function<Status(const std::function<Status(AccessDb*)>&)> with_db;
  // Progress of an assembly in bytes, for a terminal that shows it.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

Status ServeRequest(const ServiceEnv& env, const std::vector<std::string>& request,
                    std::string* body);

// What the queue runs for a task: the learned models, then
// PreAssembleSnapshot on the link. `env` must outlive the queue.
AssemblyQueue::Work MakeAssemblyWork(const ServiceEnv& env);

// Pre-assembly before it is asked for: a low assembly of `volume`'s latest
// snapshot for every extension with history on it (and a key in the store).
void QueuePreassemblies(const ServiceEnv& env, AccessDb& db, const std::string& volume,
                        const std::string& reason);

// How the database treats ending sessions: a whole-image sequential read is
// told by the size of the snapshot it read (its map in `store`), and is not
// learned from unless `learn_sequential` (lsifs -o sequential=learn).
// `store` and `keys` must outlive the database.
SessionPolicy MakeSessionPolicy(const Store& store, const OriginKeys& keys, bool learn_sequential);

// The context the catalog judges freshness in: the clock, every volume's
// latest snapshot and, with a database, every extension's model.
Status MakeCatalogContext(const Store& store, const OriginKeys& keys, AccessDb* db,
                          CatalogContext* out);

}  // namespace lsifs
